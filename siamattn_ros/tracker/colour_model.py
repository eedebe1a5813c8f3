"""Colour likelihood of the target against its surroundings, learned on the init frame, to trim the mask.

The mask head of the small model often takes in what the target stands on or walks beside (the cardboard box under
a planar target, a companion next to a pedestrian). Where the target's colours differ from its surroundings, a
per-pixel likelihood P(target | colour) from two histograms of the init frame (inside the init box, and the ring
around it) tells those pixels apart, the way colour-based trackers (and CSRT's spatial reliability map) do. Whether
colour separates this target at all is measured on the init frame itself: the trimmed region there must match the
init box (``fit``); otherwise the model stays off for this target (TrackerConfig.colour_mask, colour_min_fit).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import cv2
import numpy as np

from siamattn_ros.interface.metrics import box_iou
from siamattn_ros.tracker.mask import mask_shape

SHIFT = 4  # 8-bit levels -> bins: 256 >> SHIFT = 16 per channel, 4096 joint BGR bins (16 grey levels on a grey image)
BINS = 256 >> SHIFT
# The surrounding ring reaches this fraction of sqrt(w * h) beyond the box on every side.
RING = 0.5
# The likelihood map is averaged over this many pixels square: single pixels of a target colour in the background
# (or of a background colour on the target) do not split or grow the mask.
SMOOTH = 5


def _bins(image: np.ndarray) -> np.ndarray:
    q = image.astype(np.int32) >> SHIFT
    return (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]


class ColourModel:
    """``fit(image, box, threshold, min_fit)`` on the init frame; then, while ``active``, ``trim(region,
    image_region)`` on each frame's mask."""

    def __init__(self) -> None:
        self.lut: Optional[np.ndarray] = None  # P(target | bin), float32 (BINS³,)
        self.threshold = 0.0
        self.fit_iou = float("nan")
        self.active = False  # fitted, and fit_iou >= min_fit: colour tells this target from its surroundings

    def reset(self) -> None:
        self.lut, self.fit_iou, self.active = None, float("nan"), False

    def fit(self, image: np.ndarray, box_xywh: Sequence[float], threshold: float, min_fit: float = 0.0) -> float:
        """Learn the histograms of the box and its ring in `image`. Returns (and stores as fit_iou) the IoU of the
        box with the largest component of {likelihood >= threshold} in the box + ring: how well colour alone finds
        this target on the frame it was learned from; `active` when that is >= min_fit."""
        height, width = image.shape[:2]
        x, y, w, h = (float(v) for v in box_xywh)
        pad = RING * math.sqrt(max(w * h, 1.0))
        x0, y0 = int(max(x, 0.0)), int(max(y, 0.0))
        x1, y1 = int(min(x + w, width)), int(min(y + h, height))
        rx0, ry0 = int(max(x - pad, 0.0)), int(max(y - pad, 0.0))
        rx1, ry1 = int(min(x + w + pad, width)), int(min(y + h + pad, height))
        if x1 <= x0 or y1 <= y0:  # less than one whole pixel in the image (a box mostly outside it): no model
            self.reset()
            self.fit_iou = 0.0
            return 0.0
        q = _bins(image[ry0:ry1, rx0:rx1])
        inside = np.bincount(q[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0].ravel(), minlength=BINS ** 3)
        ring = np.bincount(q.ravel(), minlength=BINS ** 3) - inside
        # Raw counts, not densities: a colour common in the ring but rare in the box stays unlikely (the ring's
        # larger area is the prior). +1 / +2: an unseen colour gets 0.5.
        self.lut = ((inside + 1.0) / (inside + ring + 2.0)).astype(np.float32)
        self.threshold = float(threshold)
        found_region = (self.likelihood(image[ry0:ry1, rx0:rx1]) >= self.threshold).astype(np.uint8)
        _, found = mask_shape(found_region, (rx0, ry0), np.zeros(4))
        self.fit_iou = 0.0 if found is None else float(box_iou(found[None], np.array([[x, y, w, h]]))[0])
        self.active = self.fit_iou >= min_fit
        return self.fit_iou

    def likelihood(self, image_region: np.ndarray) -> np.ndarray:
        """Smoothed P(target | colour) per pixel of an image region (float32, same height and width)."""
        if self.lut is None:
            raise RuntimeError("ColourModel.likelihood before fit()")
        return cv2.blur(self.lut[_bins(image_region)], (SMOOTH, SMOOTH))

    def trim(self, region: np.ndarray, image_region: np.ndarray) -> np.ndarray:
        """The binary (0 / 255) mask region without its pixels whose colour is unlikely on the target; only the
        mask's bounding rectangle is looked at."""
        ys, xs = np.nonzero(region)
        if not len(xs):
            return region
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        out = np.zeros_like(region)
        keep = self.likelihood(image_region[y0:y1, x0:x1]) >= self.threshold
        out[y0:y1, x0:x1] = np.where(keep, region[y0:y1, x0:x1], 0)
        return out


__all__ = ["ColourModel", "BINS", "RING", "SMOOTH"]
