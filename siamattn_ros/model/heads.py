"""Refinement heads: box head (deformable RoI pool 4x4 -> FC x2 -> 4 deltas) and mask head (pool 16x16 -> convs ->
x4 deconv -> 1x1 -> logits)."""
from __future__ import annotations

import torch
from torch import nn

from siamattn_ros.model.fusion import ConvModule
from siamattn_ros.model.roi_pool import DeformRoIPoolingPack


class FCx2DetHead(nn.Module):
    def __init__(self, channels: int, pool_size: int, spatial_scale: float, fc_hidden: int, offset_hidden: int,
                 offset_input_size: int, sample_per_part: int = 4, trans_std: float = 0.1) -> None:
        super().__init__()
        self.roi_pool_b = DeformRoIPoolingPack(spatial_scale, pool_size, channels, offset_hidden, offset_input_size,
                                               sample_per_part, trans_std)
        self.tail_det = nn.Sequential(nn.Linear(channels * pool_size * pool_size, fc_hidden), nn.ReLU(inplace=True),
                                      nn.Linear(fc_hidden, fc_hidden), nn.ReLU(inplace=True))
        self.tail_det_box = nn.Linear(fc_hidden, 4)

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        pooled = self.roi_pool_b(features, rois)
        return self.tail_det_box(self.tail_det(pooled.flatten(1)))


class FusedSemanticHead(nn.Module):
    def __init__(self, in_channels: int, channels: int, pool_size: int, spatial_scale: float, out_size: int,
                 num_convs: int, offset_hidden: int, offset_input_size: int, sample_per_part: int = 4,
                 trans_std: float = 0.1) -> None:
        super().__init__()
        self.roi_pool_m = DeformRoIPoolingPack(spatial_scale, pool_size, in_channels, offset_hidden,
                                               offset_input_size, sample_per_part, trans_std)
        self.convs = nn.ModuleList(ConvModule(in_channels if i == 0 else channels, channels, 3, padding=1)
                                   for i in range(num_convs))
        ratio = out_size // pool_size
        self.upsample = nn.ConvTranspose2d(channels, channels, ratio, stride=ratio)
        self.relu = nn.ReLU(inplace=True)
        self.conv_logits = nn.Conv2d(channels, 1, 1)

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        x = self.roi_pool_m(features, rois)
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(self.relu(self.upsample(x)))


class BoxQualityHead(nn.Module):
    """Predicts the IoU of a box with the target (a logit; sigmoid gives the IoU estimate).

    Not part of the paper. The RoI's box features (plain RoI-align on the fused 25x25 map) are scaled channel-wise
    by a descriptor of the template, so the prediction depends on *what* is tracked, not only on how object-like the
    region is: a look-alike, background, or a box grown over the out-of-image padding all score low. With
    ``context`` > 0 the window ``context`` times the box's size around it is pooled too: RoI-align rescales every
    box to the same grid, so without it a box that covers the target and one that covers the whole visible image
    can look alike; what lies outside them does not.
    """

    def __init__(self, channels: int, template_channels: int, pool_size: int, spatial_scale: float,
                 hidden: int, context: float = 0.0) -> None:
        super().__init__()
        if context < 0 or 0 < context <= 1:
            raise ValueError(f"iou_context must be 0 (off) or > 1 (window times the box size), got {context}")
        self.pool_size = pool_size
        self.spatial_scale = spatial_scale
        self.context = float(context)
        windows = 2 if self.context > 0 else 1
        self.modulation = nn.Linear(template_channels, channels)
        self.fc = nn.Sequential(nn.Linear(windows * channels * pool_size * pool_size, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.out = nn.Linear(hidden, 1)

    @staticmethod
    def template_descriptor(template_features: "list[torch.Tensor]") -> torch.Tensor:
        """(B, sum C) global average of the template's adjusted feature levels."""
        return torch.cat([f.mean(dim=(2, 3)) for f in template_features], dim=1)

    def forward(self, features: torch.Tensor, template_vec: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import roi_align

        rois = rois.to(features.dtype)
        windows = [rois]
        if self.context > 0:
            centre = (rois[:, 1:3] + rois[:, 3:5]) / 2
            half = (rois[:, 3:5] - rois[:, 1:3]) * (self.context / 2)
            windows.append(torch.cat((rois[:, :1], centre - half, centre + half), 1))
        gate = 2.0 * torch.sigmoid(self.modulation(template_vec))       # (B, C), 1 at initialisation
        gate = gate[rois[:, 0].long()][:, :, None, None]
        pooled = [roi_align(features, w, self.pool_size, self.spatial_scale, sampling_ratio=2, aligned=True) * gate
                  for w in windows]
        return self.out(self.fc(torch.cat(pooled, 1).flatten(1))).squeeze(1)
