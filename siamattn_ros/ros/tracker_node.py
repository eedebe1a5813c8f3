"""ROS 2 node `tracker_node`: SiamAttn single-object tracking on a camera topic.

Threads: the executor (MultiThreadedExecutor) runs the callbacks, each kind in its own callback group; a single
worker thread owns the tracker. The image callback only hands the newest frame to the worker (`LatestSlot`) and
records it in the stamp-keyed `FrameRing`; init / reset requests are queued to the worker as commands, so a slow
frame never blocks a service, parameter or init callback. See docs/ROS_NODE.md for topics, parameters and QoS.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Optional

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from siamattn_ros.interface.convert import box_msg_to_xywh, format_ns, stamp_to_ns
from siamattn_ros.interface.names import (NODE_NAME, SERVICE_INIT, SERVICE_RESET, TOPIC_DEPTH, TOPIC_DEPTH_INFO,
                                          TOPIC_DETECTION, TOPIC_DIAGNOSTICS, TOPIC_IMAGE, TOPIC_INIT, TOPIC_MASK,
                                          TOPIC_OVERLAY, TOPIC_POSITION, TOPIC_RESULT)
from siamattn_ros.interface.presets import resolve_preset
from siamattn_ros.interface.states import TrackState
from siamattn_ros.msg import InitBox, TrackResult as TrackResultMsg
from siamattn_ros.ros import messages
from siamattn_ros.ros.depth import DepthError, depth_metres, target_position
from siamattn_ros.ros.diagnostics import NodeStats, build_diagnostics
from siamattn_ros.ros.frames import Frame, FrameRing, LatestSlot, pick_fast_forward
from siamattn_ros.ros.image_conv import ImageConversionError, decode_compressed, decode_image, to_image_msg
from siamattn_ros.ros.params import (FROM_PRESET, PARAMS, SPECS, TRACKER_FIELDS, PresetSentinels, check_value,
                                     descriptor, tracker_config, uses_preset)
from siamattn_ros.ros.qos import image_qos, init_qos, output_qos
from siamattn_ros.srv import InitTrack
from siamattn_ros.tracker.overlay import STATE_COLORS, draw_overlay

try:  # Humble and later; older rclpy only raises KeyboardInterrupt.
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover
    ExternalShutdownException = KeyboardInterrupt

THROTTLE_S = 5.0
SERVICE_TIMEOUT_S = 60.0
INIT_WAIT_S = 0.5


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, missing checkpoint, unknown device); main() prints it and exits 1."""


@dataclass
class _InitRequest:
    """A queued init. From the topic: msg. From the service: image_msg + box, and the caller waits on done."""

    box: Any
    header: Any
    image_msg: Optional[Any] = None
    done: threading.Event = field(default_factory=threading.Event)
    success: bool = False
    message: str = ""
    init_id: int = 0


