"""A hand-built stand-in for SiamAttn with fully known weights, for testing the tracking engine.

It has the SiamAttn interface and geometry (127/255 crops, 5 anchors on a 25×25 map at stride 8, 64×64 masks) but its
"features" are 8×8 average-pooled BGR colours (a stride-8 conv with fixed 1/64 weights), and its classification
score is the normalised cross-correlation (NCC) between the template's central 7×7 feature patch and every 7×7
search patch — a plain template matcher whose behaviour can be predicted exactly:

* foreground logit = gain·(NCC − bias) (background logit 0), so a clean match scores ≈ 1 and clutter ≈ 0;
* box deltas shift every anchor by the fixed half-pixel offset between the feature grid and the anchor grid, and
  keep the anchor sizes (dw = dh = 0): the tracker follows the position, and the size through its penalty;
* box refinement returns zero deltas (keeps the RPN box);
* the mask head returns a large positive logit over the whole RoI (the mask is the RoI rectangle).

It is not a learned tracker; it exists so that a synthetic sequence with exact ground truth yields a checkable
outcome independent of any trained checkpoint.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn


class NCCGeometry:
    """The geometry fields the tracker reads from ``model.cfg`` (same values as the paper's ModelConfig)."""

    exemplar_size = 127
    instance_size = 255
    anchor_stride = 8
    anchor_ratios = (0.33, 0.5, 1.0, 2.0, 3.0)
    anchor_scales = (8.0,)
    score_size = 25
    mask_out_size = 64
    bbox_stds = (0.1, 0.1, 0.2, 0.2)


class NCCModel(nn.Module):
    def __init__(self, gain: float = 12.0, bias: float = 0.6) -> None:
        super().__init__()
        self.cfg = NCCGeometry()
        stride = self.cfg.anchor_stride
        # The "backbone": per-channel 8×8 mean with stride 8 (fixed weights, depth-wise).
        pool = torch.full((3, 1, stride, stride), 1.0 / stride ** 2)
        self.register_buffer("pool", pool)
        self.gain, self.bias = float(gain), float(bias)
        self.crop_lo, self.crop_n = 4, 7  # template feature 15×15 -> central 7×7 (as the paper's neck)
        # Anchor grid vs feature grid: in the template crop the target centre is pixel (E-1)/2, which lies
        # (E-1)/2 - (8·lo + 27.5) px from the centre of the central 7×7 feature patch. A match at score cell c (patch
        # over crop pixels 8c..8c+55) therefore puts the target at 8c + (E-1)/2 - 8·lo, i.e. 8c - 96.5 relative to
        # the crop centre I/2, while anchor c sits at 8c - 96: every anchor is shifted by this constant.
        e, i, st = self.cfg.exemplar_size, self.cfg.instance_size, stride
        self.center_shift = (e - 1) / 2.0 - st * self.crop_lo - i / 2.0 + (self.cfg.score_size // 2) * st
        self._t: Optional[torch.Tensor] = None

    def _features(self, img: torch.Tensor) -> torch.Tensor:
        return F.conv2d(img.float(), self.pool, stride=self.cfg.anchor_stride, groups=3)

    def template(self, z: torch.Tensor) -> None:
        f = self._features(z)[:, :, self.crop_lo:self.crop_lo + self.crop_n, self.crop_lo:self.crop_lo + self.crop_n]
        t = f - f.mean()
        self._t = t / t.norm().clamp_min(1e-6)

    def track(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self._t is None:
            raise RuntimeError("NCCModel.track() called before template()")
        s = self._features(x)
        k = self.crop_n
        n = 3 * k * k
        num = F.conv2d(s, self._t)
        ones = torch.ones_like(self._t)
        mean = F.conv2d(s, ones) / n
        var = (F.conv2d(s * s, ones) / n - mean * mean).clamp_min(0.0)
        ncc = num / torch.sqrt(var * n + 1e-3)
        a = len(self.cfg.anchor_ratios) * len(self.cfg.anchor_scales)
        fg = (self.gain * (ncc - self.bias)).expand(-1, a, -1, -1)
        cls = torch.cat((torch.zeros_like(fg), fg), dim=1)
        size = self.cfg.anchor_stride ** 2
        widths, heights = [], []
        for r in self.cfg.anchor_ratios:
            ws = int((size / r) ** 0.5)
            for sc in self.cfg.anchor_scales:
                widths.append(ws * sc)
                heights.append(int(ws * r) * sc)
        ss = self.cfg.score_size
        dx = torch.tensor([self.center_shift / w for w in widths], device=x.device)
        dy = torch.tensor([self.center_shift / h for h in heights], device=x.device)
        dx, dy = (d.view(1, a, 1, 1).expand(1, a, ss, ss) for d in (dx, dy))
        zero = torch.zeros(1, 2 * a, ss, ss, device=x.device)
        return {"cls": cls, "loc": torch.cat((dx, dy, zero), dim=1)}

    def bbox_refine(self, rois: torch.Tensor) -> torch.Tensor:
        return torch.zeros(rois.reshape(-1, 5).shape[0], 4, device=rois.device)

    def mask_refine(self, rois: torch.Tensor) -> torch.Tensor:
        m = self.cfg.mask_out_size
        return torch.full((rois.reshape(-1, 5).shape[0], 1, m, m), 8.0, device=rois.device)
