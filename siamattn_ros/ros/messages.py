"""Building the node's output messages from tracker results (and checking init boxes from messages).

Conventions (see msg/BoundingBox2D.msg): boxes in full-resolution source pixels, centre + size; the tracker API uses
top-left x, y, w, h, so center = x + w / 2. Every output gets the source image header assigned as is.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point32

from siamattn_ros.interface.convert import box_msg_to_xywh, check_box, set_stamp, stamp_to_ns, xywh_to_center_size
from siamattn_ros.msg import BoundingBox2D, InitBox, TrackResult as TrackResultMsg

try:  # Optional: present on a ROS 2 install with vision_msgs.
    from vision_msgs.msg import Detection2D, ObjectHypothesisWithPose
except ImportError:  # pragma: no cover - depends on the environment
    Detection2D = None
    ObjectHypothesisWithPose = None

# Class id written into vision_msgs hypotheses: the tracker follows one object of no particular class.
DETECTION_CLASS_ID = "tracked_object"


def duration_from_ns(ns: int) -> Duration:
    """Nanoseconds -> builtin_interfaces/Duration (sec may be negative, nanosec always in [0, 1e9))."""
    return set_stamp(Duration(), ns)


def xywh_to_box(box_xywh: Sequence[float]) -> BoundingBox2D:
    """Top-left x, y, w, h -> BoundingBox2D (centre + size, angle 0)."""
    cx, cy, w, h = xywh_to_center_size(box_xywh)
    return BoundingBox2D(center_x=cx, center_y=cy, width=w, height=h, angle=0.0)


def init_box_msg(header: Any, box: BoundingBox2D) -> InitBox:
    """An InitBox for the frame with `header` (its stamp says which frame the box was drawn on)."""
    msg = InitBox()
    msg.header = header
    msg.box = box
    return msg


def check_init_box(box: BoundingBox2D, width: int, height: int) -> Optional[str]:
    """None when `box` can start a track in a width x height image, else the reason (naming the values)."""
    if not math.isfinite(float(box.angle)) or box.angle != 0.0:
        return f"init box angle must be 0 (axis-aligned), got {box.angle}"
    try:
        check_box(box_msg_to_xywh(box), width, height)
    except ValueError as exc:
        return str(exc)
    return None


def polygon_to_rotated_box(polygon: np.ndarray) -> BoundingBox2D:
    """4 corners in order around a rectangle -> centre, size and angle (CCW as seen in the image, v down).

    The angle is folded into (-pi/4, pi/4] by swapping width and height, so an axis-aligned rectangle always comes out
    with angle 0 and its width along u, whichever corner the polygon starts at.
    """
    p = np.asarray(polygon, dtype=np.float64).reshape(4, 2)
    cx, cy = p.mean(axis=0)
    e0, e1 = p[1] - p[0], p[2] - p[1]
    w, h = float(np.hypot(*e0)), float(np.hypot(*e1))
    angle = math.atan2(-e0[1], e0[0])  # image v grows downwards: CCW-in-image is -dv
    # Fold into (-pi/2, pi/2], then into (-pi/4, pi/4] with a width/height swap.
    while angle <= -math.pi / 2:
        angle += math.pi
    while angle > math.pi / 2:
        angle -= math.pi
    if angle > math.pi / 4:
        angle, w, h = angle - math.pi / 2, h, w
    elif angle <= -math.pi / 4:
        angle, w, h = angle + math.pi / 2, h, w
    if abs(angle) < 1e-9:
        angle = 0.0
    return BoundingBox2D(center_x=float(cx), center_y=float(cy), width=w, height=h, angle=float(angle))


def build_result(header: Any, result: Any, image_size: tuple[int, int], thresholds: tuple[float, float],
                 processing_ns: int, now_ns: int, status_message: str = "") -> TrackResultMsg:
    """Tracker TrackResult -> siamattn_ros/TrackResult with `header` copied.

    image_size: (width, height); thresholds: (confidence_threshold, lost_threshold) in force.
    """

    msg = TrackResultMsg()
    msg.header = header
    msg.state = int(result.state)
    msg.status_message = status_message
    msg.box = xywh_to_box(result.box_xywh)
    polygon = np.asarray(result.polygon, dtype=np.float64).reshape(-1, 2)
    if polygon.shape[0] == 4 and np.all(np.isfinite(polygon)):
        msg.rotated_box = polygon_to_rotated_box(polygon)
        msg.polygon.points = [Point32(x=float(u), y=float(v), z=0.0) for u, v in polygon]
    else:
        msg.rotated_box = xywh_to_box(result.box_xywh)
    msg.confidence = float(result.confidence)
    msg.confidence_threshold, msg.lost_threshold = float(thresholds[0]), float(thresholds[1])
    msg.init_id = int(result.init_id)
    msg.frames_since_init = int(result.frames_since_init)
    msg.image_width, msg.image_height = int(image_size[0]), int(image_size[1])
    msg.processing_time = duration_from_ns(processing_ns)
    msg.latency = duration_from_ns(now_ns - stamp_to_ns(header.stamp))
    return msg


def build_status(header: Any, state: int, message: str, thresholds: tuple[float, float], init_id: int,
                 image_size: tuple[int, int], now_ns: int) -> TrackResultMsg:
    """A result without a box: STOPPED (not tracking) or ERROR (a request could not be applied)."""

    msg = TrackResultMsg()
    msg.header = header
    msg.state = int(state)
    msg.status_message = message
    msg.confidence_threshold, msg.lost_threshold = float(thresholds[0]), float(thresholds[1])
    msg.init_id = int(init_id)
    msg.image_width, msg.image_height = int(image_size[0]), int(image_size[1])
    stamp_ns = stamp_to_ns(header.stamp)
    msg.latency = duration_from_ns(now_ns - stamp_ns) if stamp_ns else duration_from_ns(0)
    return msg


def build_position(header: Any, xyz: Sequence[float]) -> Any:
    """geometry_msgs/PointStamped of the target (metres, camera optical frame) with the source image header."""
    from geometry_msgs.msg import PointStamped

    msg = PointStamped()
    msg.header = header
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
    return msg


def has_vision_msgs() -> bool:
    return Detection2D is not None


def build_detection(result_msg: TrackResultMsg) -> Any:
    """siamattn_ros/TrackResult -> vision_msgs/Detection2D (axis-aligned box, score = confidence, id = init_id).

    vision_msgs changed BoundingBox2D.center from geometry_msgs/Pose2D (x, y, theta; Foxy/Galactic) to
    vision_msgs/Pose2D (position.x, position.y, theta; Humble and later), and ObjectHypothesisWithPose gained a nested
    `hypothesis`; both layouts are handled.
    """
    if Detection2D is None:
        raise RuntimeError("vision_msgs is not installed")
    det = Detection2D()
    det.header = result_msg.header
    center = det.bbox.center
    if hasattr(center, "position"):
        center.position.x, center.position.y = result_msg.box.center_x, result_msg.box.center_y
    else:  # pragma: no cover - pre-Humble vision_msgs
        center.x, center.y = result_msg.box.center_x, result_msg.box.center_y
    center.theta = 0.0
    det.bbox.size_x, det.bbox.size_y = result_msg.box.width, result_msg.box.height
    hyp = ObjectHypothesisWithPose()
    if hasattr(hyp, "hypothesis"):
        hyp.hypothesis.class_id = DETECTION_CLASS_ID
        hyp.hypothesis.score = float(result_msg.confidence)
    else:  # pragma: no cover - pre-Humble vision_msgs
        hyp.id = DETECTION_CLASS_ID
        hyp.score = float(result_msg.confidence)
    det.results = [hyp]
    if hasattr(det, "id"):
        det.id = str(result_msg.init_id)
    return det
