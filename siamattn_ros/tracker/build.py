"""build_tracker(): pick a model (shipped embedded checkpoint, the authors' ResNet-50 file, or one of ours), prepare
it for inference on the device and wrap it in a Tracker with a TrackerConfig preset."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from siamattn_ros.interface.paths import package_dirs
from siamattn_ros.interface.presets import BUILTIN_MODELS, resolve_preset

from siamattn_ros.tracker.config import TrackerConfig, load_preset
from siamattn_ros.tracker.tracker import Tracker

EMBEDDED_FILE = "siamattn_mnv2_embedded.pth"


def model_dirs() -> List[Path]:
    """Where the shipped checkpoint may be: models/ of the source tree, then share/siamattn_ros/models of an ament
    (colcon) install when ament_index_python is importable."""
    return package_dirs("models")


def find_embedded_checkpoint() -> Path:
    """Path of models/siamattn_mnv2_embedded.pth; FileNotFoundError saying where it looked and what to do."""
    dirs = model_dirs()
    for d in dirs:
        f = d / EMBEDDED_FILE
        if f.is_file():
            return f
    raise FileNotFoundError(
        f"embedded checkpoint {EMBEDDED_FILE} not found in {[str(d) for d in dirs]}. It ships in the repository's "
        f"models/ folder (a colcon build installs it to share/siamattn_ros/models): check out the full repository, "
        f"or train one with the siamattn_ros.tools.train tool and pass its path as model=<file.pth>.")


def _resolve_config(config: Union[None, str, Path, Dict[str, Any], TrackerConfig], default: str) -> TrackerConfig:
    if config is None:
        return load_preset(default)
    if isinstance(config, TrackerConfig):
        return config
    if isinstance(config, dict):
        return TrackerConfig.from_dict(config)
    if isinstance(config, (str, Path)):
        return load_preset(config)
    raise TypeError(f"config must be None, a preset name, a YAML path, a dict or a TrackerConfig; got {config!r}")


def load_network(model: Union[str, Path, nn.Module], checkpoint: Optional[Union[str, Path]] = None,
                 random_weights: bool = False) -> nn.Module:
    """The network for build_tracker (see there), on the CPU, not yet prepared for inference."""
    from siamattn_ros.model import build_model, load_checkpoint, load_model

    if isinstance(model, nn.Module):
        if checkpoint is not None:
            load_checkpoint(model, checkpoint)
        return model
    name = str(model)
    if name == "embedded":
        if checkpoint is not None:
            return load_model(checkpoint)
        try:
            return load_model(find_embedded_checkpoint())
        except FileNotFoundError:
            if not random_weights:
                raise
            warnings.warn(f"{EMBEDDED_FILE} not found: using siamattn_mnv2 with RANDOM weights (timing only)")
            return build_model("siamattn_mnv2", pretrained=False)
    if name in ("siamattn_r50", "siamattn_mnv2"):
        if checkpoint is None and not random_weights:  # checked before building 140 M parameters
            raise ValueError(f"model {name!r} needs checkpoint=<path to its weights> "
                             f"(the authors' checkpoint_vot2018.pth / checkpoint_otb100.pth for siamattn_r50)")
        net = build_model(name, pretrained=False)
        if checkpoint is not None:
            load_checkpoint(net, checkpoint)
        else:
            warnings.warn(f"{name}: no checkpoint given, using RANDOM weights (timing only)")
        return net
    path = Path(name)
    if path.suffix in (".pth", ".pt") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"model checkpoint {name!r} does not exist")
        return load_model(path)
    raise ValueError(f"unknown model {name!r}: expected one of {BUILTIN_MODELS} or a checkpoint path")


def build_tracker(model: Union[str, Path, nn.Module] = "embedded", checkpoint: Optional[Union[str, Path]] = None,
                  device: Union[str, torch.device] = "cpu", half: bool = False,
                  config: Union[None, str, Path, Dict[str, Any], TrackerConfig] = None,
                  random_weights: bool = False) -> Tracker:
    """A ready Tracker (model prepared for inference and warmed up on `device`).

    model: "embedded" (models/siamattn_mnv2_embedded.pth), "siamattn_r50" with checkpoint=<authors' file>, a path
        to one of our checkpoints, or an nn.Module with the SiamAttn interface (used as is).
    config: preset name ("otb100", "vot2018", "embedded"), YAML path, dict or TrackerConfig; default: the network's
        backbone's preset (siamattn_ros.interface.presets.resolve_preset: "embedded" for MobileNetV2, "vot2018" for
        the paper's ResNet-50).
    half: fp16 autocast (CUDA only).
    random_weights: allow a built-in model without weights (benchmarking only).
    """
    dev = torch.device(device)
    if half and dev.type != "cuda":
        raise ValueError(f"half=True needs a CUDA device (fp16 autocast), got device {str(dev)!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} requested but torch.cuda.is_available() is False")
    net = load_network(model, checkpoint, random_weights)
    cfg = _resolve_config(config, resolve_preset(net))
    if not isinstance(model, nn.Module):
        from siamattn_ros.model import prepare_for_inference

        # fp16 comes from autocast in the tracker, so the weights stay fp32 here.
        net = prepare_for_inference(net, device=dev, half=False)
    return Tracker(net, cfg, device=dev, half=half)
