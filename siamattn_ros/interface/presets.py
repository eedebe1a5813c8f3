"""Which tracker preset (config/trackers/<name>.yaml) a model gets when none is named: the ONE rule, used by
build_tracker(), the ROS node and the tools, so that they always agree.

The rule follows the network's backbone, never a file name: the MobileNetV2 variant gets "embedded" (its own
calibrated thresholds), the paper's ResNet-50 gets "vot2018". The backbone comes from, in order: a network object's
``cfg.backbone``; a built-in model name; the ModelConfig saved in a checkpoint file (read here without torch: only
the file's small pickle header is parsed, no tensor data is loaded and no code from the file runs).
"""
from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional, Union

# Built-in model names accepted by build_tracker() / the node's `model` parameter, and their backbones.
BUILTIN_MODELS = ("embedded", "siamattn_r50", "siamattn_mnv2")
BUILTIN_BACKBONES = {"embedded": "mobilenet_v2", "siamattn_mnv2": "mobilenet_v2", "siamattn_r50": "resnet50_atrous"}
PRESET_FOR_BACKBONE = {"mobilenet_v2": "embedded", "resnet50_atrous": "vot2018"}
# A network whose backbone cannot be told (an nn.Module without cfg): the preset of the shipped model.
FALLBACK_PRESET = "embedded"


class _Opaque:
    """Stands in for every class a checkpoint pickle names (tensors, storages): accepts anything, keeps nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Opaque":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _HeaderUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        return _Opaque  # nothing named by the file is imported or called

    def persistent_load(self, pid: Any) -> Any:
        return None  # tensor storages live in other zip members; they are not read


def checkpoint_backbone(path: Union[str, Path]) -> Optional[str]:
    """The ``backbone`` of the ModelConfig saved in one of our checkpoints (torch zip format), or None when the file
    is missing, unreadable or carries no model_config (e.g. the authors' files); the loader reports those errors."""
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            if not pkl:
                return None
            obj = _HeaderUnpickler(io.BytesIO(z.read(pkl[0]))).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError):
        return None
    cfg = obj.get("model_config") if isinstance(obj, dict) else None
    backbone = cfg.get("backbone") if isinstance(cfg, dict) else None
    return backbone if isinstance(backbone, str) else None


def model_backbone(model: Any, checkpoint: Optional[Union[str, Path]] = None) -> Optional[str]:
    """The backbone of `model`: a network (its cfg.backbone), a built-in name (for "embedded" with a checkpoint:
    the checkpoint's, since that file is what gets loaded), or a checkpoint path. None when it cannot be told."""
    cfg = getattr(model, "cfg", None)
    if cfg is not None or not isinstance(model, (str, Path)):
        return getattr(cfg, "backbone", None)
    name = str(model)
    if name == "embedded" and checkpoint:
        return checkpoint_backbone(checkpoint) or BUILTIN_BACKBONES[name]
    if name in BUILTIN_BACKBONES:
        return BUILTIN_BACKBONES[name]
    return checkpoint_backbone(name)


def resolve_preset(model: Any, checkpoint: Optional[Union[str, Path]] = None,
                   tracker_config: Optional[Union[str, Path]] = None) -> str:
    """The tracker preset for `model` (built-in name, checkpoint path or network object): `tracker_config` when
    given (non-empty), else the backbone's preset (see the module docstring)."""
    if tracker_config:
        return str(tracker_config)
    backbone = model_backbone(model, checkpoint)
    if backbone is None:
        return FALLBACK_PRESET
    return PRESET_FOR_BACKBONE.get(backbone, "vot2018")
