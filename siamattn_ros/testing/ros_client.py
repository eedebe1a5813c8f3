"""ROS clients for library code, tests and tools: `RosHost`, an rclpy node spinning on a background thread with its own
Context (so it can publish and wait from ordinary code, and several coexist in one process), and `TrackerDriver`, a
client of a running tracker_node built on it (publishes frames and init boxes, calls its services, collects its
outputs).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from siamattn_ros.interface.convert import set_stamp, stamp_to_ns
from siamattn_ros.interface.names import (NODE_NAME, SERVICE_INIT, SERVICE_RESET, TOPIC_DIAGNOSTICS, TOPIC_INIT,
                                          TOPIC_MASK, TOPIC_OVERLAY, TOPIC_RESULT, resolve)
from siamattn_ros.interface.states import TrackState
from siamattn_ros.msg import BoundingBox2D, InitBox, TrackResult
from siamattn_ros.ros.image_conv import to_compressed_msg, to_image_msg
from siamattn_ros.ros.messages import init_box_msg, xywh_to_box
from siamattn_ros.ros.qos import image_qos
from siamattn_ros.srv import InitTrack

_RELIABLE = QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=200, reliability=QoSReliabilityPolicy.RELIABLE,
                       durability=QoSDurabilityPolicy.VOLATILE)


def make_header(stamp_ns: int, frame_id: str = "test_camera_optical_frame") -> Header:
    header = Header(frame_id=frame_id)
    set_stamp(header.stamp, stamp_ns)
    return header


class RosHost:
    """An rclpy node on its own Context, spun by a background thread. `with RosHost("name") as node: ...`, or keep
    the object and call close()."""

    def __init__(self, name: str, args: Optional[list] = None) -> None:
        self.context = Context()
        rclpy.init(args=args, context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{name}_spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:  # shutdown while spinning (context invalidated): nothing left to do
            pass

    def __enter__(self) -> Node:
        return self.node

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self.context.ok():
            return
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()


class TrackerDriver:
    """Talks to a tracker_node named `node_name` in namespace `ns` (topic names as the node resolves them)."""

    def __init__(self, node_name: str = NODE_NAME, ns: str = "", image_topic: str = "/image",
                 compressed: bool = False, collect_images: bool = True, image_reliability: str = "best_effort",
                 ) -> None:
        self._host = RosHost("siamattn_test_driver")
        self.node = self._host.node
        self.node_path = resolve(node_name, ns)  # /<ns>/<node name>
        self._result_topic = resolve(TOPIC_RESULT, ns)
        self.image_topic = image_topic
        self.compressed = compressed
        self._lock = threading.Lock()
        self.results: list[TrackResult] = []
        self.masks: list[Image] = []
        self.overlays: list[Image] = []
        self.diagnostics: list[DiagnosticArray] = []
        self._on_result: Optional[Callable[[TrackResult], None]] = None
        n = self.node
        # Like a camera driver: sensor-data QoS, keep only the newest frame (a deep reliable writer queue would
        # deliver stale frames under load and measure the test client instead of the node).
        self.image_pub = n.create_publisher(CompressedImage if compressed else Image, image_topic,
                                            image_qos(image_reliability))
        self.init_pub = n.create_publisher(InitBox, resolve(TOPIC_INIT, ns), _RELIABLE)
        n.create_subscription(TrackResult, self._result_topic, self._result_cb, _RELIABLE)
        if collect_images:  # off for long runs (soak): full-frame images would pile up in this process
            n.create_subscription(Image, resolve(TOPIC_MASK, ns), lambda m: self._append(self.masks, m), _RELIABLE)
            n.create_subscription(Image, resolve(TOPIC_OVERLAY, ns), lambda m: self._append(self.overlays, m),
                                  _RELIABLE)
        n.create_subscription(DiagnosticArray, TOPIC_DIAGNOSTICS, lambda m: self._append(self.diagnostics, m),
                              _RELIABLE)
        self.reset_client = n.create_client(Trigger, resolve(SERVICE_RESET, ns, node_name))
        self.init_client = n.create_client(InitTrack, resolve(SERVICE_INIT, ns, node_name))
        self.param_client = n.create_client(SetParameters, f"{self.node_path}/set_parameters")

    # ------------------------------------------------------------------ plumbing
    def _append(self, store: list, msg: Any) -> None:
        with self._lock:
            store.append(msg)

    def _result_cb(self, msg: TrackResult) -> None:
        with self._lock:
            self.results.append(msg)
        if self._on_result is not None:
            self._on_result(msg)

    def take_results(self) -> list[TrackResult]:
        """The results received so far, removing them (long runs keep memory flat this way)."""
        with self._lock:
            out, self.results = self.results, []
            self.diagnostics = self.diagnostics[-5:]
            return out

    def close(self) -> None:
        self._host.close()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if predicate():
                    return True
            time.sleep(0.02)
        with self._lock:
            return predicate()

    def wait_for_connection(self, timeout: float = 30.0) -> bool:
        """Until the node subscribes to our image and init topics and publishes results, and its services exist."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if (self.image_pub.get_subscription_count() > 0 and self.init_pub.get_subscription_count() > 0
                    and self.node.count_publishers(self._result_topic) > 0
                    and self.reset_client.service_is_ready() and self.init_client.service_is_ready()
                    and self.param_client.service_is_ready()):
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ publishing
    def image_msg(self, image: np.ndarray, stamp_ns: int, frame_id: str = "test_camera_optical_frame") -> Any:
        header = make_header(stamp_ns, frame_id)
        return to_compressed_msg(image, header, "png") if self.compressed else to_image_msg(image, header, "bgr8")

    def publish_image(self, msg: Any) -> None:
        self.image_pub.publish(msg)

    def results_for(self, stamp_ns: int) -> list[TrackResult]:
        with self._lock:
            return [r for r in self.results if stamp_to_ns(r.header.stamp) == stamp_ns]

    def publish_and_wait(self, msg: Any, timeout: float = 20.0, retries: int = 2) -> TrackResult:
        """Publish a frame and return the node's result for it (re-publishing if a best-effort sample was lost)."""
        stamp = stamp_to_ns(msg.header.stamp)
        # Only results that arrive after this call count: tests reuse stamps, and an older result with the same
        # stamp (another test's frame, or a reset's STOPPED result carrying it) must not stand in for this one.
        with self._lock:
            before = len(self.results)

        def fresh() -> list[TrackResult]:  # called with self._lock held (wait_until holds it for the predicate)
            return [r for r in self.results[before:] if stamp_to_ns(r.header.stamp) == stamp]

        for _ in range(retries + 1):
            self.publish_image(msg)
            if self.wait_until(lambda: bool(fresh()), timeout / (retries + 1)):
                with self._lock:
                    return fresh()[-1]
        raise TimeoutError(f"no result for frame stamp {stamp}")

    def publish_init(self, header: Header, box: BoundingBox2D) -> None:
        self.init_pub.publish(init_box_msg(header, box))

    def init_and_wait(self, header: Header, box_xywh: Sequence[float], frame_header: Optional[Header] = None,
                      timeout: float = 20.0) -> bool:
        """Publish an InitBox (top-left x, y, w, h) stamped with `header` and wait for the INITIALIZING result of
        the frame it applies to (`frame_header`, default: `header`); True when it came."""
        want = header if frame_header is None else frame_header
        with self._lock:
            before = len(self.results)
        self.publish_init(header, xywh_to_box(box_xywh))
        return self.wait_until(lambda: any(r.header == want and r.state == TrackState.INITIALIZING
                                           for r in self.results[before:]), timeout)

    # ------------------------------------------------------------------ services
    def _call(self, client: Any, request: Any, timeout: float) -> Any:
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.02)
        if not future.done():
            raise TimeoutError(f"service {client.srv_name} did not answer within {timeout} s")
        return future.result()

    def reset(self, timeout: float = 20.0) -> Any:
        return self._call(self.reset_client, Trigger.Request(), timeout)

    def init_service(self, image_msg: Image, box: BoundingBox2D, timeout: float = 30.0) -> Any:
        req = InitTrack.Request()
        req.image = image_msg
        req.box = box
        return self._call(self.init_client, req, timeout)

    def set_parameter(self, name: str, value: Any, timeout: float = 20.0) -> Any:
        """SetParameters with one value; returns its SetParametersResult (successful, reason)."""
        pv = ParameterValue()
        if isinstance(value, bool):
            pv.type, pv.bool_value = ParameterType.PARAMETER_BOOL, value
        elif isinstance(value, int):
            pv.type, pv.integer_value = ParameterType.PARAMETER_INTEGER, value
        elif isinstance(value, float):
            pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, value
        else:
            pv.type, pv.string_value = ParameterType.PARAMETER_STRING, str(value)
        req = SetParameters.Request(parameters=[Parameter(name=name, value=pv)])
        return self._call(self.param_client, req, timeout).results[0]
