"""Training targets: RPN anchor labels (spec section 11.2) and RoI sampling for the refinement heads (section 11.3).

Crop coordinates are continuous with the crop centre at instance_size / 2 (127.5 for 255), the same convention the
tracker decodes with (spec 10.3). PySOT's training code used 127 here; we keep one convention for both sides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torchvision.ops import box_iou, roi_align

from siamattn_ros.model.anchors import anchor_grid


@dataclass
class TargetConfig:
    thr_high: float = 0.6
    thr_low: float = 0.3
    pos_num: int = 16
    neg_num: int = 16          # negatives kept for a negative pair
    total_num: int = 64        # positives + negatives kept for a positive pair
    neg_window: int = 3        # negative pair: anchors within +-3 cells (7x7) of the object position
    roi_per_img: int = 15
    fg_thresh: float = 0.5
    quality_per_img: int = 8   # RoIs per image for the box-quality (IoU) head, spread over IoU 0..1


class AnchorTargets:
    """Anchors of a model geometry and the per-image label assignment."""

    def __init__(self, stride: int, ratios, scales, score_size: int, instance_size: int, cfg: TargetConfig) -> None:
        self.cfg = cfg
        self.score_size = score_size
        self.stride = stride
        self.centre = instance_size / 2.0
        a = anchor_grid(stride, ratios, scales, score_size).astype(np.float64)  # (A, 4, S, S) centre-relative
        a[:, 0] += self.centre
        a[:, 1] += self.centre
        self.anchors_cxcywh = a
        cx, cy, w, h = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        self.corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])  # (4, A, S, S)

    def iou(self, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = self.corners
        iw = np.clip(np.minimum(x2, box[2]) - np.maximum(x1, box[0]), 0, None)
        ih = np.clip(np.minimum(y2, box[3]) - np.maximum(y1, box[1]), 0, None)
        inter = iw * ih
        union = (x2 - x1) * (y2 - y1) + (box[2] - box[0]) * (box[3] - box[1]) - inter
        return inter / np.maximum(union, 1e-9)

    def __call__(self, box_x1y1x2y2: np.ndarray, negative: bool, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> cls (A, S, S) int64 in {-1 ignore, 0 bg, 1 fg}, delta (4, A, S, S) float32, delta_weight (A, S, S)."""
        c = self.cfg
        a = self.anchors_cxcywh
        shape = a.shape[:1] + a.shape[2:]
        cls = np.full(shape, -1, dtype=np.int64)
        delta = np.zeros((4,) + shape, dtype=np.float32)
        weight = np.zeros(shape, dtype=np.float32)
        tx1, ty1, tx2, ty2 = (float(v) for v in box_x1y1x2y2)
        tcx, tcy, tw, th = (tx1 + tx2) / 2, (ty1 + ty2) / 2, max(tx2 - tx1, 1e-3), max(ty2 - ty1, 1e-3)

        def keep(idx: tuple, n: int) -> tuple:
            if len(idx[0]) <= n:
                return idx
            sel = rng.choice(len(idx[0]), n, replace=False)
            return tuple(i[sel] for i in idx)

        if negative:
            s = self.score_size
            col = int(np.floor((tcx - self.centre) / self.stride + s // 2 + 0.5))
            row = int(np.floor((tcy - self.centre) / self.stride + s // 2 + 0.5))
            w = c.neg_window
            r0, r1 = max(0, row - w), min(s, row + w + 1)
            c0, c1 = max(0, col - w), min(s, col + w + 1)
            if r0 < r1 and c0 < c1:
                win = np.zeros(shape, dtype=bool)
                win[:, r0:r1, c0:c1] = True
                cls[keep(np.nonzero(win), c.neg_num)] = 0
            return cls, delta, weight
        delta[0] = (tcx - a[:, 0]) / a[:, 2]
        delta[1] = (tcy - a[:, 1]) / a[:, 3]
        delta[2] = np.log(tw / a[:, 2])
        delta[3] = np.log(th / a[:, 3])
        iou = self.iou(np.array([tx1, ty1, tx2, ty2]))
        pos = keep(np.nonzero(iou > c.thr_high), c.pos_num)
        neg = keep(np.nonzero(iou < c.thr_low), c.total_num - c.pos_num)
        cls[pos] = 1
        cls[neg] = 0
        if len(pos[0]):
            weight[pos] = 1.0 / len(pos[0])
        return cls, delta, weight


def decode_rpn(loc: torch.Tensor, anchors_cxcywh: torch.Tensor, instance_size: int) -> torch.Tensor:
    """RPN deltas (B, 4A, S, S) -> corner boxes (B, A*S*S, 4), centre clipped to the crop and size to [10, size-1]."""
    b = loc.size(0)
    a = anchors_cxcywh  # (A, 4, S, S) absolute crop coordinates
    d = loc.view(b, 4, a.size(0), a.size(2), a.size(3))
    cx = d[:, 0] * a[:, 2] + a[:, 0]
    cy = d[:, 1] * a[:, 3] + a[:, 1]
    w = torch.exp(d[:, 2].clamp(max=6)) * a[:, 2]
    h = torch.exp(d[:, 3].clamp(max=6)) * a[:, 3]
    cx = cx.clamp(0, instance_size - 1)
    cy = cy.clamp(0, instance_size - 1)
    w = w.clamp(10, instance_size - 1)
    h = h.clamp(10, instance_size - 1)
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
    return boxes.reshape(b, -1, 4)


def sample_rois(proposals: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, cfg: TargetConfig,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground RoIs per image (IoU >= fg_thresh with the GT; the GT itself is a candidate).

    proposals (B, N, 4), gt (B, 4) corner boxes, valid (B,) bool: images to sample for (positive pairs).
    -> rois (n, 5) [batch_index, x1, y1, x2, y2] and the matching GT boxes (n, 4); roi_per_img per valid image,
    sampled without replacement, or the whole candidate set repeated plus a random remainder when there are fewer.
    """
    rois, gts = [], []
    k = cfg.roi_per_img
    for i in torch.nonzero(valid).flatten().tolist():
        cand = torch.cat([proposals[i], gt[i:i + 1]], 0)
        iou = box_iou(cand, gt[i:i + 1])[:, 0]
        fg = cand[iou >= cfg.fg_thresh]
        n = fg.size(0)
        if n >= k:
            idx = torch.randperm(n, generator=generator)[:k]
        else:
            idx = torch.cat([torch.arange(n).repeat(k // n), torch.randperm(n, generator=generator)[:k % n]])
        sel = fg[idx]
        rois.append(torch.cat([torch.full((k, 1), float(i)), sel], 1))
        gts.append(gt[i:i + 1].expand(k, 4))
    if not rois:
        return torch.zeros((0, 5)), torch.zeros((0, 4))
    return torch.cat(rois), torch.cat(gts)


def box_refine_targets(rois: torch.Tensor, gts: torch.Tensor, stds) -> torch.Tensor:
    """Normalised deltas (dcx/w, dcy/h, log(w_gt/w), log(h_gt/h)) / stds of the GT w.r.t. each RoI (n, 4)."""
    r = rois[:, 1:]
    w = (r[:, 2] - r[:, 0]).clamp(min=1e-3)
    h = (r[:, 3] - r[:, 1]).clamp(min=1e-3)
    gw = (gts[:, 2] - gts[:, 0]).clamp(min=1e-3)
    gh = (gts[:, 3] - gts[:, 1]).clamp(min=1e-3)
    d = torch.stack([((gts[:, 0] + gts[:, 2]) - (r[:, 0] + r[:, 2])) / 2 / w,
                     ((gts[:, 1] + gts[:, 3]) - (r[:, 1] + r[:, 3])) / 2 / h,
                     torch.log(gw / w), torch.log(gh / h)], 1)
    return d / torch.as_tensor(stds, dtype=d.dtype)


def mask_refine_targets(masks: torch.Tensor, rois: torch.Tensor, size: int) -> torch.Tensor:
    """Binary (n, 1, size, size) targets: the GT search mask (B, H, W) resampled inside each RoI."""
    m = masks[:, None].float()
    t = roi_align(m, rois.float(), output_size=size, spatial_scale=1.0, sampling_ratio=1, aligned=True)
    return (t >= 0.5).float()


def sample_quality_rois(proposals: torch.Tensor, gt: torch.Tensor, negative: torch.Tensor, cfg: TargetConfig,
                        generator: torch.Generator, instance_size: int,
                        image_boxes: Optional[torch.Tensor] = None,
                        scores: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RoIs for the box-quality head and their IoU targets, for every image of the batch.

    The head must rank boxes on the target above boxes that are not: so per image half the RoIs are the GT jittered
    in position and scale (3/8 slightly, 1/8 strongly: IoU spread over 0..1), a quarter are grown 1.5-4x around the
    target (the failure where the box swells over the out-of-image padding), and a quarter are RPN proposals anywhere
    in the crop (background, look-alikes). With `image_boxes` (B, 4), the image's extent in the crop, every second
    grown box is cut to the image, as the tracker's reported box is, and the last proposal is replaced by the extent
    itself: the box that has swollen to the whole visible image, the failure on large and border-touching targets.
    With `scores` (B, N), the RPN's foreground probability of each proposal, the first proposal is the best-scoring
    one off the target (IoU < 0.3) and the second the best-scoring one: the boxes the tracker itself reports when it
    has drifted to a look-alike, which random proposals (mostly plain background) almost never are. (Tried against
    the head's drift on real footage over model v3's fine-tune; it did not stop it: docs/MODEL_CARD.md, version 4.)
    Negative pairs (template of another object) have target IoU 0 everywhere.
    proposals (B, N, 4), gt (B, 4) corner boxes, negative (B,) bool -> rois (B*k, 5), targets (B*k,).
    """
    k = cfg.quality_per_img
    b = gt.size(0)
    n_jit, n_big = k // 2, k // 4
    n_prop = k - n_jit - n_big
    rois, targets = [], []
    for i in range(b):
        g = gt[i]
        cx, cy = (g[0] + g[2]) / 2, (g[1] + g[3]) / 2
        w, h = (g[2] - g[0]).clamp(min=4.0), (g[3] - g[1]).clamp(min=4.0)
        r = torch.rand(n_jit + n_big, 4, generator=generator)
        # Most jittered boxes close to the target (IoU mostly 0.5-0.95: the head must rank good boxes, which is
        # what the tracker asks it about), the rest far off (IoU mostly below 0.4).
        spread = torch.tensor([0.4 if j < (3 * n_jit) // 4 else 2.4 for j in range(n_jit)])[:, None]
        jit_s = torch.exp((r[:n_jit, 2:] - 0.5) * spread)                 # size x0.82..x1.22 | x0.30..x3.3
        jit_c = (r[:n_jit, :2] - 0.5) * spread / 1.5 * torch.stack([w, h])  # centre +-0.13 | +-0.8 of the size
        big_s = 1.5 + 2.5 * r[n_jit:, 2:]                                  # x1.5 .. x4
        big_c = (r[n_jit:, :2] - 0.5) * 0.5 * torch.stack([w, h])
        sizes = torch.cat([jit_s, big_s]) * torch.stack([w, h])
        centres = torch.cat([jit_c, big_c]) + torch.stack([cx, cy])
        boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], 1)
        pick = torch.randint(proposals.size(1), (n_prop,), generator=generator)
        if scores is not None and n_prop >= 2:
            s_i = scores[i].clone()
            if not bool(negative[i]):
                s_i[box_iou(proposals[i], g[None])[:, 0] >= 0.3] = -1.0
            pick[0] = int(torch.argmax(s_i))
            pick[1] = int(torch.argmax(scores[i]))
        boxes = torch.cat([boxes, proposals[i, pick]], 0)
        if image_boxes is not None:
            e = image_boxes[i]
            cut = torch.arange(n_jit + 1, n_jit + n_big, 2)
            boxes[cut] = torch.cat([torch.maximum(boxes[cut, :2], e[:2]), torch.minimum(boxes[cut, 2:], e[2:])], 1)
            boxes[-1] = e
        boxes = boxes.clamp(-instance_size, 2 * instance_size)
        boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1.0)   # a cut box stays a box
        iou = torch.zeros(k) if bool(negative[i]) else box_iou(boxes, g[None])[:, 0]
        rois.append(torch.cat([torch.full((k, 1), float(i)), boxes], 1))
        targets.append(iou)
    return torch.cat(rois), torch.cat(targets)
