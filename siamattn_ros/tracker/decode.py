"""From network outputs to one box: scores, box decoding, scale/ratio penalty, cosine window, best-anchor
choice and the box-refinement RoI and decode (spec §10.3 steps 3-7); the anchors come from
siamattn_ros.model.anchors.flat_anchors (spec §5), the generator the training targets use too.

Everything is written with torch ops on whatever device the tensors live on, without host synchronisation, so the
whole chain can run on the GPU (and inside a CUDA graph) and only a handful of numbers are copied back.
Box tensors are (4, N) rows cx, cy, w, h; anchor index n = a·S² + row·S + col.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch


def cosine_window(score_size: int, num_anchors: int) -> np.ndarray:
    """Outer product of two Hann windows (end points exactly 0), flattened row-major, tiled per anchor."""
    hann = np.hanning(score_size)
    return np.tile(np.outer(hann, hann).ravel(), num_anchors).astype(np.float32)


def fg_scores(cls: torch.Tensor) -> torch.Tensor:
    """(1, 2A, S, S) logits (channels: A background, then A foreground) → (A·S²,) foreground probabilities."""
    two_a = cls.shape[1]
    logits = cls.reshape(2, two_a // 2 * cls.shape[2] * cls.shape[3])
    return torch.softmax(logits.float(), dim=0)[1]


def decode_boxes(loc: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(1, 4A, S, S) deltas (channels dx×A, dy×A, dw×A, dh×A) → (4, A·S²) boxes cx, cy (relative to the crop
    centre), w, h."""
    d = loc.reshape(4, -1).float()
    cx = d[0] * anchors[2] + anchors[0]
    cy = d[1] * anchors[3] + anchors[1]
    w = torch.exp(d[2]) * anchors[2]
    h = torch.exp(d[3]) * anchors[3]
    return torch.stack((cx, cy, w, h))


def _change(r: torch.Tensor) -> torch.Tensor:
    return torch.maximum(r, 1.0 / r)


def _sz(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    pad = (w + h) * 0.5
    return torch.sqrt((w + pad) * (h + pad))


def scale_penalty(boxes: torch.Tensor, target_wh_crop: torch.Tensor, penalty_k: float) -> torch.Tensor:
    """exp(-(r_c·s_c - 1)·k): penalises size and aspect-ratio change against the current target (crop pixels)."""
    tw, th = target_wh_crop[0], target_wh_crop[1]
    s_c = _change(_sz(boxes[2], boxes[3]) / _sz(tw, th))
    r_c = _change((tw / th) / (boxes[2] / boxes[3]))
    return torch.exp(-(r_c * s_c - 1.0) * penalty_k)


def select_best(score: torch.Tensor, penalty: torch.Tensor, window: torch.Tensor,
                window_influence: float) -> torch.Tensor:
    """Index (0-dim long tensor) of the anchor maximising (penalty·score)(1 - wi) + window·wi."""
    pscore = penalty * score * (1.0 - window_influence) + window * window_influence
    return torch.argmax(pscore)


def rpn_box_in_crop(box: torch.Tensor, instance_size: int) -> torch.Tensor:
    """Decoded box of the chosen anchor → crop-pixel box (cx, cy, w, h); centre clipped to [0, m-1], size to
    [10, m-1] (spec §10.3 step 6)."""
    half = instance_size / 2.0
    cx = (box[0] + half).clamp(0.0, instance_size - 1.0)
    cy = (box[1] + half).clamp(0.0, instance_size - 1.0)
    w = box[2].clamp(10.0, instance_size - 1.0)
    h = box[3].clamp(10.0, instance_size - 1.0)
    return torch.stack((cx, cy, w, h))


def bbox_roi(box_crop: torch.Tensor) -> torch.Tensor:
    """(1, 5) RoI [0, x1, y1, x2, y2] for the box head: the box shrunk by half a pixel on each side (step 7)."""
    cx, cy, w, h = box_crop[0], box_crop[1], box_crop[2], box_crop[3]
    zero = torch.zeros_like(cx)
    return torch.stack((zero, cx - w / 2 + 0.5, cy - h / 2 + 0.5, cx + w / 2 - 0.5, cy + h / 2 - 0.5)).unsqueeze(0)


def decode_refine(deltas: torch.Tensor, box_crop: torch.Tensor, stds) -> torch.Tensor:
    """Box-head output (1, 4) normalised deltas → refined (cx, cy, w, h) relative to the clipped RPN box.
    stds: 4 numbers, or a float32 tensor on the deltas' device (no copy then)."""
    d = deltas.reshape(4).float() * torch.as_tensor(stds, dtype=torch.float32, device=deltas.device)
    cx = d[0] * box_crop[2] + box_crop[0]
    cy = d[1] * box_crop[3] + box_crop[1]
    w = torch.exp(d[2]) * box_crop[2]
    h = torch.exp(d[3]) * box_crop[3]
    return torch.stack((cx, cy, w, h))


def mask_roi(center: Tuple[float, float], size: Tuple[float, float], crop_origin: Tuple[float, float],
             scale_z: float) -> Tuple[float, float, float, float]:
    """Target state (image pixels) → mask-head RoI (x1, y1, x2, y2) in crop pixels, no ±0.5 (step 12)."""
    pcx = (center[0] - crop_origin[0]) * scale_z
    pcy = (center[1] - crop_origin[1]) * scale_z
    pw, ph = size[0] * scale_z, size[1] * scale_z
    return pcx - pw / 2, pcy - ph / 2, pcx + pw / 2, pcy + ph / 2
