"""DCNv1 3x3 deformable convolution (no modulation, no bias) as used by the DSA module.

Two numerically equivalent implementations (spec section 7.1 semantics: offsets are interleaved (dy, dx) per kernel tap,
bilinear sampling, any neighbour outside the map contributes 0):
* ``"torchvision"``: ``torchvision.ops.deform_conv2d`` (the reference; the fast choice on CUDA);
* ``"grid_sample"``: bilinear im2col with ``F.grid_sample(padding_mode='zeros', align_corners=True)`` + one GEMM.
  On the CPU it is several times faster than torchvision's kernel, forward and backward.
* ``"conv_first"``: the weights applied before the sampling (see deform_conv2d_conv_first); inference on the CPU.
``"auto"`` (the default) picks torchvision on CUDA; on the CPU conv_first for large maps without autograd, else
grid_sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from siamattn_ros.model.conv_wrapper import ONEDNN_MIN_IN_CHANNELS

DEFORM_IMPLS = ("auto", "torchvision", "grid_sample", "conv_first")


def deform_conv2d_grid_sample(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, padding: int = 1,
                              dilation: int = 1) -> torch.Tensor:
    """Stride-1 deformable conv, same semantics as torchvision's deform_conv2d with one offset group."""
    b, c, h, w = x.shape
    cout, cin, kh, kw = weight.shape
    if cin != c:
        raise ValueError(f"weight expects {cin} input channels, input has {c}")
    k = kh * kw
    if offset.shape != (b, 2 * k, h, w):
        raise ValueError(f"offset shape {tuple(offset.shape)} != {(b, 2 * k, h, w)} (stride 1, same size)")
    dt, dev = x.dtype, x.device
    shift = 0
    if h < 2 or w < 2:
        # align_corners=True cannot address a 1-pixel axis (it has no extent); add an explicit zero border.
        x = F.pad(x, (1, 1, 1, 1))
        shift = 1
    tap_y = (torch.arange(kh, device=dev, dtype=dt) * dilation).repeat_interleave(kw).view(1, k, 1, 1)
    tap_x = (torch.arange(kw, device=dev, dtype=dt) * dilation).repeat(kh).view(1, k, 1, 1)
    base_y = torch.arange(h, device=dev, dtype=dt).view(1, 1, h, 1) - padding + tap_y
    base_x = torch.arange(w, device=dev, dtype=dt).view(1, 1, 1, w) - padding + tap_x
    off = offset.view(b, k, 2, h, w)
    py = base_y + off[:, :, 0] + shift
    px = base_x + off[:, :, 1] + shift
    # align_corners=True maps -1..1 onto pixel centres 0..size-1.
    sx = 2.0 / (x.size(3) - 1)
    sy = 2.0 / (x.size(2) - 1)
    grid = torch.stack((px * sx - 1.0, py * sy - 1.0), dim=-1).view(b, k, h * w, 2)
    cols = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)  # (b, c, k, h*w)
    out = torch.matmul(weight.reshape(cout, c * k), cols.reshape(b, c * k, h * w))
    return out.view(b, cout, h, w)


def deform_conv2d_conv_first(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                             padding: int = 1) -> torch.Tensor:
    """Same result as deform_conv2d_grid_sample, in the other order: bilinear sampling (zero outside) is linear, so
    sampling x and then applying tap k's weights equals applying them first (one 1×1 conv to 9·C_out channels) and
    sampling each tap's C_out-channel map at that tap's positions, then summing the 9 taps. The GEMM runs as a
    1×1 conv (oneDNN's from ONEDNN_MIN_IN_CHANNELS input channels up) and the samples land contiguously: ~1.4x
    faster on one CPU thread for the 31×31 search maps (forward only; slower for 7×7 templates)."""
    b, c, h, w = x.shape
    cout, cin, kh, kw = weight.shape
    k = kh * kw
    if cin != c or offset.shape != (b, 2 * k, h, w) or h < 2 or w < 2:
        raise ValueError(f"conv-first deformable conv: input {tuple(x.shape)}, offset {tuple(offset.shape)}, "
                         f"weight {tuple(weight.shape)} (stride 1, maps of at least 2×2)")
    wk = weight.permute(2, 3, 0, 1).reshape(k * cout, c, 1, 1)  # tap-major output channels
    if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled() \
            and c >= ONEDNN_MIN_IN_CHANNELS:
        y = torch.mkldnn_convolution(x, wk.contiguous(), None, [0, 0], [1, 1], [1, 1], 1)
    else:
        y = F.conv2d(x, wk)
    dt, dev = x.dtype, x.device
    tap_y = torch.arange(kh, device=dev, dtype=dt).repeat_interleave(kw).view(1, k, 1, 1)
    tap_x = torch.arange(kw, device=dev, dtype=dt).repeat(kh).view(1, k, 1, 1)
    off = offset.view(b, k, 2, h, w)
    py = torch.arange(h, device=dev, dtype=dt).view(1, 1, h, 1) - padding + tap_y + off[:, :, 0]
    px = torch.arange(w, device=dev, dtype=dt).view(1, 1, 1, w) - padding + tap_x + off[:, :, 1]
    grid = torch.stack((px * (2.0 / (w - 1)) - 1.0, py * (2.0 / (h - 1)) - 1.0), dim=-1).view(b * k, h, w, 2)
    taps = F.grid_sample(y.reshape(b * k, cout, h, w), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)
    return taps.view(b, k, cout, h, w).sum(1)


# The conv-first order pays off from this many positions up (the 31×31 search maps, not the 7×7 templates).
CONV_FIRST_MIN_POSITIONS = 20 * 20


class DeformConvPack(nn.Module):
    """3x3 DCNv1 whose offsets come from a zero-initialised regular conv on the same input.

    Attribute names (``weight`` on the module, ``conv_offset`` child, no bias) match the authors' state_dict keys.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.conv_offset = nn.Conv2d(in_channels, 2 * kernel_size * kernel_size, kernel_size, padding=padding,
                                     bias=True)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)
        self.impl = "auto"

    def set_impl(self, impl: str) -> None:
        if impl not in DEFORM_IMPLS:
            raise ValueError(f"deformable conv implementation must be one of {DEFORM_IMPLS}, got {impl!r}")
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.conv_offset(x)
        impl = self.impl
        if impl == "auto":
            if x.is_cuda:
                impl = "torchvision"
            elif not torch.is_grad_enabled() and x.size(2) * x.size(3) >= CONV_FIRST_MIN_POSITIONS:
                impl = "conv_first"
            else:
                impl = "grid_sample"
        if impl == "conv_first":
            return deform_conv2d_conv_first(x, offset, self.weight, padding=self.padding)
        if impl == "grid_sample":
            return deform_conv2d_grid_sample(x, offset, self.weight, padding=self.padding)
        return deform_conv2d(x, offset, self.weight, None, stride=1, padding=self.padding)
