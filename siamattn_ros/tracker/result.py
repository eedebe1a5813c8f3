"""What the tracker returns per frame. Shared by the tracker engine and the ROS adapter (TrackState itself lives
in siamattn_ros.interface, so light code can use it without torch)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from siamattn_ros.interface.convert import xywh_to_center_size
from siamattn_ros.interface.states import TrackState

__all__ = ["TrackResult", "TrackState"]


@dataclass
class TrackResult:
    """One frame's result, in full-resolution source-image pixels.

    box_xywh: axis-aligned box, top-left x, y and width, height (floats), always inside the image: the tracker's state
        box, or with TrackerConfig.box_from_mask the box of the mask's largest component where it overlaps that.
    polygon: (4, 2) float32 corners of the mask's minimum-area rotated rectangle (or of the box when there is no mask
        component larger than 100 px^2), in order around the rectangle.
    mask: full-frame uint8 mask (0 / 255), or None when masks were not requested; all zero while LOST in long-term
        mode (TrackerConfig.long_term; the paper presets compute it on every frame).
    confidence: in [0, 1]: the box-quality head's IoU estimate for models that have one (the embedded model), else
        the chosen anchor's foreground probability.
    """

    box_xywh: np.ndarray
    polygon: np.ndarray
    mask: Optional[np.ndarray]
    confidence: float
    state: TrackState
    init_id: int
    frames_since_init: int

    @property
    def center_size(self) -> tuple[float, float, float, float]:
        """(center_x, center_y, width, height) of the axis-aligned box."""
        return xywh_to_center_size(self.box_xywh)
