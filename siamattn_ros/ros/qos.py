"""QoS profiles of the tracker node's topics, in one place so that the node, select_roi and the docs agree."""
from __future__ import annotations

from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

RELIABILITY = {"best_effort": QoSReliabilityPolicy.BEST_EFFORT, "reliable": QoSReliabilityPolicy.RELIABLE}


# DDS reader queue of the image subscription. The tracker never queues frames (the node's one-slot mailbox hands
# the worker only the newest); this depth only keeps the reader from overwriting frames that arrive while the image
# callback is late (busy CPU), so that they still reach the frame buffer and the diagnostics count.
IMAGE_QUEUE_DEPTH = 5


def image_qos(reliability: str) -> QoSProfile:
    """Camera input: keep last IMAGE_QUEUE_DEPTH in the reader; the worker only ever takes the newest frame.

    best_effort (default) receives from best-effort and reliable publishers alike; reliable receives only from
    reliable publishers (a best-effort camera then delivers nothing, which is the classic "no images" QoS mismatch).
    """
    if reliability not in RELIABILITY:
        raise ValueError(f"qos_reliability must be one of {', '.join(RELIABILITY)}, got {reliability!r}")
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=IMAGE_QUEUE_DEPTH, reliability=RELIABILITY[reliability],
                      durability=QoSDurabilityPolicy.VOLATILE)


def output_qos(depth: int = 10) -> QoSProfile:
    """Results and images out: reliable + volatile, which both reliable and best-effort subscribers accept."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.VOLATILE)


def init_qos() -> QoSProfile:
    """Init requests in: reliable + volatile, depth 10 (matches `ros2 topic pub`'s default reliable publisher).

    Not transient-local: a latched init from an old publisher must not restart the track when the node restarts.
    """
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.VOLATILE)
