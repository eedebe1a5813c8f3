"""Message definitions for reading and writing bags: the ROS 2 standard types plus siamattn_ros's own messages."""
from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

PACKAGE = "siamattn_ros"
# Where our .msg files live: the source tree (repo checkout), else the installed share directory.
_MSG_DIRS = (
    Path(__file__).resolve().parents[2] / "msg",
    Path(sys.prefix) / "share" / PACKAGE / "msg",
)


def msg_dir() -> Path:
    """The folder holding siamattn_ros's .msg files (SIAMATTN_MSG_DIR overrides). Raises FileNotFoundError."""
    candidates = [Path(os.environ["SIAMATTN_MSG_DIR"])] if os.environ.get("SIAMATTN_MSG_DIR") else []
    candidates += list(_MSG_DIRS)
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / PACKAGE / "msg")
    for d in candidates:
        if (d / "TrackResult.msg").is_file():
            return d
    raise FileNotFoundError(f"siamattn_ros .msg files not found in any of {[str(c) for c in candidates]}")


@functools.lru_cache(maxsize=1)
def typestore() -> Any:
    """A rosbags Typestore (ROS 2 Humble definitions, which Jazzy/Kilted share for the types we use) with
    siamattn_ros/msg/* registered, so bags with our messages can be written and read anywhere."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    types: dict = {}
    for path in sorted(msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


def ros_class(msgtype: str) -> type:
    """The rclpy message class for a type name like 'sensor_msgs/msg/Image'. Raises ImportError naming it."""
    parts = msgtype.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        raise ValueError(f"expected a message type name 'package/msg/Name', got {msgtype!r}")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.msg"), parts[2])
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"message type {msgtype!r} is not importable in this environment: {exc}") from exc
