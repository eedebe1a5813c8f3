"""Replaying a bag into a live ROS graph: the stored CDR bytes are published as they are (header stamps preserved
byte for byte), at the recorded rate, a scaled rate, or in lock-step with a consumer.

`BagPlayer` owns one rclpy publisher per topic. Compressed image topics can instead be decoded and published as
sensor_msgs/Image (same header) for consumers that take raw images.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

from siamattn_ros.interface.convert import stamp_to_ns
from siamattn_ros.replay.bag import BagMessage, deserialize, read_messages
from siamattn_ros.replay.typestore import ros_class

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def replay_qos(depth: int = 10) -> QoSProfile:
    """Reliable + volatile: matched by reliable and best-effort subscribers alike (like a camera driver)."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.VOLATILE)


def raw_topic_for(compressed_topic: str) -> str:
    """'/camera/image_raw/compressed' -> '/camera/image_raw' (image_transport naming); other names get '_decoded'."""
    suffix = "/compressed"
    return compressed_topic[: -len(suffix)] if compressed_topic.endswith(suffix) else compressed_topic + "_decoded"


def header_stamp_ns(msg: BagMessage) -> Optional[int]:
    """Header stamp (ns) of a stored message that has a std_msgs/Header first field, else None."""
    obj = deserialize(msg)
    header = getattr(obj, "header", None)
    if header is None:
        return None
    return stamp_to_ns(header.stamp)


def decode_to_image(msg: BagMessage) -> Any:
    """A stored sensor_msgs/CompressedImage as an rclpy sensor_msgs/Image (bgr8), with the same header."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    obj = deserialize(msg)
    img = cv2.imdecode(np.frombuffer(bytes(obj.data), np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"message on {msg.topic} at {msg.timestamp_ns} (format {obj.format!r}) does not decode")
    out = Image()
    out.header = Header(stamp=Time(sec=int(obj.header.stamp.sec), nanosec=int(obj.header.stamp.nanosec)),
                        frame_id=str(obj.header.frame_id))
    out.height, out.width = int(img.shape[0]), int(img.shape[1])
    out.encoding, out.is_bigendian, out.step = "bgr8", 0, int(img.shape[1] * 3)
    out.data = img.tobytes()
    return out


@dataclass
class Published:
    """What one play step sent: the bag message, the topic it went to, and its header stamp (images only)."""

    message: BagMessage
    topic: str
    stamp_ns: Optional[int]


class BagPlayer:
    """Publishes a bag's messages on `node`.

    topics: only these bag topics (default all). decode: compressed image topics to publish decoded, as
    sensor_msgs/Image on `raw_topic_for(topic)`, instead of as stored. remap: {bag topic: topic to publish on}.
    depth: publisher history; a reliable subscriber slower than the playback loses messages older than this.
    """

    def __init__(self, node: Node, bag: Path | str, topics: Optional[Sequence[str]] = None,
                 decode: Sequence[str] = (), remap: Optional[dict[str, str]] = None, depth: int = 10) -> None:
        self.node = node
        self.bag = Path(bag)
        self.messages: list[BagMessage] = list(read_messages(self.bag, topics))
        if not self.messages:
            raise ValueError(f"bag {self.bag} has no messages on {list(topics) if topics else 'any topic'}")
        types = {m.topic: m.msgtype for m in self.messages}
        for t in decode:
            if types.get(t) != "sensor_msgs/msg/CompressedImage":
                raise ValueError(f"--decode topic {t!r} is not a sensor_msgs/CompressedImage topic in {self.bag}")
        self.decode = set(decode)
        remap = dict(remap or {})
        self.out_topic: dict[str, str] = {}
        self._pubs: dict[str, Any] = {}
        for topic, msgtype in types.items():
            out = remap.get(topic, raw_topic_for(topic) if topic in self.decode else topic)
            cls = ros_class("sensor_msgs/msg/Image" if topic in self.decode else msgtype)
            self.out_topic[topic] = out
            self._pubs[topic] = node.create_publisher(cls, out, replay_qos(depth))

    def subscriber_count(self, topic: str) -> int:
        return self._pubs[topic].get_subscription_count()

    def wait_for_subscribers(self, topics: Sequence[str], timeout_s: float = 30.0) -> None:
        """Block until each bag topic in `topics` has a matched subscriber. Raises TimeoutError naming the topic."""
        deadline = time.monotonic() + timeout_s
        for t in topics:
            while self._pubs[t].get_subscription_count() == 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no subscriber on {self.out_topic[t]} after {timeout_s:.0f} s")
                time.sleep(0.05)

    def publish(self, msg: BagMessage) -> Published:
        """Send one stored message (bytes as stored, or decoded for --decode topics)."""
        if msg.topic in self.decode:
            image = decode_to_image(msg)
            self._pubs[msg.topic].publish(image)
            stamp = stamp_to_ns(image.header.stamp)
            return Published(msg, self.out_topic[msg.topic], stamp)
        self._pubs[msg.topic].publish(msg.data)
        stamp = header_stamp_ns(msg) if msg.msgtype in IMAGE_TYPES else None
        return Published(msg, self.out_topic[msg.topic], stamp)

    def play(self, rate: float = 1.0, after_publish: Optional[Callable[[Published], None]] = None,
             stop: Optional[threading.Event] = None, start_index: int = 0, end_index: Optional[int] = None) -> int:
        """Publish messages [start_index, end_index) in bag order; returns how many were published.

        rate > 0: keep the recorded spacing of bag timestamps divided by `rate` (2.0 = twice as fast).
        rate == 0: as fast as possible (use `after_publish` to pace, e.g. lock-step with a consumer).
        after_publish: called after each message (it may block); `stop` ends playback early.
        """
        if rate < 0:
            raise ValueError(f"rate must be >= 0, got {rate}")
        chosen = self.messages[start_index:end_index]
        if not chosen:
            return 0
        t0_bag, t0_wall = chosen[0].timestamp_ns, time.monotonic()
        count = 0
        for msg in chosen:
            if stop is not None and stop.is_set():
                break
            if rate > 0:
                due = t0_wall + (msg.timestamp_ns - t0_bag) / 1e9 / rate
                delay = due - time.monotonic()
                if delay > 0:
                    if stop is not None:
                        if stop.wait(delay):
                            break
                    else:
                        time.sleep(delay)
            published = self.publish(msg)
            count += 1
            if after_publish is not None:
                after_publish(published)
        return count
