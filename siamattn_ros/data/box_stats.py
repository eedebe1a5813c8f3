"""Statistics of target boxes in frames: size relative to the frame, aspect, border contact, motion, search padding.

One home for the numbers that compare training pairs with real tracking (docs/TRAINING_DATA.md, tools/pair_stats).
Boxes are (N, 4) float arrays x, y, w, h in pixels (pixel i covers [i, i + 1), as everywhere in the project); frame
sizes are (W, H). NumPy only: rows with NaN give NaN (or False for flags) and are left out of the summaries.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from siamattn_ros.data.pairs import crop_window
from siamattn_ros.interface.metrics import as_boxes

# A box "touches" the frame edge when it comes within this many pixels of it (same rule as evaluate --describe).
BORDER_TOL_PX = 1.0
# Small-target threshold of issue 12 (side of a square box of the same area).
SMALL_SIDE_PX = 20.0
# Aspect beyond 1:3 counts as elongated.
ELONGATED = 3.0


def _frames(frame_wh: np.ndarray | Sequence[float], n: int) -> np.ndarray:
    f = np.asarray(frame_wh, dtype=np.float64)
    if f.ndim == 1:
        f = np.broadcast_to(f, (n, 2))
    if f.shape != (n, 2) or (f <= 0).any():
        raise ValueError(f"frame sizes must be positive (W, H) or ({n}, 2); got {np.asarray(frame_wh).tolist()}")
    return f


def side_px(boxes: np.ndarray) -> np.ndarray:
    """sqrt(w h): the side of a square of the box's area (pixels)."""
    b = as_boxes(boxes)
    return np.sqrt(b[:, 2] * b[:, 3])


def relative_size(boxes: np.ndarray, frame_wh: np.ndarray | Sequence[float]) -> np.ndarray:
    """sqrt(box area / frame area): the target's linear size relative to the frame."""
    b = as_boxes(boxes)
    f = _frames(frame_wh, len(b))
    return np.sqrt(b[:, 2] * b[:, 3] / (f[:, 0] * f[:, 1]))


def width_fraction(boxes: np.ndarray, frame_wh: np.ndarray | Sequence[float]) -> np.ndarray:
    """Box width / frame width."""
    b = as_boxes(boxes)
    return b[:, 2] / _frames(frame_wh, len(b))[:, 0]


def aspect(boxes: np.ndarray) -> np.ndarray:
    """Elongation max(w / h, h / w) >= 1 (1 = square, 3 = 1:3 either way)."""
    b = as_boxes(boxes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(b[:, 2] / b[:, 3], b[:, 3] / b[:, 2])


def touches_border(boxes: np.ndarray, frame_wh: np.ndarray | Sequence[float],
                   tol: float = BORDER_TOL_PX) -> np.ndarray:
    """True where the box comes within `tol` pixels of (or crosses) an edge of the frame; False for NaN rows."""
    b = as_boxes(boxes)
    f = _frames(frame_wh, len(b))
    with np.errstate(invalid="ignore"):
        t = ((b[:, 0] <= tol) | (b[:, 1] <= tol) | (b[:, 0] + b[:, 2] >= f[:, 0] - tol)
             | (b[:, 1] + b[:, 3] >= f[:, 1] - tol))
    return t & ~np.isnan(b).any(axis=1)


def motion(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Centre displacement from `prev` to `cur` in units of the previous box's size sqrt(w h).

    The previous box is the one the tracker knows when it cuts the search region, so this is how far (in target
    sizes) the target lies from the search region's centre.
    """
    p, c = as_boxes(prev), as_boxes(cur)
    if p.shape != c.shape:
        raise ValueError(f"prev and cur must have the same shape, got {p.shape} and {c.shape}")
    d = np.hypot(c[:, 0] + c[:, 2] / 2 - p[:, 0] - p[:, 2] / 2, c[:, 1] + c[:, 3] / 2 - p[:, 1] - p[:, 3] / 2)
    return d / side_px(p)


def scale_change(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """|log(area cur / area prev)| (log(2) = the area doubled or halved)."""
    p, c = as_boxes(prev), as_boxes(cur)
    if p.shape != c.shape:
        raise ValueError(f"prev and cur must have the same shape, got {p.shape} and {c.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(np.log((c[:, 2] * c[:, 3]) / (p[:, 2] * p[:, 3])))


def outside_fraction(windows: np.ndarray, frame_wh: np.ndarray | Sequence[float]) -> np.ndarray:
    """Fraction of each window's area (x, y, w, h) that lies outside the frame (the crop's constant padding)."""
    w = as_boxes(windows)
    f = _frames(frame_wh, len(w))
    ix = np.clip(np.minimum(w[:, 0] + w[:, 2], f[:, 0]) - np.maximum(w[:, 0], 0.0), 0.0, None)
    iy = np.clip(np.minimum(w[:, 1] + w[:, 3], f[:, 1]) - np.maximum(w[:, 1], 0.0), 0.0, None)
    return np.clip(1.0 - ix * iy / (w[:, 2] * w[:, 3]), 0.0, 1.0)   # clip: rounding gives -2e-16 when inside


def search_windows(prev: np.ndarray, exemplar_size: int = 127, instance_size: int = 255,
                   context: float = 0.5) -> np.ndarray:
    """Square search regions (x, y, side, side) the tracker cuts around `prev` boxes (pairs.crop_window's rule)."""
    p = as_boxes(prev)
    side = np.array([crop_window(b, exemplar_size, instance_size, context) if not np.isnan(b).any() else np.nan
                     for b in p])
    cx, cy = p[:, 0] + p[:, 2] / 2, p[:, 1] + p[:, 3] / 2
    return np.stack([cx - side / 2, cy - side / 2, side, side], axis=1)


def is_grey(image: np.ndarray) -> bool:
    """True for a single-channel image or a colour image whose three channels are equal."""
    img = np.asarray(image)
    if img.ndim == 2 or img.shape[2] == 1:
        return True
    return bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())


def quantiles(values: np.ndarray) -> tuple[float, float, float]:
    """(10th percentile, median, 90th percentile) of the finite values; NaN when there are none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (float("nan"),) * 3
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    return float(p10), float(p50), float(p90)


def fraction(flags: np.ndarray) -> float:
    """Mean of a boolean array (NaN when empty)."""
    f = np.asarray(flags, dtype=bool)
    return float(f.mean()) if f.size else float("nan")
