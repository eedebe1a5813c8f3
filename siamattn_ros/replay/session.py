"""Run the real `tracker_node` (a separate process) on a recording and collect what it publishes.

Protocol (all over DDS, as a user's graph would do it):
1. start the node; publish frame 0 (repeatedly) until its STOPPED result comes back: node up and topics matched;
2. publish frames 1 .. init_delay in lock-step (each waits for its result), so the init frame is in the past;
3. publish an InitBox stamped with frame 0's header and the ground-truth box of frame 0 on /track/init; the node
   initialises on that buffered frame and fast-forwards through frames 1 .. init_delay;
4. publish the remaining frames in lock-step: the next frame goes out once the result for the previous one arrived
   (so no frame is dropped however slow the CPU; a frame with no result within `retry_s` is sent again).
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from siamattn_ros.interface.convert import box_msg_to_xywh, duration_to_s, stamp_to_ns
from siamattn_ros.interface.names import TOPIC_IMAGE, TOPIC_INIT, TOPIC_OVERLAY, TOPIC_RESULT, resolve
from siamattn_ros.interface.states import CLAIMING_STATES, TrackState
from siamattn_ros.replay.player import BagPlayer
from siamattn_ros.replay.recording import IMAGE_TOPIC, RAW_IMAGE_TOPIC, Recording, load_recording
from siamattn_ros.testing.node_process import NodeProcess
from siamattn_ros.testing.ros_client import RosHost, make_header

# The node runs in the root namespace: its relative topics resolve to these.
RESULT_TOPIC = resolve(TOPIC_RESULT)
OVERLAY_TOPIC = resolve(TOPIC_OVERLAY)
INIT_TOPIC = resolve(TOPIC_INIT)


@dataclass
class ResultRecord:
    """One received /track/result, reduced to plain values."""

    stamp_ns: int
    frame_id: str
    state: int
    box_xywh: np.ndarray
    confidence: float
    init_id: int
    frames_since_init: int
    status: str
    processing_s: float


def result_record(msg) -> ResultRecord:
    return ResultRecord(
        stamp_ns=stamp_to_ns(msg.header.stamp), frame_id=str(msg.header.frame_id), state=int(msg.state),
        box_xywh=np.array(box_msg_to_xywh(msg.box)),
        confidence=float(msg.confidence), init_id=int(msg.init_id), frames_since_init=int(msg.frames_since_init),
        status=str(msg.status_message), processing_s=duration_to_s(msg.processing_time))


class ResultCollector:
    """Keeps every /track/result; wait_for() blocks until one matching a predicate arrives."""

    def __init__(self, node, topic: str = RESULT_TOPIC) -> None:
        from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

        from siamattn_ros.msg import TrackResult

        self.results: list[ResultRecord] = []
        self._cond = threading.Condition()
        qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE,
                         durability=QoSDurabilityPolicy.VOLATILE)
        self._sub = node.create_subscription(TrackResult, topic, self._on_result, qos)

    def _on_result(self, msg) -> None:
        rec = result_record(msg)
        with self._cond:
            self.results.append(rec)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[ResultRecord], bool], timeout_s: float, start: int = 0) -> Optional[ResultRecord]:
        """The first result at index >= start satisfying pred, waiting up to timeout_s; None on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for r in self.results[start:]:
                    if pred(r):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)


class OverlayCollector:
    """Keeps the node's /track/overlay images (BGR) by header stamp."""

    def __init__(self, node, topic: str = OVERLAY_TOPIC) -> None:
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy
        from sensor_msgs.msg import Image

        self.images: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self._sub = node.create_subscription(Image, topic, self._on_image,
                                             QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE))

    def _on_image(self, msg) -> None:
        if msg.encoding not in ("bgr8", "rgb8"):
            return
        img = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width * 3]
        img = img.reshape(msg.height, msg.width, 3)
        if msg.encoding == "rgb8":
            img = img[:, :, ::-1]
        with self._lock:
            self.images[stamp_to_ns(msg.header.stamp)] = img.copy()


