"""Deformable RoI pooling (mmdetection-v1 DeformRoIPooling with group_size 1, not modulated) in plain PyTorch.

Semantics of spec section 7.2, which torchvision's roi_align does not reproduce: RoI corners C-rounded (half away
from zero) to crop pixels, far corner inclusive (+1), -0.5 shift; minimum RoI side 0.1; S x S samples per bin at the
*start* of each sub-cell; per-bin offsets scaled by trans_std and by the RoI size; samples outside
[-0.5, W-0.5] x [-0.5, H-0.5] are dropped from the mean (not counted as zeros); remaining samples are clamped into
the map and interpolated bilinearly. Bilinear sampling is done with grid_sample (autograd for features and offsets).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def c_round(x: torch.Tensor) -> torch.Tensor:
    """Round half away from zero (C's round()), unlike torch.round's half-to-even."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def deform_roi_pool(features: torch.Tensor, rois: torch.Tensor, offsets: Optional[torch.Tensor], spatial_scale: float,
                    output_size: int, sample_per_part: int = 4, trans_std: float = 0.1) -> torch.Tensor:
    """Pool (n, C, P, P) from features (B, C, H, W) for rois (n, 5) = [batch_index, x1, y1, x2, y2].

    offsets: None or (n, 2, P, P) normalised bin offsets (channel 0 = x, channel 1 = y).
    """
    if rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError(f"rois must be (n, 5) [batch_index, x1, y1, x2, y2], got shape {tuple(rois.shape)}")
    n = rois.size(0)
    bsz, c, h, w = features.shape
    p, s = output_size, sample_per_part
    if n == 0:
        return features.new_zeros((0, c, p, p))
    if offsets is not None and offsets.shape != (n, 2, p, p):
        raise ValueError(f"offsets shape {tuple(offsets.shape)} != {(n, 2, p, p)}")
    dt, dev = features.dtype, features.device
    # Geometry in at least float32 (fp16 cannot hold crop coordinates to the precision the C-rounding needs);
    # no gradient to the RoI coordinates (as in the original op).
    gdt = torch.float64 if dt == torch.float64 else torch.float32
    if rois.device.type == "cpu":
        # Checked only where it is free: on a GPU the check is a host sync per call (and makes CUDA-graph capture
        # fail); there index_select checks the indices on the device for batches > 1.
        cpu_idx = rois[:, 0].long()
        if bool((cpu_idx < 0).any()) or bool((cpu_idx >= bsz).any()):
            raise ValueError(f"roi batch indices {cpu_idx.tolist()} out of range for a batch of {bsz}")
    rois = rois.detach().to(device=dev, dtype=gdt)
    bidx = rois[:, 0].long()
    x1 = c_round(rois[:, 1]) * spatial_scale - 0.5
    y1 = c_round(rois[:, 2]) * spatial_scale - 0.5
    x2 = (c_round(rois[:, 3]) + 1.0) * spatial_scale - 0.5
    y2 = (c_round(rois[:, 4]) + 1.0) * spatial_scale - 0.5
    rw = (x2 - x1).clamp(min=0.1).view(n, 1, 1, 1, 1)
    rh = (y2 - y1).clamp(min=0.1).view(n, 1, 1, 1, 1)
    bw, bh = rw / p, rh / p
    # Sample grid laid out as (n, ph, ih, pw, iw) so it reshapes to an image of (P*S) x (P*S) per RoI.
    grid_p = torch.arange(p, device=dev, dtype=gdt)
    grid_s = torch.arange(s, device=dev, dtype=gdt)
    sx = x1.view(n, 1, 1, 1, 1) + bw * grid_p.view(1, 1, 1, p, 1) + (bw / s) * grid_s.view(1, 1, 1, 1, s)
    sy = y1.view(n, 1, 1, 1, 1) + bh * grid_p.view(1, p, 1, 1, 1) + (bh / s) * grid_s.view(1, 1, s, 1, 1)
    if offsets is not None:
        off = offsets.to(gdt) * trans_std
        sx = sx + (off[:, 0] * rw.view(n, 1, 1)).view(n, p, 1, p, 1)
        sy = sy + (off[:, 1] * rh.view(n, 1, 1)).view(n, p, 1, p, 1)
    sx, sy = torch.broadcast_tensors(sx, sy)
    valid = (sx >= -0.5) & (sx <= w - 0.5) & (sy >= -0.5) & (sy <= h - 0.5)  # decided in float32 geometry
    # Pixel centres in grid_sample's align_corners=False convention (x -> (2x + 1) / size - 1): the same samples as
    # align_corners=True, and an op every backend has a kernel for (fake/meta CUDA tensors lack the True variant).
    gx = (2.0 * sx.clamp(0.0, w - 1.0) + 1.0) / w - 1.0
    gy = (2.0 * sy.clamp(0.0, h - 1.0) + 1.0) / h - 1.0
    # Dropped samples are sent far outside the map, where zero padding makes them 0: then every bin is a plain
    # S×S block sum (no per-sample mask multiply over all C channels). Kept samples lie in [0, size-1] after the
    # clamp, where zero and border padding interpolate alike.
    gx = torch.where(valid, gx, torch.full_like(gx, -3.0))
    grid = torch.stack((gx, gy), dim=-1).reshape(n, p * s, p * s, 2).to(dt)
    if bsz == 1:
        src = features.expand(n, c, h, w)
    else:
        src = features.index_select(0, bidx)
    vals = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (n, C, P*S, P*S)
    total = F.avg_pool2d(vals, s) * float(s * s)
    count = valid.to(dt).view(n, 1, p, s, p, s).sum(dim=(3, 5)).clamp(min=1.0)  # a bin with no valid sample: 0
    return total / count


class DeformRoIPoolingPack(nn.Module):
    """Pool without offsets -> offset MLP on the pooled features -> pool again with the predicted per-bin offsets."""

    def __init__(self, spatial_scale: float, output_size: int, channels: int, hidden: int, offset_input_size: int,
                 sample_per_part: int = 4, trans_std: float = 0.1) -> None:
        super().__init__()
        self.spatial_scale = spatial_scale
        self.output_size = output_size
        self.sample_per_part = sample_per_part
        self.trans_std = trans_std
        # The paper feeds the full (C, P, P) pooled tensor to the MLP; the embedded model average-pools it first.
        self.offset_input_size = offset_input_size
        fc_in = channels * offset_input_size * offset_input_size
        self.offset_fc = nn.Sequential(nn.Linear(fc_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden),
                                       nn.ReLU(inplace=True), nn.Linear(hidden, 2 * output_size * output_size))
        nn.init.zeros_(self.offset_fc[4].weight)
        nn.init.zeros_(self.offset_fc[4].bias)

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        p = self.output_size
        pooled = deform_roi_pool(features, rois, None, self.spatial_scale, p, self.sample_per_part, self.trans_std)
        if self.offset_input_size != p:
            pooled = F.adaptive_avg_pool2d(pooled, self.offset_input_size)
        offsets = self.offset_fc(pooled.flatten(1)).view(-1, 2, p, p)
        return deform_roi_pool(features, rois, offsets, self.spatial_scale, p, self.sample_per_part, self.trans_std)
