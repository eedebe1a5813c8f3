"""AdjustAllLayer: 1x1 conv + BN on the three deep levels, with a centre crop of the (small) template maps."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn


class AdjustLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, crop: int, crop_threshold: int) -> None:
        super().__init__()
        self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                        nn.BatchNorm2d(out_channels))
        self.crop = crop
        self.crop_threshold = crop_threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        # Only template maps (15x15) are narrower than the threshold; keep their centre 7x7 (rows/cols 4..10).
        if x.size(3) < self.crop_threshold:
            left = (x.size(3) - self.crop) // 2
            x = x[:, :, left:left + self.crop, left:left + self.crop]
        return x


class AdjustAllLayer(nn.Module):
    """Levels 0 and 1 pass through; level i (2..4) goes through ``downsample{i}``."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, crop: int = 7, crop_threshold: int = 20) -> None:
        super().__init__()
        self.levels = (2, 3, 4)
        for lvl, cin in zip(self.levels, in_channels):
            self.add_module(f"downsample{lvl}", AdjustLayer(cin, out_channels, crop, crop_threshold))

    def forward(self, feats: List[torch.Tensor]) -> List[torch.Tensor]:
        out = list(feats)
        for lvl in self.levels:
            out[lvl] = getattr(self, f"downsample{lvl}")(feats[lvl])
        return out