@dataclass
class _ResetRequest:
    """A queued reset; the ~/reset caller waits on done. header: that of the newest frame received when the reset
    was asked for (its STOPPED result carries it, not that of a frame that arrived while the worker was busy)."""

    header: Any
    done: threading.Event = field(default_factory=threading.Event)


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; checks that an explicit device exists. Raises StartupError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise StartupError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise StartupError(f"device {device!r} requested but CUDA is not available to torch "
                               f"(torch {torch.__version__}); use device:=cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise StartupError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif dev.type != "cpu":
        raise StartupError(f"unsupported device {device!r} (use auto, cpu, cuda or cuda:N)")
    return device


def torch_threads(requested: int, cpu_count: Optional[int] = None) -> int:
    """Torch intra-op threads for num_threads `requested` (0: auto). Auto takes half the cores, at most 4: OpenMP
    threads spin-wait for each other, and with every core in use (torch's default) the camera driver, DDS and the
    node's own threads preempt them; measured 10-30x slower per frame with 2 threads on a busy 2-core machine."""
    if requested > 0:
        return requested
    return max(1, min(4, (cpu_count or os.cpu_count() or 2) // 2))


class TrackerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._declare_parameters()
        self._params = {p.name: self.get_parameter(p.name).value for p in PARAMS}
        for name, value in self._params.items():
            reason = check_value(name, value)
            if reason:
                raise StartupError(f"invalid parameter: {reason}")
        self._depth_filters = _import_message_filters() if self._params["depth_enabled"] else None
        self._device = resolve_device(self._params["device"])
        self._tracker = self._build_tracker()
        self._sentinels = PresetSentinels(self, lambda name: getattr(self._preset, name))
        self.add_on_set_parameters_callback(self._on_set_parameters)

        # State shared with the worker. _generation changes on every reset: results computed for an older
        # generation are not published (so nothing from a stopped track appears after ~/reset returns).
        self._slot = LatestSlot()
        self._ring = FrameRing(int(self._params["frame_buffer_length"]))
        self._commands: deque[Any] = deque()
        self._out_lock = threading.Lock()
        self._generation = 0
        self._track_size: Optional[tuple[int, int]] = None
        self._init_id = 0
        self._seq = 0
        self._stats = NodeStats()
        self._stop = threading.Event()
        self._warned: dict[str, float] = {}

        self._image_group = MutuallyExclusiveCallbackGroup()
        self._control_group = ReentrantCallbackGroup()
        self._diag_group = MutuallyExclusiveCallbackGroup()
        self._result_pub = self.create_publisher(TrackResultMsg, TOPIC_RESULT, output_qos(10))
        self._mask_pub = self.create_publisher(Image, TOPIC_MASK, output_qos(2))
        self._overlay_pub = self.create_publisher(Image, TOPIC_OVERLAY, output_qos(2))
        self._detection_pub = None
        if messages.has_vision_msgs():
            from vision_msgs.msg import Detection2D

            self._detection_pub = self.create_publisher(Detection2D, TOPIC_DETECTION, output_qos(10))
        self._diag_pub = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, output_qos(10))

        compressed = self._params["image_transport"] == "compressed"
        self._decode = decode_compressed if compressed else decode_image
        image_type, qos = CompressedImage if compressed else Image, image_qos(self._params["qos_reliability"])
        self._position_pub = None
        self._depth_store = _StampStore(30)
        if self._depth_filters is not None:
            # Colour frames flow to the tracker as without depth; the synchroniser pairs each colour frame with
            # the depth image and camera_info nearest in stamp (within depth_sync_slop) for the 3D position.
            from geometry_msgs.msg import PointStamped
            from sensor_msgs.msg import CameraInfo

            mf = self._depth_filters
            color = mf.Subscriber(self, image_type, TOPIC_IMAGE, qos_profile=qos, callback_group=self._image_group)
            color.registerCallback(self._on_image)
            self._depth_subs = [color] + [
                mf.Subscriber(self, msg_type, topic, qos_profile=qos, callback_group=self._image_group)
                for msg_type, topic in ((Image, TOPIC_DEPTH), (CameraInfo, TOPIC_DEPTH_INFO))]
            self._sync = mf.ApproximateTimeSynchronizer(self._depth_subs, queue_size=10,
                                                        slop=float(self._params["depth_sync_slop"]))
            self._sync.registerCallback(self._on_synced)
            self._position_pub = self.create_publisher(PointStamped, TOPIC_POSITION, output_qos(10))
        else:
            self.create_subscription(image_type, TOPIC_IMAGE, self._on_image, qos, callback_group=self._image_group)
        self.create_subscription(InitBox, TOPIC_INIT, self._on_init_msg, init_qos(),
                                 callback_group=self._control_group)
        self.create_service(Trigger, SERVICE_RESET, self._on_reset, callback_group=self._control_group)
        self.create_service(InitTrack, SERVICE_INIT, self._on_init_srv, callback_group=self._control_group)
        self.create_timer(float(self._params["diagnostics_period"]), self._publish_diagnostics,
                          callback_group=self._diag_group)

        self._worker = threading.Thread(target=self._run_worker, name="tracker_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: model={self._params['model']} device={self._device} "
            f"input={self.resolve_topic_name(TOPIC_IMAGE)} ({self._params['image_transport']}, "
            f"{self._params['qos_reliability']}) output={self.resolve_topic_name(TOPIC_RESULT)}")

    # ---------------------------------------------------------------- set-up
    def _declare_parameters(self) -> None:
        for spec in PARAMS:
            try:
                self.declare_parameter(spec.name, spec.default, descriptor(spec))
            except Exception as exc:  # a params file value of the wrong type (e.g. 1 for a double)
                raise StartupError(f"parameter {spec.name}: {exc}") from None

    def _tracker_config(self) -> Any:
        from siamattn_ros.tracker.config import load_preset

        name = resolve_preset(self._params["model"], self._params["checkpoint"], self._params["tracker_config"])
        try:
            self._preset = load_preset(name)
        except (OSError, ValueError, TypeError) as exc:
            raise StartupError(f"tracker_config {name!r}: {exc}") from None
        try:
            cfg = tracker_config(self._preset.replace(warmup=bool(self._params["warmup"])), self._preset,
                                 {k: self._params[k] for k in TRACKER_FIELDS})
        except ValueError as exc:
            raise StartupError(f"invalid parameter with tracker_config {name!r}: {exc}") from None
        # Publish the values in force instead of the "from the preset" defaults.
        effective = {k: getattr(cfg, k) for k in FROM_PRESET}
        self.set_parameters([Parameter(k, value=v) for k, v in effective.items()])
        self._params.update(effective)
        return cfg

    def _build_tracker(self) -> Any:
        import torch

        from siamattn_ros.tracker.build import build_tracker

        torch.set_num_threads(torch_threads(int(self._params["num_threads"])))
        cfg = self._tracker_config()
        model, checkpoint = self._params["model"], self._params["checkpoint"] or None
        self.get_logger().info(f"loading model {model!r} on {self._device} (half={self._params['half']})")
        try:
            return build_tracker(model=model, checkpoint=checkpoint, device=self._device,
                                 half=bool(self._params["half"]), config=cfg)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            # CheckpointError is a ValueError, a missing file a FileNotFoundError (OSError); both name the file.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StartupError(f"cannot load model={model!r} checkpoint={checkpoint!r} on {self._device}: "
                               f"{first}") from None

    # ---------------------------------------------------------------- parameters
    def _on_set_parameters(self, params: list) -> SetParametersResult:
        """Validate and apply run-time changes. One call may carry several parameters (set_parameters_atomically):
        the tracker settings among them are checked together, as the combination that would be in force."""
        changes = {p.name: p.value for p in params}
        for name, value in changes.items():
            spec = SPECS.get(name)
            if spec is not None and not spec.dynamic:
                return SetParametersResult(successful=False,
                                           reason=f"{name} is read-only; restart the node to change it")
            reason = check_value(name, value) if spec is not None else None
            if reason:
                return self._reject(reason)
        tracker_changes = {k: v for k, v in changes.items() if k in TRACKER_FIELDS}
        if tracker_changes:
            try:
                cfg = tracker_config(self._tracker.config, self._preset, tracker_changes)
                self._tracker.set_params(**{k: getattr(cfg, k) for k in tracker_changes})
            except ValueError as exc:
                return self._reject(str(exc))
            # "-1 / 0" restores the preset's value (PresetSentinels makes `ros2 param get` show it).
            self._sentinels.after_set({k: getattr(cfg, k) for k, v in tracker_changes.items() if uses_preset(k, v)})
            changes.update({k: getattr(cfg, k) for k in tracker_changes})
        if "frame_buffer_length" in changes:
            self._ring.resize(int(changes["frame_buffer_length"]))
        self._params.update({k: v for k, v in changes.items() if k in SPECS})
        self.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True, reason="")

    def _reject(self, reason: str) -> SetParametersResult:
        self.get_logger().warning(f"parameter change rejected: {reason}")
        return SetParametersResult(successful=False, reason=reason)

    def _thresholds(self) -> tuple[float, float]:
        return float(self._params["confidence_threshold"]), float(self._params["lost_threshold"])

    # ---------------------------------------------------------------- callbacks (executor threads)
    def _on_image(self, msg: Any) -> None:
        self._seq += 1  # only this callback writes _seq (its group is mutually exclusive)
        frame = Frame(msg=msg, stamp_ns=stamp_to_ns(msg.header.stamp), seq=self._seq)
        self._ring.push(frame)
        self._slot.put(frame)

    def _on_synced(self, color: Any, depth: Any, info: Any) -> None:
        self._depth_store.put(stamp_to_ns(color.header.stamp), (depth, info))

    def _on_init_msg(self, msg: InitBox) -> None:
        self._enqueue(_InitRequest(box=msg.box, header=msg.header))

    def _on_init_srv(self, request: Any, response: Any) -> Any:
        req = _InitRequest(box=request.box, header=request.image.header, image_msg=request.image)
        self._enqueue(req)
        if not req.done.wait(SERVICE_TIMEOUT_S):
            response.success, response.message = False, f"init not applied within {SERVICE_TIMEOUT_S} s"
            return response
        response.success, response.message, response.init_id = req.success, req.message, req.init_id
        return response

    def _on_reset(self, request: Any, response: Any) -> Any:
        """Returns once the worker has stopped the track (like ~/init), so a caller that publishes frames after
        the call gets STOPPED results for them, never results of the old track."""
        latest = self._ring.latest()
        req = _ResetRequest(header=latest.header if latest is not None else Header())
        with self._out_lock:
            self._generation += 1
        self._enqueue(req)
        if not req.done.wait(SERVICE_TIMEOUT_S):
            response.success, response.message = False, f"reset not applied within {SERVICE_TIMEOUT_S} s"
            return response
        response.success, response.message = True, "tracking stopped"
        return response

    def _enqueue(self, command: Any) -> None:
        self._commands.append(command)
        self._slot.wake()

    def _publish_diagnostics(self) -> None:
        msg = build_diagnostics(self.get_clock().now().to_msg(), f"{self.get_name()}: tracking", self._stats,
                                self._slot.received, self._slot.dropped, self._device, str(self._params["model"]))
        self._diag_pub.publish(msg)

    # ---------------------------------------------------------------- worker thread
    def _run_worker(self) -> None:
        while not self._stop.is_set():
            command, frame = None, None
            try:
                if self._commands:
                    command = self._commands.popleft()
                    if isinstance(command, _ResetRequest):
                        try:
                            self._do_reset(command)
                        finally:
                            command.done.set()
                    else:
                        self._do_init(command)
                    continue
                frame = self._slot.take(timeout=0.1)
                if frame is not None:
                    self._process(frame, self._generation)
            except Exception as exc:  # keep the node alive, and say so on the result topic
                if self._stop.is_set() or not self.context.ok():
                    return  # shutting down (Ctrl-C): publishers are already gone
                self._report_failure(exc, command, frame)

    def _report_failure(self, exc: Exception, command: Any, frame: Optional[Frame]) -> None:
        """A failure inside the tracker (CUDA out of memory, a broken model, a bug) becomes an ERROR result for the
        frame or init request it happened on, so a consumer can tell a broken tracker from a slow one; it is logged
        (throttled) and counted in the diagnostics. The track is kept: the next frame is tried again."""
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"tracker failed: {type(exc).__name__}: {first}"[:400]
        self.get_logger().error(reason, throttle_duration_sec=THROTTLE_S)
        self._stats.record_tracker_error(reason)
        try:
            if isinstance(command, _InitRequest):
                self._refuse_init(command, reason)
                return
            header = frame.header if frame is not None else Header()
            self._publish_status(header, TrackState.ERROR, reason)
        except Exception as exc2:  # publishing itself failed (e.g. during shutdown): the log line above stays
            self.get_logger().error(f"cannot publish the ERROR result: {exc2}", throttle_duration_sec=THROTTLE_S)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _publish_status(self, header: Any, state: TrackState, message: str, size: tuple[int, int] = (0, 0),
                        image: Optional[np.ndarray] = None) -> None:
        msg = messages.build_status(header, int(state), message, self._thresholds(), self._init_id, size,
                                    self._now_ns())
        self._result_pub.publish(msg)
        self._stats.record_state(int(state), self._init_id)
        if image is not None and self._params["publish_overlay"]:
            self._overlay_pub.publish(_status_overlay(image, header, state))

    def _decode_frame(self, msg: Any, what: str, decode: Any = None) -> tuple[Optional[np.ndarray], str]:
        """(image, "") or (None, reason); the reason is logged (throttled) and counted as an input error."""
        try:
            return (decode or self._decode)(msg), ""
        except ImageConversionError as exc:
            self._stats.record_input_error()
            self._warn_throttled(f"{what} skipped: {exc}")
            return None, str(exc)

    def _warn_throttled(self, text: str) -> None:
        """Log a warning at most once per THROTTLE_S for each kind of problem (numbers ignored), so a bad camera
        stream cannot flood the log while a different problem is still reported at once."""
        key = re.sub(r"[0-9.]+", "#", text)[:80]
        now = time.monotonic()
        if now - self._warned.get(key, -1e9) >= THROTTLE_S:
            self._warned[key] = now
            self.get_logger().warning(text)

    def _process(self, frame: Frame, generation: int) -> None:
        """Track on one frame and publish its outputs (or a STOPPED result when not tracking)."""
        start_ns = self._now_ns()
        image, _ = self._decode_frame(frame.msg, "image")
        if image is None:
            return
        size = (int(image.shape[1]), int(image.shape[0]))
        if not self._tracker.initialized:
            self._publish_status(frame.header, TrackState.STOPPED, "not tracking: send an init box", size, image)
            return
        if self._track_size is not None and size != self._track_size:
            self._tracker.reset()
            old, self._track_size = self._track_size, None
            reason = (f"image size changed from {old[0]}x{old[1]} to {size[0]}x{size[1]}: tracking stopped, "
                      f"send a new init box")
            self._warn_throttled(reason)
            self._publish_status(frame.header, TrackState.STOPPED, reason, size, image)
            return
        want_mask = bool(self._params["publish_mask"] or self._params["publish_overlay"] or self._position_pub)
        t0 = self._now_ns()
        result = self._tracker.track(image, want_mask=want_mask)
        self._publish_result(frame.header, result, image, start_ns, generation, self._now_ns() - t0)

    def _publish_result(self, header: Any, result: Any, image: np.ndarray, start_ns: int, generation: int,
                        tracker_ns: int) -> None:
        """tracker_ns: the tracker call's own time within processing_time (diagnostics split the node's overhead
        from it)."""
        position = self._target_position(header, result) if self._position_pub is not None else None
        now_ns = self._now_ns()
        size = (int(image.shape[1]), int(image.shape[0]))
        msg = messages.build_result(header, result, size, self._thresholds(), now_ns - start_ns, now_ns,
                                    _status_text(result.state))
        if position is not None:
            msg.range = float(np.linalg.norm(position))
            self._position_pub.publish(messages.build_position(header, position))
        with self._out_lock:
            if generation != self._generation:
                return  # a reset arrived while this frame was being tracked
            self._result_pub.publish(msg)
            if self._detection_pub is not None and self._params["publish_detection"] and \
                    result.state in (TrackState.INITIALIZING, TrackState.TRACKING, TrackState.LOW_CONFIDENCE):
                self._detection_pub.publish(messages.build_detection(msg))
        self._stats.record_frame((now_ns - start_ns) * 1e-9, (now_ns - stamp_to_ns(header.stamp)) * 1e-9,
                                 int(result.state), int(result.init_id), tracker_ns * 1e-9)
        if self._params["publish_mask"] and result.mask is not None:
            self._mask_pub.publish(to_image_msg(np.ascontiguousarray(result.mask, dtype=np.uint8), header, "mono8"))
        if self._params["publish_overlay"]:
            self._overlay_pub.publish(_overlay_msg(image, result, header))

    def _target_position(self, header: Any, result: Any) -> Optional[tuple[float, float, float]]:
        """The target's 3D position from the depth image paired with this frame (None without one, or while the
        box is not a live measurement: LOST, STOPPED, ERROR)."""
        if result.state not in (TrackState.INITIALIZING, TrackState.TRACKING, TrackState.LOW_CONFIDENCE):
            return None
        pair = self._depth_store.get(stamp_to_ns(header.stamp))
        if pair is None:
            return None
        try:
            return target_position(depth_metres(pair[0]), result.mask, result.box_xywh, pair[1])
        except DepthError as exc:
            self._stats.record_input_error()
            self._warn_throttled(f"depth skipped: {exc}")
            return None

    def _do_reset(self, req: _ResetRequest) -> None:
        was = self._tracker.initialized
        self._tracker.reset()
        self._track_size = None
        self._publish_status(req.header, TrackState.STOPPED, "reset through ~/reset")
        self.get_logger().info(f"reset (was tracking: {was}, init_id {self._init_id})")

    def _refuse_init(self, req: _InitRequest, reason: str) -> None:
        self.get_logger().warning(f"init refused: {reason}")
        self._publish_status(req.header, TrackState.ERROR, reason)
        req.success, req.message = False, reason
        req.done.set()

    def _do_init(self, req: _InitRequest) -> None:
        generation = self._generation
        if req.image_msg is not None:  # ~/init service: the image travels with the request
            frame = None
            image, error = self._decode_frame(req.image_msg, "init image", decode_image)
            if image is None:
                return self._refuse_init(req, f"init image: {error}")
            header = req.image_msg.header
        else:  # track/init topic: look the frame up by stamp
            stamp_ns = stamp_to_ns(req.header.stamp)
            frame = self._ring.latest() if stamp_ns == 0 else self._find_frame(stamp_ns)
            if frame is None:
                return self._refuse_init(req, self._missing_frame_reason(stamp_ns))
            image, error = self._decode_frame(frame.msg, "init frame")
            if image is None:
                return self._refuse_init(req, f"init frame: {error}")
            header = frame.header
        height, width = image.shape[:2]
        reason = messages.check_init_box(req.box, width, height)
        if reason:
            return self._refuse_init(req, reason)
        start_ns = self._now_ns()
        try:
            result = self._tracker.init(image, np.array(box_msg_to_xywh(req.box), dtype=np.float64))
            tracker_ns = self._now_ns() - start_ns
        except (ValueError, RuntimeError) as exc:
            return self._refuse_init(req, f"tracker refused the init box: {exc}")
        self._init_id = int(result.init_id)
        self._track_size = (width, height)
        self._publish_result(header, result, image, start_ns, generation, tracker_ns)
        self.get_logger().info(
            f"init {self._init_id}: box center=({req.box.center_x:.1f}, {req.box.center_y:.1f}) "
            f"size={req.box.width:.1f}x{req.box.height:.1f} on frame {format_ns(stamp_to_ns(header.stamp))}")
        req.success, req.message, req.init_id = True, "", self._init_id
        req.done.set()
        if frame is not None:
            self._fast_forward(frame, generation)

    def _find_frame(self, stamp_ns: int) -> Optional[Frame]:
        """The buffered frame with this stamp. A stamp newer than every buffered frame may belong to a frame still
        in transit (a small init message can overtake a large image): wait up to INIT_WAIT_S for it, and stop
        waiting as soon as a newer frame shows it was lost."""
        frame = self._ring.find(stamp_ns)
        end = time.monotonic() + INIT_WAIT_S
        while frame is None and time.monotonic() < end and not self._stop.is_set():
            latest = self._ring.latest()
            if latest is not None and latest.stamp_ns > stamp_ns:
                return None
            time.sleep(0.01)
            frame = self._ring.find(stamp_ns)
        return frame

    def _missing_frame_reason(self, stamp_ns: int) -> str:
        span = self._ring.stamp_range()
        if stamp_ns == 0 or span is None:
            return "no image received yet on " + self.resolve_topic_name(TOPIC_IMAGE)
        return (f"init stamp {format_ns(stamp_ns)} is not in the frame buffer ({len(self._ring)} frames, "
                f"stamps {format_ns(span[0])} .. {format_ns(span[1])}): copy the stamp of an image from "
                f"{self.resolve_topic_name(TOPIC_IMAGE)}, use a zero stamp for the latest frame, or raise "
                f"frame_buffer_length")

    def _fast_forward(self, frame: Frame, generation: int) -> None:
        """Track through the frames buffered after the init frame, so the track is current again."""
        newer = pick_fast_forward(self._ring.newer_than(frame), int(self._params["fast_forward_max_frames"]))
        for f in newer:
            if self._stop.is_set() or generation != self._generation or self._commands:
                return  # a reset or a new init supersedes this catch-up
            self._process(f, generation)
        if newer:
            self._slot.discard_older_than(newer[-1].seq)
        else:
            self._slot.discard_older_than(frame.seq)

    def shutdown(self) -> None:
        """Stop the worker thread (before destroy_node)."""
        self._stop.set()
        self._slot.close()
        self._worker.join(timeout=10.0)


