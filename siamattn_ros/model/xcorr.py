"""Depth-wise cross-correlation blocks: the RPN heads (MultiRPN with learned level weights) and their building block."""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate each channel of x (b, c, H, W) with the same channel of kernel (b, c, h, w), per batch item."""
    b, c = kernel.shape[:2]
    if x.shape[:2] != kernel.shape[:2]:
        raise ValueError(f"xcorr: search {tuple(x.shape)} and kernel {tuple(kernel.shape)} disagree on (b, c)")
    out = F.conv2d(x.reshape(1, b * c, x.size(2), x.size(3)), kernel.reshape(b * c, 1, kernel.size(2), kernel.size(3)),
                   groups=b * c)
    return out.view(b, c, out.size(2), out.size(3))


class DepthwiseXCorr(nn.Module):
    """conv_kernel / conv_search (3x3 conv, BN, ReLU) -> depth-wise xcorr -> head (1x1, BN, ReLU, 1x1 with bias)."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv_kernel = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, bias=False), nn.BatchNorm2d(hidden),
                                         nn.ReLU(inplace=True))
        self.conv_search = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, bias=False), nn.BatchNorm2d(hidden),
                                         nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Conv2d(hidden, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                  nn.ReLU(inplace=True), nn.Conv2d(hidden, out_channels, 1))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        merged = self.__dict__.get("merged_xcorr")  # set by model.inference.speed_up_cpu (not a submodule)
        if merged is not None and not torch.is_grad_enabled():
            return self.head(merged(z, x))
        return self.head(xcorr_depthwise(self.conv_search(x), self.conv_kernel(z)))


class DepthwiseRPN(nn.Module):
    def __init__(self, anchor_num: int, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.cls = DepthwiseXCorr(in_channels, hidden, 2 * anchor_num)
        self.loc = DepthwiseXCorr(in_channels, hidden, 4 * anchor_num)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.cls(z, x), self.loc(z, x)


class MultiRPN(nn.Module):
    """Three DepthwiseRPN heads (levels 2, 3, 4) fused with softmax-normalised learned weights."""

    def __init__(self, anchor_num: int, in_channels: int, hidden: int, levels: Tuple[int, ...] = (2, 3, 4)) -> None:
        super().__init__()
        self.levels = levels
        for lvl in levels:
            self.add_module(f"rpn{lvl}", DepthwiseRPN(anchor_num, in_channels, hidden))
        self.cls_weight = nn.Parameter(torch.ones(len(levels)))
        self.loc_weight = nn.Parameter(torch.ones(len(levels)))

    def forward(self, zs: List[torch.Tensor], xs: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        cls_w = torch.softmax(self.cls_weight, 0)
        loc_w = torch.softmax(self.loc_weight, 0)
        cls = loc = None
        for i, (lvl, z, x) in enumerate(zip(self.levels, zs, xs)):
            c, l = getattr(self, f"rpn{lvl}")(z, x)
            cls = c * cls_w[i] if cls is None else cls + c * cls_w[i]
            loc = l * loc_w[i] if loc is None else loc + l * loc_w[i]
        assert cls is not None and loc is not None
        return cls, loc
