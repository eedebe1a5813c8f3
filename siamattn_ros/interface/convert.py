"""Conversions between ROS field layouts and the plain numbers the engine and tools use.

- time: builtin_interfaces/Time and Duration are (sec, nanosec); the project keeps integer nanoseconds (exact, and
  the key under which frames and results are matched).
- boxes: the engine, ground truth files and metrics use top-left x, y, width, height ("xywh"); the messages
  (msg/BoundingBox2D) use centre x, y, width, height ("centre + size"), so centre = x + w / 2.
Messages are duck-typed (anything with .sec / .nanosec, .center_x ...), so this module needs no ROS import.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

NS_PER_S = 1_000_000_000
MIN_BOX_SIDE = 1.0  # px: smaller init boxes are degenerate

Box = tuple[float, float, float, float]


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (or Duration) -> integer nanoseconds (exact; no float rounding)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_sec_nanosec(ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) with nanosec in [0, 1e9) (sec negative for a negative duration)."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return int(sec), int(nanosec)


def set_stamp(stamp: Any, ns: int) -> Any:
    """Write `ns` into a Time / Duration message in place; returns it."""
    stamp.sec, stamp.nanosec = ns_to_sec_nanosec(ns)
    return stamp


def duration_to_s(duration: Any) -> float:
    """builtin_interfaces/Duration (or Time) -> seconds as a float."""
    return duration.sec + duration.nanosec * 1e-9


def format_ns(ns: int) -> str:
    """Nanoseconds as 'sec.nanosec' (9 digits), the way `ros2 topic echo` shows a stamp."""
    sec, nanosec = ns_to_sec_nanosec(ns)
    return f"{sec}.{nanosec:09d}"


def xywh_to_center_size(box_xywh: Sequence[float]) -> Box:
    """Top-left x, y, w, h -> (centre x, centre y, w, h)."""
    x, y, w, h = (float(v) for v in box_xywh)
    return x + w / 2.0, y + h / 2.0, w, h


def center_size_to_xywh(center_x: float, center_y: float, width: float, height: float) -> Box:
    """(centre x, centre y, w, h) -> top-left x, y, w, h."""
    w, h = float(width), float(height)
    return float(center_x) - w / 2.0, float(center_y) - h / 2.0, w, h


def check_box(box_xywh: Any, width: int, height: int) -> Box:
    """The one check of an init box (top-left x, y, w, h) against a width x height image, used by Tracker.init and
    by the ROS init paths (ros.messages.check_init_box): returns the four floats, raises ValueError naming the
    value."""
    try:
        vals = [float(v) for v in _flat(box_xywh)]
    except (TypeError, ValueError) as e:
        raise ValueError(f"init box must be 4 numbers x, y, w, h; got {box_xywh!r}") from e
    if len(vals) != 4:
        raise ValueError(f"init box must be 4 numbers x, y, w, h; got {len(vals)} values: {box_xywh!r}")
    x, y, w, h = vals
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"init box has a non-finite value: {vals!r}")
    if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
        raise ValueError(f"init box is degenerate: width and height must be >= {MIN_BOX_SIDE:g} px, got {w} x {h}")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(f"init box x, y, w, h = {vals!r} does not overlap the {width}x{height} image (it lies "
                         f"entirely outside)")
    return x, y, w, h


def _flat(values: Any) -> list:
    """A box given as a sequence, a NumPy array of any shape, or a string (then rejected by float())."""
    if isinstance(values, str):
        return [values]
    if hasattr(values, "reshape"):
        return list(values.reshape(-1))
    return list(values)


def box_msg_to_xywh(box: Any) -> Box:
    """A BoundingBox2D-like message (center_x, center_y, width, height) -> top-left x, y, w, h (angle ignored)."""
    return center_size_to_xywh(box.center_x, box.center_y, box.width, box.height)
