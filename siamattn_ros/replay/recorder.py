"""Recording live ROS topics into a bag (rosbag2 folder, mcap) without rosbag2: raw (serialized) subscriptions,
written with `rosbags` as received. Our own message types are registered in the bag's typestore, so the bag carries
their definitions."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Optional, Sequence

from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

from siamattn_ros.interface.names import TOPIC_INIT, TOPIC_MASK, TOPIC_OVERLAY, TOPIC_RESULT, resolve
from siamattn_ros.replay.bag import BagWriter
from siamattn_ros.replay.typestore import ros_class

# Types of the tracker node's topics, so they can be recorded before the node has started publishing.
# (Under the node's names in the root namespace.)
KNOWN_TYPES = {
    resolve(TOPIC_RESULT): "siamattn_ros/msg/TrackResult",
    resolve(TOPIC_INIT): "siamattn_ros/msg/InitBox",
    resolve(TOPIC_MASK): "sensor_msgs/msg/Image",
    resolve(TOPIC_OVERLAY): "sensor_msgs/msg/Image",
}


def resolve_types(node: Node, topics: Sequence[str], timeout_s: float = 10.0) -> dict[str, str]:
    """{topic: type} for 'topic' (type discovered from the graph) or 'topic:pkg/msg/Type' entries.

    Raises TimeoutError naming the topics whose type could not be discovered in time."""
    out: dict[str, str] = {}
    pending = []
    for t in topics:
        if ":" in t:
            name, msgtype = t.split(":", 1)
            out[name] = msgtype
        else:
            pending.append(t)
    deadline = time.monotonic() + timeout_s
    while pending:
        graph = dict(node.get_topic_names_and_types())
        for t in list(pending):
            if graph.get(t):
                out[t] = graph[t][0]
                pending.remove(t)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no publisher seen for {pending} within {timeout_s:.0f} s; give the type "
                               f"explicitly as TOPIC:pkg/msg/Type")
        time.sleep(0.1)
    return out


class TopicRecorder:
    """Subscribes to `types` ({topic: 'pkg/msg/Type'}) as raw CDR and writes every message to `path`.

    Timestamps are the node clock at reception (like `ros2 bag record`). Call close() to finish the bag."""

    def __init__(self, node: Node, path: Path | str, types: dict[str, str], reliable: bool = True,
                 depth: int = 100) -> None:
        self.node = node
        self.counts: dict[str, int] = {t: 0 for t in types}
        self._lock = threading.Lock()
        self._closed = False
        self._writer = BagWriter(path).__enter__()
        qos = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth,
                         reliability=QoSReliabilityPolicy.RELIABLE if reliable else QoSReliabilityPolicy.BEST_EFFORT,
                         durability=QoSDurabilityPolicy.VOLATILE)
        self._subs = []
        for topic, msgtype in types.items():
            self._writer.add_topic(topic, msgtype)
            self._subs.append(node.create_subscription(ros_class(msgtype), topic, self._callback(topic), qos,
                                                       raw=True))

    def _callback(self, topic: str):
        def on_message(data: bytes) -> None:
            with self._lock:
                if self._closed:
                    return
                self._writer.write(topic, self.node.get_clock().now().nanoseconds, bytes(data))
                self.counts[topic] += 1
        return on_message

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for s in self._subs:
                self.node.destroy_subscription(s)
            self._writer.__exit__(None, None, None)

    @property
    def path(self) -> Optional[Path]:
        return self._writer.path
