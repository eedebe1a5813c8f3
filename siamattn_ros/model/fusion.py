"""FeatureFusionNeck of the region-refinement module: box features (25x25) and mask features (63x63)."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from siamattn_ros.model.xcorr import DepthwiseXCorr


def _ac_weights(n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
    """(n_out, n_in) 1-D linear interpolation matrix with align_corners=True."""
    pos = torch.arange(n_out, dtype=torch.float64) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    lo = pos.floor().clamp(max=n_in - 1).long()
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = pos - lo
    w = torch.zeros(n_out, n_in, dtype=torch.float64)
    w[torch.arange(n_out), lo] += 1 - frac
    w[torch.arange(n_out), hi] += frac
    return w.to(like.dtype).to(like.device)


def resize_bilinear_ac(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """F.interpolate(x, size, mode="bilinear", align_corners=True) as two small matrix products (separable);
    several times faster on one CPU thread, equal up to float rounding."""
    rows = _ac_weights(x.size(2), int(size[0]), x)
    cols = _ac_weights(x.size(3), int(size[1]), x)
    return torch.matmul(rows, torch.matmul(x, cols.t()))


class ConvModule(nn.Module):
    """Conv (no bias) -> BN -> ReLU. The BN attribute is named ``BN<channels>`` to match the authors' keys."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn_name = f"BN{out_channels}"
        self.add_module(self.bn_name, nn.BatchNorm2d(out_channels))
        self.activate = nn.ReLU(inplace=False)

    @property
    def bn(self) -> nn.Module:
        return getattr(self, self.bn_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class FeatureFusionNeck(nn.Module):
    """Box features: sum over the 3 enhanced levels of convs[j](xcorr[j](z_j, x_j)).
    Mask features: sum over all 5 search levels of lateral[i](bilinear-resize(x_i -> level-1 size))."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, xcorr_hidden: int, fusion_level: int = 1
                 ) -> None:
        super().__init__()
        self.fusion_level = fusion_level
        self.lateral_convs = nn.ModuleList(ConvModule(c, out_channels) for c in in_channels)
        deep = in_channels[2:]
        self.xcorr = nn.ModuleList(DepthwiseXCorr(c, xcorr_hidden, out_channels) for c in deep)
        self.convs = nn.ModuleList(ConvModule(out_channels, out_channels) for _ in deep)
        # Inference only, set by model.inference.speed_up_cpu (BatchNorm folded): see mask_features.
        self.lateral_before_resize = False

    def box_features(self, zs: List[torch.Tensor], xs: List[torch.Tensor]) -> torch.Tensor:
        out = None
        for j, (z, x) in enumerate(zip(zs, xs)):
            t = self.convs[j](self.xcorr[j](z, x))
            out = t if out is None else out + t
        assert out is not None
        return out

    def mask_features(self, xs: List[torch.Tensor]) -> torch.Tensor:
        size = xs[self.fusion_level].shape[-2:]
        out = None
        for i, x in enumerate(xs):
            if x.shape[-2:] == size:
                t = self.lateral_convs[i](x)
            elif self.lateral_before_resize and x.shape[-2] * x.shape[-1] < size[0] * size[1] \
                    and not self.training:
                # Same result, 4x fewer conv positions for the 31x31 levels: a 1x1 conv (+ folded BN bias) is
                # per-pixel linear and bilinear weights sum to 1, so it commutes with the resize; only the ReLU
                # must come after it.
                conv = self.lateral_convs[i]
                t = conv.activate(resize_bilinear_ac(conv.bn(conv.conv(x)), size))
            else:
                # Resize before the lateral conv, bilinear with align_corners=True (no anti-aliasing), as the paper.
                t = self.lateral_convs[i](F.interpolate(x, size=size, mode="bilinear", align_corners=True))
            out = t if out is None else out + t
        assert out is not None
        return out

    def forward(self, zs: List[torch.Tensor], xs: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """zs, xs: the 5 template / search levels (levels 2-4 enhanced). Template levels 0-1 are unused."""
        return self.box_features(zs[2:], xs[2:]), self.mask_features(xs)
