"""Random-weight checkpoints for tests and tools that exercise plumbing, not tracking quality."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

# A MobileNetV2 SiamAttn with every head narrowed: builds and runs in a fraction of a second (training-loop tests).
TINY_MODEL = dict(name="siamattn_mnv2_tiny", backbone="mobilenet_v2", backbone_pretrained=False, normalize_input=True,
                  neck_channels=16, attention_key_channels=4, rpn_hidden=16, fusion_channels=16,
                  mask_offset_input_size=4, mask_offset_hidden=32, bbox_offset_input_size=4, bbox_offset_hidden=32,
                  mask_head_convs=1, mask_head_channels=16, bbox_fc_hidden=32)


def tiny_model(backbone: str = "mobilenet_v2") -> dict:
    """TINY_MODEL, or the same narrow heads on the paper's ResNet-50 backbone (which takes raw BGR input)."""
    if backbone == "mobilenet_v2":
        return dict(TINY_MODEL)
    return {**TINY_MODEL, "name": "siamattn_r50_tiny", "backbone": backbone, "normalize_input": False}


def random_checkpoint(path: Union[str, Path], seed: int = 0, model: Union[str, dict, Any] = "siamattn_mnv2",
                      pretrained: Optional[bool] = None) -> Path:
    """Save a model with seeded random weights (torch.manual_seed(seed)) as one of our checkpoints at `path`.

    model: a built-in model name, a ModelConfig dict (e.g. tiny_model()) or a ModelConfig. pretrained: passed to
    build_model (None: the config's backbone_pretrained).
    """
    import torch

    from siamattn_ros.model import ModelConfig, build_model, save_checkpoint

    torch.manual_seed(seed)
    cfg = ModelConfig.from_dict(model) if isinstance(model, dict) else model
    path = Path(path)
    save_checkpoint(build_model(cfg, pretrained=pretrained), path)
    return path


def activate_random_paths(model: Any, seed: int = 0) -> None:
    """Make a randomly initialised SiamAttn exercise its real data paths: non-zero attention scales (gamma, zero at
    initialisation) and small non-zero deformable offsets (their layers start at zero). In place."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.1)
            elif ".offset_fc.4." in name or ".conv_offset." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 1e-3)
