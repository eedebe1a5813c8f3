"""One-pass-evaluation metrics (pure NumPy). Boxes are (N, 4) x, y, w, h; NaN truth rows (target absent) are skipped.

- success: fraction of frames with IoU > t for t in 0, 0.05, ..., 1 (21 thresholds, OTB); AUC = mean of that curve.
- precision: fraction of frames with centre error <= t px, t = 0..50; reported at 20 px.
- normalised precision (LaSOT): centre error measured in units of the truth box size
  (sqrt((dx / w_gt)^2 + (dy / h_gt)^2)); curve over t in 0..0.5 (51 thresholds); reported = mean of the curve.
- mask IoU: mean over frames with a truth mask and a visible target; a missing prediction counts as 0.
A missing / NaN prediction counts as IoU 0 and infinite centre error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
NORM_PRECISION_THRESHOLDS = np.linspace(0.0, 0.5, 51)


def _as_boxes(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) x, y, w, h, got shape {b.shape}")
    return b


def box_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-row IoU of two (N, 4) xywh arrays; NaN where the truth is NaN, 0 where the prediction is NaN."""
    p, g = _as_boxes(pred), _as_boxes(gt)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and truth {g.shape} differ in shape")
    x1 = np.maximum(p[:, 0], g[:, 0])
    y1 = np.maximum(p[:, 1], g[:, 1])
    x2 = np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2])
    y2 = np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    iou = np.where(np.isnan(p).any(axis=1), 0.0, iou)
    return np.where(np.isnan(g).any(axis=1), np.nan, iou)


def centre_error(pred: np.ndarray, gt: np.ndarray, normalised: bool = False) -> np.ndarray:
    p, g = _as_boxes(pred), _as_boxes(gt)
    d = (p[:, :2] + p[:, 2:] / 2) - (g[:, :2] + g[:, 2:] / 2)
    if normalised:
        with np.errstate(invalid="ignore", divide="ignore"):
            d = d / g[:, 2:]
    e = np.sqrt((d ** 2).sum(axis=1))
    e = np.where(np.isnan(p).any(axis=1), np.inf, e)
    return np.where(np.isnan(g).any(axis=1), np.nan, e)


def success_curve(iou: np.ndarray) -> np.ndarray:
    v = iou[~np.isnan(iou)]
    if v.size == 0:
        return np.full(SUCCESS_THRESHOLDS.shape, np.nan)
    return np.array([(v > t).mean() for t in SUCCESS_THRESHOLDS])


def precision_curve(err: np.ndarray, thresholds: np.ndarray = PRECISION_THRESHOLDS) -> np.ndarray:
    v = err[~np.isnan(err)]
    if v.size == 0:
        return np.full(thresholds.shape, np.nan)
    return np.array([(v <= t).mean() for t in thresholds])


def mask_iou(pred: Optional[np.ndarray], gt: np.ndarray) -> float:
    g = np.asarray(gt) > 0
    if pred is None:
        return 0.0
    p = np.asarray(pred) > 0
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: prediction {p.shape}, truth {g.shape}")
    union = np.logical_or(p, g).sum()
    return float(np.logical_and(p, g).sum() / union) if union else 1.0


@dataclass
class SequenceScore:
    success_auc: float
    precision_20: float
    norm_precision: float
    mask_iou: float            # NaN when the sequence has no truth masks
    frames_scored: int
    success: np.ndarray
    precision: np.ndarray
    norm_prec_curve: np.ndarray


def score_sequence(pred: np.ndarray, gt: np.ndarray, pred_masks: Optional[Sequence] = None,
                   gt_masks: Optional[Sequence] = None, skip_first: bool = True) -> SequenceScore:
    """Scores of one sequence. skip_first: the initialisation frame is given to the tracker, so it is not scored."""
    pred, gt = _as_boxes(pred).copy(), _as_boxes(gt).copy()
    if skip_first:
        gt[0] = np.nan
    iou = box_iou(pred, gt)
    s = success_curve(iou)
    p = precision_curve(centre_error(pred, gt))
    npc = precision_curve(centre_error(pred, gt, normalised=True), NORM_PRECISION_THRESHOLDS)
    m = float("nan")
    if gt_masks is not None:
        vals = [mask_iou(pred_masks[i] if pred_masks is not None else None, gt_masks[i])
                for i in range(len(gt_masks)) if not np.isnan(gt[i]).any()]
        m = float(np.mean(vals)) if vals else float("nan")
    return SequenceScore(float(np.mean(s)), float(p[20]), float(np.mean(npc)), m, int((~np.isnan(iou)).sum()),
                         s, p, npc)
