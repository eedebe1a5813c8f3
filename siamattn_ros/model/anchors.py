"""Anchors of the 25x25 score map (spec section 5) as NumPy arrays: the ONE anchor generator, used by the training
targets (train/targets.py, `anchor_grid`) and by the tracker's decode (tracker/tracker.py, `flat_anchors`);
test_train_targets_losses checks that a training target decodes back to its box through the tracker's decode."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def anchor_sizes(stride: int, ratios: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """(A, 2) anchor (w, h) in crop pixels, in channel order (ratio-major, then scale)."""
    out = []
    size = stride * stride
    for r in ratios:
        ws = int(math.sqrt(size / r))
        hs = int(ws * r)
        for s in scales:
            out.append((ws * s, hs * s))
    return np.asarray(out, dtype=np.float32)


def anchor_grid(stride: int, ratios: Sequence[float], scales: Sequence[float], score_size: int) -> np.ndarray:
    """(A, 4, S, S) anchors as (cx, cy, w, h) with centres relative to the crop centre (-96 .. 96 for S = 25)."""
    sizes = anchor_sizes(stride, ratios, scales)
    a = len(sizes)
    ori = -(score_size // 2) * stride
    pos = ori + stride * np.arange(score_size, dtype=np.float32)
    cx = np.broadcast_to(pos[None, :], (score_size, score_size))
    cy = np.broadcast_to(pos[:, None], (score_size, score_size))
    out = np.zeros((a, 4, score_size, score_size), dtype=np.float32)
    out[:, 0] = cx
    out[:, 1] = cy
    out[:, 2] = sizes[:, 0, None, None]
    out[:, 3] = sizes[:, 1, None, None]
    return out


def flat_anchors(stride: int, ratios: Sequence[float], scales: Sequence[float], score_size: int) -> np.ndarray:
    """(4, A·S²) float32: anchor_grid in the tracker's decode layout, rows cx, cy, w, h and anchor index
    n = a·S² + row·S + col (the order of the flattened (A, S, S) score map)."""
    grid = anchor_grid(stride, ratios, scales, score_size)
    return np.ascontiguousarray(grid.transpose(1, 0, 2, 3).reshape(4, -1))