def node_params(model: str, transport: str = "compressed", extra_params: Optional[dict] = None) -> dict:
    """The tracker_node parameters for a replay: `model` on the CPU, images over `transport`."""
    if transport not in ("compressed", "raw"):
        raise ValueError(f"transport must be 'compressed' or 'raw', got {transport!r}")
    return {"model": str(model), "device": "cpu", "image_transport": transport, **(extra_params or {})}


@dataclass
class TrackerRun:
    recording: Recording
    results: list[ResultRecord]       # every /track/result received, in arrival order
    init_index: int                   # frame the tracker was initialised on
    last_index: int                   # last frame published
    boxes: np.ndarray                 # (N, 4) reported box per frame from the current track (NaN: no result)
    states: np.ndarray                # (N,) reported state per frame (-1: no result)
    wall_s: float                     # init sent -> last result received
    node_log: str
    overlays: dict = field(default_factory=dict)

    @property
    def tracked_frames(self) -> int:
        return int(self.last_index - self.init_index)

    @property
    def fps(self) -> float:
        """Frames tracked per second of wall time (lock-step: no frame dropped; includes DDS round trips)."""
        return self.tracked_frames / self.wall_s if self.wall_s > 0 else float("nan")

    def evaluated_ious(self) -> np.ndarray:
        """IoU per frame after the init frame where the target is visible; a LOST/STOPPED/ERROR or missing result
        counts as 0 (its box is not a claim about where the target is). NaN where the target is not visible."""
        from siamattn_ros.interface.metrics import box_iou

        idx = np.arange(self.init_index + 1, self.last_index + 1)
        truth = self.recording.truth[idx]
        pred = self.boxes[idx].copy()
        claims = np.isin(self.states[idx], CLAIMING_STATES)
        ious = box_iou(pred, truth)
        ious[~claims] = 0.0
        ious[~np.isfinite(truth).all(axis=1)] = np.nan
        return ious


