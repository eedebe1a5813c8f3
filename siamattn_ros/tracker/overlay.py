"""Draw a TrackResult on a frame: tinted mask, axis-aligned box, rotated polygon, score and state text.
Used by the track CLI (--overlay) and by the ROS node's /track/overlay topic."""
from __future__ import annotations

from typing import Dict, Tuple

import cv2
import numpy as np

from siamattn_ros.tracker.result import TrackResult, TrackState

# BGR colour per state: green tracking, amber low confidence, red lost, grey otherwise.
STATE_COLORS: Dict[TrackState, Tuple[int, int, int]] = {
    TrackState.INITIALIZING: (255, 200, 0),
    TrackState.TRACKING: (0, 200, 0),
    TrackState.LOW_CONFIDENCE: (0, 190, 255),
    TrackState.LOST: (0, 0, 255),
    TrackState.STOPPED: (160, 160, 160),
    TrackState.ERROR: (255, 0, 255),
}


def draw_overlay(image: np.ndarray, result: TrackResult, mask_alpha: float = 0.45) -> np.ndarray:
    """A copy of image (H×W×3 uint8 BGR) with the result drawn on it; the input is not modified."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"draw_overlay needs an (H, W, 3) uint8 BGR image, got "
                         f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}")
    out = image.copy()
    color = STATE_COLORS.get(TrackState(result.state), (255, 255, 255))
    h, w = out.shape[:2]
    if result.mask is not None and result.mask.shape == (h, w) and result.mask.any():
        sel = result.mask > 0
        tint = np.array(color, np.float32)
        out[sel] = (out[sel].astype(np.float32) * (1 - mask_alpha) + tint * mask_alpha).astype(np.uint8)
    x, y, bw, bh = (float(v) for v in result.box_xywh)
    thick = 1 if result.state == TrackState.LOST else 2
    cv2.rectangle(out, (int(round(x)), int(round(y))), (int(round(x + bw)) - 1, int(round(y + bh)) - 1), color,
                  thick, cv2.LINE_AA)
    poly = np.asarray(result.polygon, np.float32).reshape(-1, 2)
    if poly.shape[0] == 4 and np.isfinite(poly).all():
        cv2.polylines(out, [np.round(poly).astype(np.int32)], True, (255, 255, 0), 1, cv2.LINE_AA)
    label = f"{TrackState(result.state).name} {result.confidence:.2f}"
    scale = max(0.4, min(1.0, w / 1000.0))
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    tx = int(min(max(0, x), max(0, w - tw - 2)))
    ty = int(y - 4) if y - th - 6 >= 0 else int(min(h - base - 2, y + bh + th + 4))
    cv2.rectangle(out, (tx, ty - th - 2), (tx + tw + 2, ty + base), (0, 0, 0), -1)
    cv2.putText(out, label, (tx + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return out
