"""Checkpoint I/O: strict, safe (``weights_only=True``: no code execution) loading of the authors' and our own files.

Accepted layouts: a raw state_dict, ``{'state_dict': ...}`` (optionally with other entries such as 'epoch'), keys with
or without a leading ``module.`` (DataParallel / DDP). Our own files additionally carry ``model_config`` (a plain dict
of ModelConfig) so ``load_model(path)`` needs no model name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union, Tuple

import torch
from torch import nn

from siamattn_ros.model.config import ModelConfig

FORMAT = "siamattn_ros.checkpoint/1"
PathLike = Union[str, Path]


class CheckpointError(ValueError):
    """A checkpoint file could not be read or does not fit the model; the message names the file."""


def _read(path: PathLike) -> Any:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickled objects refused by the safe unpickler, not a torch file, ...
        raise CheckpointError(f"{p}: cannot read as a weights-only PyTorch checkpoint "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e


def _extract_state_dict(obj: Any, path: PathLike) -> Dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: expected a state_dict (or {{'state_dict': ...}}), got {type(obj).__name__}")
    out: Dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{path}: state_dict entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def load_checkpoint(model: nn.Module, path: PathLike, new_modules: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Load weights strictly into ``model``; returns the file's other top-level entries (config, epoch, ...).

    Raises CheckpointError listing every missing, unexpected and wrongly-shaped key. Missing ``num_batches_tracked``
    buffers are tolerated (they do not affect the forward pass). Half-precision files load into float models and
    vice versa (values are cast to the model's dtypes). ``new_modules``: names of child modules the file may lack
    (e.g. ``("iou_head",)`` when fine-tuning an older checkpoint with a new head) or carry in another shape (an
    older design of that module); they keep their initial weights.
    """
    return _load_object(model, _read(path), path, new_modules)


def _load_object(model: nn.Module, obj: Any, path: PathLike, new_modules: Tuple[str, ...] = ()) -> Dict[str, Any]:
    state = _extract_state_dict(obj, path)
    own = model.state_dict()
    fresh = tuple(m + "." for m in new_modules)
    # A new module the file carries in another shape (an older design of it) starts fresh as a whole: mixing its old
    # layers with new ones would give a head that was never trained as one.
    for prefix in fresh:
        if any(k.startswith(prefix) and k in own and state[k].shape != own[k].shape for k in state):
            state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked") and not k.startswith(fresh)]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        def fmt(items: list) -> str:
            head = ", ".join(items[:20])
            return f"{len(items)} [{head}{', ...' if len(items) > 20 else ''}]"
        raise CheckpointError(f"{path}: checkpoint does not match the model ({type(model).__name__}"
                              f"{' ' + model.cfg.name if hasattr(model, 'cfg') else ''}): missing {fmt(missing)}; "
                              f"unexpected {fmt(unexpected)}; wrong shape {fmt(wrong)}")
    for k in own:
        if k not in state:  # tolerated num_batches_tracked, or a new module
            state[k] = own[k]
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    if hasattr(model, "reset"):
        model.reset()  # cached template features were computed with the old weights
    return {k: v for k, v in obj.items() if k != "state_dict"} if isinstance(obj, Mapping) and "state_dict" in obj \
        else {}


def save_checkpoint(model: nn.Module, path: PathLike, half: bool = False, extra: Optional[Dict[str, Any]] = None
                    ) -> None:
    """Save ``{'format', 'model_config', 'state_dict', **extra}``; half=True stores floating tensors as fp16.

    ``extra`` must hold only weights-only-loadable values (tensors, numbers, strings, lists, dicts).
    """
    if getattr(model, "fused_for_inference", False):
        raise ValueError("refusing to save a model whose BatchNorm layers were folded (fuse_for_inference): "
                         "its state_dict no longer matches the architecture; save the unfused model")
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        state[k] = v.clone()
    payload: Dict[str, Any] = {"format": FORMAT, "state_dict": state}
    if hasattr(model, "cfg") and isinstance(model.cfg, ModelConfig):
        payload["model_config"] = model.cfg.to_dict()
    if extra:
        clash = sorted(set(extra) & set(payload))
        if clash:
            raise ValueError(f"extra keys {clash} clash with reserved checkpoint entries")
        payload.update(extra)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(p)  # atomic: a crash while saving never leaves a truncated checkpoint under the final name


def read_model_config(path: PathLike) -> Optional[ModelConfig]:
    """The ModelConfig stored in one of our checkpoints, or None for a file without one (e.g. the authors')."""
    obj = _read(path)
    if isinstance(obj, Mapping) and "model_config" in obj:
        try:
            return ModelConfig.from_dict(dict(obj["model_config"]))
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: invalid model_config: {e}") from e
    return None


def load_model(path: PathLike, name: Optional[str] = None, device: Union[str, torch.device] = "cpu"):
    """Build the model described by the checkpoint (or by ``name`` for files without a config) and load it.

    Returns the model in eval mode on ``device``.
    """
    from siamattn_ros.model.siamattn import build_model  # local: siamattn imports this module's siblings

    obj = _read(path)
    cfg: Optional[ModelConfig] = None
    if isinstance(obj, Mapping) and "model_config" in obj:
        try:
            cfg = ModelConfig.from_dict(dict(obj["model_config"]))
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: invalid model_config: {e}") from e
    if cfg is None:
        if name is None:
            raise CheckpointError(f"{path}: checkpoint carries no model_config; pass name='siamattn_r50' (or another "
                                  f"model name) to load_model")
        model = build_model(name, pretrained=False)
    else:
        model = build_model(cfg, pretrained=False)
    _load_object(model, obj, path)
    del obj
    return model.to(device).eval()