def run_tracker(recording: str | Path | Recording, model: str | Path, transport: str = "compressed",
                init_index: int = 0, init_delay: int = 3, max_frames: Optional[int] = None,
                collect_overlays: bool = False, startup_timeout_s: float = 120.0, frame_timeout_s: float = 60.0,
                retry_s: float = 15.0, extra_params: Optional[dict] = None, log_path: Optional[Path] = None,
                progress: Optional[Callable[[int, int], None]] = None,
                record_path: Optional[Path] = None, record_topics: Sequence[str] = (RESULT_TOPIC,)) -> TrackerRun:
    """Replay `recording` through a freshly started tracker_node process; see the module docstring.

    init_index: the frame whose ground-truth box initialises the track (stamped with that frame, sent after
    init_delay further frames were published). max_frames: stop after this many frames.
    record_path: also record `record_topics` (node outputs, types known to siamattn_ros) into this new bag.
    Raises RuntimeError (with the node's log tail) if the node dies or stops answering.
    """
    rec = recording if isinstance(recording, Recording) else load_recording(recording)
    n = len(rec) if max_frames is None else min(len(rec), max_frames)
    if not (0 <= init_index < n - 1):
        raise ValueError(f"init_index {init_index} must be in [0, {n - 2}] for {n} frames")
    if not rec.visible[init_index]:
        raise ValueError(f"the target is not visible in frame {init_index}: no box to initialise from")
    stamps = [f.stamp_ns for f in rec.frames]
    if log_path is None:  # kept after the run, so that an error message can point to it
        fd, name = tempfile.mkstemp(prefix="tracker_node_", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    with RosHost(f"siamattn_replay_{os.getpid()}") as node:
        from siamattn_ros.msg import InitBox
        from siamattn_ros.ros.messages import init_box_msg, xywh_to_box

        results = ResultCollector(node)
        overlays = OverlayCollector(node) if collect_overlays else None
        player = BagPlayer(node, rec.path, topics=[IMAGE_TOPIC],
                           decode=[IMAGE_TOPIC] if transport == "raw" else [])
        if len(player.messages) != len(rec):
            raise RuntimeError(f"{rec.path}: {len(player.messages)} image messages but {len(rec)} frames")
        init_pub = node.create_publisher(InitBox, INIT_TOPIC, 10)
        recorder = None
        if record_path is not None:
            from siamattn_ros.replay.recorder import KNOWN_TYPES, TopicRecorder

            recorder = TopicRecorder(node, record_path, {t: KNOWN_TYPES[t] for t in record_topics})
        image_topic = IMAGE_TOPIC if transport == "compressed" else RAW_IMAGE_TOPIC
        proc = NodeProcess(node_params(str(model), transport, extra_params), remaps={TOPIC_IMAGE: image_topic},
                           log_path=log_path).start()

        def fail(what: str) -> RuntimeError:
            return RuntimeError(f"{what}; tracker_node {'is running' if proc.alive() else 'exited'}; "
                                f"its log ({proc.log_path}) ends with:\n{proc.log_tail()}")

        def send_and_wait(i: int, pred: Callable[[ResultRecord], bool], timeout_s: float) -> ResultRecord:
            deadline = time.monotonic() + timeout_s
            while True:
                mark = len(results.results)
                player.publish(player.messages[i])
                got = results.wait_for(pred, min(retry_s, max(0.1, deadline - time.monotonic())), start=mark)
                if got is not None:
                    return got
                if not proc.alive() or time.monotonic() > deadline:
                    raise fail(f"no result for frame {i} (stamp {stamps[i]}) within {timeout_s:.0f} s")

        try:
            # 1. node up: frames before init come back as STOPPED results with the frame's header.
            deadline = time.monotonic() + startup_timeout_s
            while True:
                mark = len(results.results)
                player.publish(player.messages[0])
                if results.wait_for(lambda r: r.stamp_ns == stamps[0], 1.0, start=mark) is not None:
                    break
                if not proc.alive() or time.monotonic() > deadline:
                    raise fail(f"tracker_node did not answer frame 0 within {startup_timeout_s:.0f} s")
            # 2. frames up to init_index + init_delay, so that the init frame lies in the past.
            last_pre = min(n - 2, init_index + init_delay)
            for i in range(1, last_pre + 1):
                send_and_wait(i, lambda r, s=stamps[i]: r.stamp_ns == s, frame_timeout_s)
            # 3. init with the past stamp; the node fast-forwards to frame last_pre.
            t0 = time.monotonic()
            deadline = t0 + 10.0
            while init_pub.get_subscription_count() == 0:
                if time.monotonic() > deadline:
                    raise fail(f"no subscriber on {INIT_TOPIC}")
                time.sleep(0.05)
            f0 = rec.frames[init_index]
            msg = init_box_msg(make_header(f0.stamp_ns, f0.frame_id), xywh_to_box(rec.truth[init_index]))
            mark = len(results.results)
            init_pub.publish(msg)
            got = results.wait_for(lambda r: r.init_id >= 1 and r.stamp_ns == stamps[last_pre]
                                   or r.state == TrackState.ERROR, frame_timeout_s, start=mark)
            if got is None or got.state == TrackState.ERROR:
                raise fail(f"init on frame {init_index} not applied: {got.status if got else 'no answer'}")
            # 4. the rest, lock-step.
            for i in range(last_pre + 1, n):
                send_and_wait(i, lambda r, s=stamps[i]: r.stamp_ns == s and r.init_id >= 1, frame_timeout_s)
                if progress is not None:
                    progress(i, n)
            wall = time.monotonic() - t0
            if overlays is not None:  # overlays are published just after their result
                end = time.monotonic() + 3.0
                while time.monotonic() < end and stamps[n - 1] not in overlays.images:
                    time.sleep(0.05)
        finally:
            proc.stop()
            log = proc.log_tail(20000)
            proc.cleanup()
            if recorder is not None:
                recorder.close()

    boxes = np.full((len(rec), 4), np.nan)
    states = np.full(len(rec), -1, dtype=int)
    index = {s: i for i, s in enumerate(stamps)}
    for r in results.results:  # the last result of the current track for each frame wins
        i = index.get(r.stamp_ns)
        if i is not None and r.init_id >= 1 and i >= init_index:
            boxes[i], states[i] = r.box_xywh, r.state
    return TrackerRun(rec, list(results.results), init_index, n - 1, boxes, states, wall, log,
                      dict(overlays.images) if overlays is not None else {})
