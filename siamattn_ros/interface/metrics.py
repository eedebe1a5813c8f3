"""One-pass-evaluation metrics (pure NumPy): the ONE IoU / success / precision implementation, used by the
evaluate tool, the demo, replay and the tests.

Boxes are (N, 4) top-left x, y, w, h (a single (4,) box is taken as one row). Missing values and empty input:
- a truth row with a non-finite value (target absent / not annotated) is not scored: its IoU and centre error are
  NaN, and every curve ignores NaN entries;
- a prediction row with a non-finite value while the truth is present (the tracker gave no box) is a miss: IoU
  `missing_pred` (default 0; pass NaN to leave such frames unscored too) and an infinite centre error;
- a curve over no scored frame (empty input, or all NaN) is all NaN, and so is its AUC: "no score", not zero.

- success: fraction of frames with IoU > t for t in 0, 0.05, ..., 1 (21 thresholds, OTB); AUC = mean of that curve.
- precision: fraction of frames with centre error <= t px, t = 0..50; reported at 20 px.
- normalised precision (LaSOT): centre error measured in units of the truth box size
  (sqrt((dx / w_gt)^2 + (dy / h_gt)^2)); curve over t in 0..0.5 (51 thresholds); reported = mean of the curve.
- mask IoU: mean over frames with a truth mask and a visible target; a missing prediction counts as 0.
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
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) x, y, w, h, got shape {b.shape}")
    return b


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_boxes(pred), _as_boxes(truth)
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and truth {g.shape} differ in shape")
    return p, g


def box_iou(pred: np.ndarray, truth: np.ndarray, missing_pred: float = 0.0) -> np.ndarray:
    """Per-row IoU of two (N, 4) xywh arrays: NaN where the truth is missing, `missing_pred` where only the
    prediction is (see the module docstring). Boxes of zero area overlap nothing (IoU 0)."""
    p, g = _pair(pred, truth)
    x1 = np.maximum(p[:, 0], g[:, 0])
    y1 = np.maximum(p[:, 1], g[:, 1])
    x2 = np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2])
    y2 = np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = p[:, 2] * p[:, 3] + g[:, 2] * g[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    iou = np.where(np.isfinite(p).all(axis=1), iou, missing_pred)
    return np.where(np.isfinite(g).all(axis=1), iou, np.nan)


def centre_error(pred: np.ndarray, truth: np.ndarray, normalised: bool = False) -> np.ndarray:
    """Per-row distance between box centres in px (normalised: in units of the truth box's width / height);
    NaN where the truth is missing, inf where only the prediction is."""
    p, g = _pair(pred, truth)
    d = (p[:, :2] + p[:, 2:] / 2) - (g[:, :2] + g[:, 2:] / 2)
    if normalised:
        with np.errstate(invalid="ignore", divide="ignore"):
            d = d / g[:, 2:]
    e = np.sqrt((d ** 2).sum(axis=1))
    e = np.where(np.isfinite(p).all(axis=1), e, np.inf)
    return np.where(np.isfinite(g).all(axis=1), e, np.nan)


def success_curve(ious: np.ndarray, thresholds: np.ndarray = SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of scored frames (non-NaN IoU) with IoU > t, per threshold t; all NaN when no frame is scored."""
    v = np.asarray(ious, np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.full(np.shape(thresholds), np.nan)
    return np.array([(v > t).mean() for t in thresholds])


def auc(ious: np.ndarray) -> float:
    """Area under the success curve (its mean over the 21 thresholds 0..1), the OTB "success" score; NaN when no
    frame is scored."""
    return float(np.mean(success_curve(ious)))


def precision_curve(err: np.ndarray, thresholds: np.ndarray = PRECISION_THRESHOLDS) -> np.ndarray:
    """Fraction of scored frames (non-NaN error) with centre error <= t, per threshold t; all NaN when none."""
    v = np.asarray(err, np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.full(np.shape(thresholds), np.nan)
    return np.array([(v <= t).mean() for t in thresholds])


def mask_iou(pred: Optional[np.ndarray], truth: np.ndarray) -> float:
    """IoU of two masks (nonzero = object); a missing prediction is 0, two empty masks agree fully (1)."""
    g = np.asarray(truth) > 0
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


def score_sequence(pred: np.ndarray, truth: np.ndarray, pred_masks: Optional[Sequence] = None,
                   truth_masks: Optional[Sequence] = None, skip_first: bool = True) -> SequenceScore:
    """Scores of one sequence. skip_first: the initialisation frame is given to the tracker, so it is not scored."""
    pred, truth = _pair(pred, truth)
    truth = truth.copy()
    if skip_first:
        truth[0] = np.nan
    iou = box_iou(pred, truth)
    s = success_curve(iou)
    p = precision_curve(centre_error(pred, truth))
    npc = precision_curve(centre_error(pred, truth, normalised=True), NORM_PRECISION_THRESHOLDS)
    m = float("nan")
    if truth_masks is not None:
        vals = [mask_iou(pred_masks[i] if pred_masks is not None else None, truth_masks[i])
                for i in range(len(truth_masks)) if np.isfinite(truth[i]).all()]
        m = float(np.mean(vals)) if vals else float("nan")
    return SequenceScore(float(np.mean(s)), float(p[20]), float(np.mean(npc)), m, int((~np.isnan(iou)).sum()),
                         s, p, npc)
