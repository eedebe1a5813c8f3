"""DCNv1 3x3 deformable convolution (no modulation, no bias) as used by the DSA module.

Two numerically equivalent implementations (spec section 7.1 semantics: offsets are interleaved (dy, dx) per kernel tap,
bilinear sampling, any neighbour outside the map contributes 0):
* ``"torchvision"``: ``torchvision.ops.deform_conv2d`` (the reference; the fast choice on CUDA);
* ``"grid_sample"``: bilinear im2col with ``F.grid_sample(padding_mode='zeros', align_corners=True)`` + one GEMM.
  On the CPU it is several times faster than torchvision's kernel, forward and backward.
* ``"conv_first"``: the weights applied before the sampling, which is then a weighted row gather
  (``F.embedding_bag``; see deform_conv2d_conv_first); inference on the CPU.
``"auto"`` (the default) picks torchvision on CUDA; on the CPU conv_first for large maps without autograd, else
grid_sample.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d


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


def deform_conv2d_conv_first(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, padding: int = 1,
                             tap_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Same result as deform_conv2d_grid_sample, in the other order: bilinear sampling (zero outside) is linear, so
    sampling x and then applying tap k's weights equals applying them first and sampling each tap's C_out-channel
    map at that tap's positions, then summing the 9 taps.

    The weights are one GEMM to a (positions, taps, C_out) map; each output position is then a weighted sum of the
    36 rows (9 taps × 4 bilinear corners) of that map it reads, which is what ``F.embedding_bag`` computes (rows
    outside the map get weight 0). On one CPU thread for the 31×31 search maps, same process: 1.9 vs 5.1-5.8 ms
    (64 channels) and 18-25 vs 54 ms (256 channels) against a oneDNN 1×1 conv followed by grid_sample per tap.
    For inference: use grid_sample to train.
    ``tap_weights``: ``conv_first_weights(weight)``, when the caller keeps it between calls.
    """
    b, c, h, w = x.shape
    cout, cin, kh, kw = weight.shape
    k = kh * kw
    n = h * w
    if cin != c or offset.shape != (b, 2 * k, h, w):
        raise ValueError(f"conv-first deformable conv: input {tuple(x.shape)}, offset {tuple(offset.shape)}, "
                         f"weight {tuple(weight.shape)} (stride 1, same size)")
    if tap_weights is None:
        tap_weights = conv_first_weights(weight)
    # rows (batch, position, tap), columns C_out
    y = torch.matmul(x.reshape(b, c, n).transpose(1, 2), tap_weights).view(b * n * k, cout)
    dev = x.device
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32  # sample positions: never in fp16 / bf16
    tap_y = (torch.arange(kh, device=dev) - padding).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=dev) - padding).repeat(kh)
    off = offset.view(b, k, 2, h, w).permute(0, 2, 3, 4, 1).to(dt).contiguous()  # (b, dy/dx, h, w, tap)
    py = off[:, 0] + (torch.arange(h, device=dev).view(h, 1, 1) + tap_y).to(dt)  # (b, h, w, tap)
    px = off[:, 1] + (torch.arange(w, device=dev).view(1, w, 1) + tap_x).to(dt)
    y0, x0 = py.floor(), px.floor()
    fy, fx = py - y0, px - x0
    r0, c0 = y0.long(), x0.long()  # the sample reads rows r0, r0 + 1 and columns c0, c0 + 1
    # (Elementwise on (b, h, w, tap) tensors: broadcasting to small trailing corner dims ran 3x slower.)
    wr0, wr1 = (1 - fy) * ((r0 >= 0) & (r0 < h)), fy * ((r0 >= -1) & (r0 < h - 1))  # 0 outside the map
    wc0, wc1 = (1 - fx) * ((c0 >= 0) & (c0 < w)), fx * ((c0 >= -1) & (c0 < w - 1))
    weights = torch.stack((wr0 * wc0, wr0 * wc1, wr1 * wc0, wr1 * wc1), -1).view(b * n, 4 * k)
    # row of y: (batch · n + position) · k + tap
    first = (torch.arange(b, device=dev) * (n * k)).view(b, 1, 1, 1) + torch.arange(k, device=dev)
    i0, i1 = r0.clamp(0, h - 1) * (w * k) + first, (r0 + 1).clamp(0, h - 1) * (w * k) + first
    j0, j1 = c0.clamp(0, w - 1) * k, (c0 + 1).clamp(0, w - 1) * k
    index = torch.stack((i0 + j0, i0 + j1, i1 + j0, i1 + j1), -1).view(b * n, 4 * k)
    out = F.embedding_bag(index, y, per_sample_weights=weights.to(y.dtype), mode="sum")
    return out.view(b, n, cout).transpose(1, 2).reshape(b, cout, h, w)


def conv_first_weights(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, kh, kw) -> (C_in, taps · C_out), the GEMM operand of deform_conv2d_conv_first."""
    cout, cin, kh, kw = weight.shape
    return weight.permute(1, 2, 3, 0).reshape(cin, kh * kw * cout)


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
        self._tap_weights: Optional[tuple] = None  # (weight identity, conv_first_weights(weight))

    def tap_weights(self) -> torch.Tensor:
        """conv_first_weights(self.weight), recomputed only when the weight changed (in place or replaced)."""
        w = self.weight
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if self._tap_weights is None or self._tap_weights[0] != key:
            self._tap_weights = (key, conv_first_weights(w.detach()).contiguous())
        return self._tap_weights[1]

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
            taps = None if torch.is_grad_enabled() else self.tap_weights()
            return deform_conv2d_conv_first(x, offset, self.weight, padding=self.padding, tap_weights=taps)
        if impl == "grid_sample":
            return deform_conv2d_grid_sample(x, offset, self.weight, padding=self.padding)
        return deform_conv2d(x, offset, self.weight, None, stride=1, padding=self.padding)
