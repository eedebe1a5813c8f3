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
from typing import Callable, Optional, Sequence

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
NORM_PRECISION_THRESHOLDS = np.linspace(0.0, 0.5, 51)


def as_boxes(b: np.ndarray) -> np.ndarray:
    """(N, 4) float64 x, y, w, h rows from one box or an array of boxes; ValueError naming the shape otherwise."""
    b = np.asarray(b, dtype=np.float64)
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) x, y, w, h, got shape {b.shape}")
    return b


def _pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = as_boxes(pred), as_boxes(truth)
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


def _fraction_curve(values: np.ndarray, thresholds: np.ndarray, hit: Callable) -> np.ndarray:
    """Per threshold t, the fraction of the non-NaN values v with hit(v, t); all NaN when there are none."""
    v = np.asarray(values, np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.full(np.shape(thresholds), np.nan)
    return np.array([hit(v, t).mean() for t in thresholds])


def success_curve(ious: np.ndarray, thresholds: np.ndarray = SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of scored frames (non-NaN IoU) with IoU > t, per threshold t; all NaN when no frame is scored."""
    return _fraction_curve(ious, thresholds, np.greater)


def auc(ious: np.ndarray) -> float:
    """Area under the success curve (its mean over the 21 thresholds 0..1), the OTB "success" score; NaN when no
    frame is scored."""
    return float(np.mean(success_curve(ious)))


def precision_curve(err: np.ndarray, thresholds: np.ndarray = PRECISION_THRESHOLDS) -> np.ndarray:
    """Fraction of scored frames (non-NaN error) with centre error <= t, per threshold t; all NaN when none."""
    return _fraction_curve(err, thresholds, np.less_equal)


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


# ---------------------------------------------------------------------------------------------------------------------
# Failure detection and failure modes (issue 12's "Done when"): does the confidence / state say when the box is wrong?
# Per-frame inputs are 1-D arrays over a sequence's frames; the evaluate tool pools frames and events over a set.

GOOD_IOU = 0.5      # a frame "on target": IoU >= 0.5
BAD_IOU = 0.2       # a frame "off target": IoU < 0.2, or the target is out of view
OVERSIZE_FACTOR = 4.0
LOST_WITHIN = 10


def failure_labels(ious: np.ndarray, visible: np.ndarray, skip_first: bool = True) -> np.ndarray:
    """Per frame: 1 = on target (visible and IoU >= GOOD_IOU), 0 = failure (target out of view, or IoU < BAD_IOU),
    -1 = neither (IoU in between, or the initialisation frame when skip_first) — such frames are left out of AUROC."""
    iou = np.asarray(ious, np.float64).ravel()
    vis = np.asarray(visible, bool).ravel()
    if iou.shape != vis.shape:
        raise ValueError(f"ious {iou.shape} and visible {vis.shape} differ in length")
    lab = np.full(iou.shape, -1, np.int8)
    lab[vis & (np.nan_to_num(iou, nan=-1.0) >= GOOD_IOU)] = 1
    lab[~vis | (vis & (np.nan_to_num(iou, nan=1.0) < BAD_IOU))] = 0
    if skip_first and lab.size:
        lab[0] = -1
    return lab


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area under the ROC curve of a score separating positives (should score high) from negatives: the probability
    that a random positive scores above a random negative, ties counting 1/2 (Mann-Whitney U / (n_pos n_neg)).
    NaN when either group is empty."""
    pos = np.asarray(positives, np.float64).ravel()
    neg = np.asarray(negatives, np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("auroc: scores must be finite")
    allv = np.concatenate([pos, neg])
    uniq, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    # Average 1-based rank of each distinct value (ties share the mean of their ranks).
    upper = np.cumsum(counts)
    avg_rank = upper - (counts - 1) / 2.0
    rank_sum_pos = avg_rank[inv[:pos.size]].sum()
    u = rank_sum_pos - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def failure_auroc(confidence: np.ndarray, labels: np.ndarray) -> float:
    """AUROC of the confidence for on-target frames (label 1) against failures (label 0), see failure_labels."""
    c = np.asarray(confidence, np.float64).ravel()
    lab = np.asarray(labels).ravel()
    if c.shape != lab.shape:
        raise ValueError(f"confidence {c.shape} and labels {lab.shape} differ in length")
    return auroc(c[lab == 1], c[lab == 0])


def longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of consecutive True values."""
    best = run = 0
    for f in np.asarray(flags, bool).ravel():
        run = run + 1 if f else 0
        best = max(best, run)
    return best


def oversize_run(pred: np.ndarray, truth: np.ndarray, tracking: np.ndarray,
                 factor: float = OVERSIZE_FACTOR) -> int:
    """Longest run of consecutive frames where the target is in view, the state says TRACKING (`tracking` True) and
    the predicted box area exceeds `factor` times the truth area. A frame without truth ends a run."""
    p, g = _pair(pred, truth)
    tr = np.asarray(tracking, bool).ravel()
    if tr.shape[0] != p.shape[0]:
        raise ValueError(f"tracking flags {tr.shape} and boxes {p.shape} differ in length")
    ok = np.isfinite(g).all(axis=1) & np.isfinite(p).all(axis=1)
    area_p = np.where(ok, p[:, 2] * p[:, 3], 0.0)
    area_g = np.where(ok, g[:, 2] * g[:, 3], np.inf)
    return longest_run(ok & tr & (area_p > factor * area_g))


def leave_events(visible: np.ndarray, lost: np.ndarray, within: int = LOST_WITHIN) -> tuple[int, int]:
    """(events, detected): an event is a frame where the target goes from in view to out of view; it is detected when
    the state is LOST (`lost` True) on one of the first `within` frames of that absence (frames after the target is
    back do not count)."""
    vis = np.asarray(visible, bool).ravel()
    lo = np.asarray(lost, bool).ravel()
    if vis.shape != lo.shape:
        raise ValueError(f"visible {vis.shape} and lost {lo.shape} differ in length")
    events = detected = 0
    for i in range(1, vis.size):
        if vis[i - 1] and not vis[i]:
            events += 1
            end = i
            while end < vis.size and not vis[end] and end < i + within:
                end += 1
            detected += bool(lo[i:end].any())
    return events, detected