def _import_message_filters() -> Any:
    try:
        import message_filters
    except ImportError as exc:
        raise StartupError(f"depth_enabled is true but message_filters is not installed ({exc}): install it "
                           f"(apt install ros-$ROS_DISTRO-message-filters) or set depth_enabled: false") from None
    return message_filters


class _StampStore:
    """The last `length` items keyed by stamp (ns), for lookup by the worker; thread-safe."""

    def __init__(self, length: int) -> None:
        self._lock = threading.Lock()
        self._items: "OrderedDict[int, Any]" = OrderedDict()
        self._length = length

    def put(self, stamp_ns: int, item: Any) -> None:
        with self._lock:
            self._items[stamp_ns] = item
            while len(self._items) > self._length:
                self._items.popitem(last=False)

    def get(self, stamp_ns: int) -> Any:
        with self._lock:
            return self._items.get(stamp_ns)


def _status_text(state: TrackState) -> str:
    if state == TrackState.LOST:
        return "target lost: confidence below lost_threshold; searching"
    return ""


def _status_overlay(image: np.ndarray, header: Any, state: TrackState) -> Image:
    """The camera image with the state written on it (so rviz2 shows the live stream when not tracking)."""
    canvas = image.copy()
    (tw, th), base = cv2.getTextSize(state.name, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
    cv2.rectangle(canvas, (4, 4), (12 + tw, 12 + th + base), (0, 0, 0), -1)  # readable on any background
    cv2.putText(canvas, state.name, (8, 8 + th), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                STATE_COLORS.get(state, (255, 255, 255)), 2, cv2.LINE_AA)
    return to_image_msg(canvas, header, "bgr8")


def _overlay_msg(image: np.ndarray, result: Any, header: Any) -> Image:
    return to_image_msg(np.ascontiguousarray(draw_overlay(image, result)), header, "bgr8")


def main(args: Optional[list] = None) -> None:
    """Entry point: build the node, spin it on a MultiThreadedExecutor; exit 1 with one line on a startup error."""
    try:
        rclpy.init(args=args)
    except Exception as exc:  # malformed --ros-args (remap, params file): one line, not a traceback
        print(f"[FATAL] [{NODE_NAME}]: cannot start: invalid ROS arguments: {exc}", file=sys.stderr)
        sys.exit(2)
    node: Optional[TrackerNode] = None
    code = 0
    try:
        node = TrackerNode()
        executor = MultiThreadedExecutor(num_threads=max(4, min(8, (os.cpu_count() or 4))))
        executor.add_node(node)
        executor.spin()
    except StartupError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Ctrl-C reaches the node twice under launch or `timeout` (SIGINT to the process group, then forwarded by
        # launch): a second KeyboardInterrupt must not break the clean-up into a traceback and exit code -2.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _quiet_cleanup(node)
    # Everything is closed: skip the interpreter's teardown, which with torch loaded takes seconds (measured 4-6 s on
    # a loaded 2-core machine) and makes launch escalate Ctrl-C to SIGTERM after its 5 s grace period (exit -15).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _quiet_cleanup(node: Optional[TrackerNode]) -> None:
    try:
        if node is not None:
            node.shutdown()
            node.destroy_node()
    except KeyboardInterrupt:  # raised before SIGINT was ignored above
        pass
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
