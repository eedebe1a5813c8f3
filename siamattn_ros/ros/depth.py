"""The target's 3D position from an aligned depth image: median depth over the mask, back-projected through the
camera intrinsics (sensor_msgs/CameraInfo K). No rclpy: only the message fields are read.

Conventions (REP 103 / REP 105 optical frame): x right, y down, z forward, metres; the point is in the optical frame
of the colour image (an aligned depth image shares it). Depth encodings: 16UC1 / mono16 in millimetres (RealSense,
Azure Kinect, OAK), 32FC1 in metres; 0, NaN and inf mean "no depth" and are ignored.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

DEPTH_ENCODINGS = {"16UC1": 0.001, "mono16": 0.001, "32FC1": 1.0}


class DepthError(ValueError):
    """A depth image or camera_info that cannot be used; the message names the offending value."""


def depth_metres(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (16UC1 / mono16 mm, 32FC1 m) -> float32 (H, W) metres, NaN where there is no depth."""
    encoding = str(msg.encoding)
    if encoding not in DEPTH_ENCODINGS:
        raise DepthError(f"depth encoding {encoding!r} not supported; use one of {', '.join(DEPTH_ENCODINGS)}")
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    item = 4 if encoding == "32FC1" else 2
    if width <= 0 or height <= 0 or step < width * item or len(msg.data) < step * height:
        raise DepthError(f"depth image {width}x{height} {encoding}: step {step} or data size {len(msg.data)} "
                         f"does not fit")
    kind = ("f4" if item == 4 else "u2")
    dtype = np.dtype((">" if msg.is_bigendian else "<") + kind)
    rows = np.frombuffer(msg.data, np.uint8)[: step * height].reshape(height, step)[:, : width * item]
    values = np.ascontiguousarray(rows).view(dtype).reshape(height, width).astype(np.float32)
    values *= DEPTH_ENCODINGS[encoding]
    values[~np.isfinite(values) | (values <= 0)] = np.nan
    return values


def intrinsics(info: Any) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) from sensor_msgs/CameraInfo.k (row-major 3x3)."""
    k = [float(v) for v in info.k]
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if not (fx > 0 and fy > 0 and math.isfinite(cx) and math.isfinite(cy)):
        raise DepthError(f"camera_info has no usable intrinsics: k = {k}")
    return fx, fy, cx, cy


def target_position(depth: np.ndarray, mask: Optional[np.ndarray], box_xywh: Any, info: Any,
                    ) -> Optional[tuple[float, float, float]]:
    """(x, y, z) in metres of the target in the camera optical frame, or None without valid depth on it.

    z is the median of the valid depths under the mask (the box when there is no mask): robust to the background
    inside the box and to holes. x and y back-project the box centre (u, v) at that depth: x = (u - cx) z / fx.
    mask: the tracker's full-frame mask (H, W), non-zero on the target; box_xywh: top-left x, y, width, height.
    """
    if mask is not None and mask.shape != depth.shape:
        raise DepthError(f"depth image {depth.shape[1]}x{depth.shape[0]} is not aligned with the colour image "
                         f"{mask.shape[1]}x{mask.shape[0]} (use the depth image registered to the colour camera)")
    x, y, w, h = (float(v) for v in box_xywh)
    if mask is not None and np.any(mask):
        values = depth[mask > 0]
    else:
        x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
        x1, y1 = min(depth.shape[1], int(math.ceil(x + w))), min(depth.shape[0], int(math.ceil(y + h)))
        values = depth[y0:y1, x0:x1].ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    z = float(np.median(values))
    fx, fy, cx, cy = intrinsics(info)
    # Boxes use "pixel u covers [u, u+1)"; the pinhole model (CameraInfo K) puts pixel u's centre at u.
    u, v = x + w / 2.0 - 0.5, y + h / 2.0 - 0.5
    return (u - cx) * z / fx, (v - cy) * z / fy, z
