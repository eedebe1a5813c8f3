"""Overlap metrics for one sequence (OTB/GOT-10k conventions)."""
from __future__ import annotations

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of (N, 4) x, y, w, h boxes; NaN where either box is NaN."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    out[~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1))] = np.nan
    return out


def success_curve(ious: np.ndarray, thresholds: np.ndarray = SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with IoU > t for each threshold t (NaN IoUs, i.e. frames without truth, are ignored)."""
    v = np.asarray(ious, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.zeros(len(thresholds))
    return np.array([(v > t).mean() for t in thresholds])


def auc(ious: np.ndarray) -> float:
    """Area under the success curve (mean of the curve over 21 thresholds 0..1), the OTB 'success' score."""
    return float(success_curve(ious).mean())
