"""The track states, shared by the tracker engine, the ROS node, replay and the tools."""
from __future__ import annotations

from enum import IntEnum


class TrackState(IntEnum):
    """Track states; the values equal the constants of siamattn_ros/msg/TrackResult (test_interface checks it)."""

    INITIALIZING = 0
    TRACKING = 1
    LOW_CONFIDENCE = 2
    LOST = 3
    STOPPED = 4
    ERROR = 5


# States whose box is a claim about where the target is (evaluation scores the others as a miss; the node publishes
# a Detection2D only for these and INITIALIZING).
CLAIMING_STATES = (TrackState.TRACKING, TrackState.LOW_CONFIDENCE)


def state_name(value: int, unknown: str = "-") -> str:
    """The state's name for a raw integer (a message field), `unknown` for a value that is not a state."""
    try:
        return TrackState(int(value)).name
    except ValueError:
        return unknown
