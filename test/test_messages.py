"""InitBox / TrackResult / InitTrack over real rclpy + Fast DDS: every field survives, in one process and across two."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
from builtin_interfaces.msg import Duration  # noqa: E402
from geometry_msgs.msg import Point32  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy  # noqa: E402

from siamattn_ros.msg import BoundingBox2D, InitBox, TrackResult  # noqa: E402
from siamattn_ros.srv import InitTrack  # noqa: E402
from siamattn_ros.tracker.result import TrackState  # noqa: E402

QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                 durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def _box(seed: float, angle: float = 0.0) -> BoundingBox2D:
    return BoundingBox2D(center_x=100.25 + seed, center_y=50.5 + seed, width=80.125 + seed,
                         height=60.0625 + seed, angle=angle)


def make_init_box() -> InitBox:
    msg = InitBox()
    msg.header.stamp.sec = 1_700_000_123
    msg.header.stamp.nanosec = 456_789_012
    msg.header.frame_id = "camera_color_optical_frame"
    msg.box = _box(0.0)
    return msg


def make_track_result() -> TrackResult:
    msg = TrackResult()
    msg.header.stamp.sec = 1_700_000_124
    msg.header.stamp.nanosec = 999_999_999
    msg.header.frame_id = "camera_color_optical_frame"
    msg.state = TrackResult.LOW_CONFIDENCE
    msg.status_message = "confidence 0.31 below threshold 0.45"
    msg.box = _box(1.0)
    msg.rotated_box = _box(2.0, angle=-0.7853981)
    msg.polygon.points = [Point32(x=1.5, y=2.5, z=0.0), Point32(x=10.25, y=2.5, z=0.0),
                          Point32(x=10.25, y=20.75, z=0.0), Point32(x=1.5, y=20.75, z=0.0)]
    msg.confidence = 0.3125
    msg.confidence_threshold = 0.4375
    msg.lost_threshold = 0.1875
    msg.init_id = 7
    msg.frames_since_init = 123_456
    msg.image_width = 1280
    msg.image_height = 720
    msg.processing_time = Duration(sec=0, nanosec=12_345_678)
    msg.latency = Duration(sec=1, nanosec=2_000_003)
    msg.range = 2.375
    return msg


def _non_default_fields(msg) -> set[str]:
    """Names of the fields of msg that differ from a default-constructed message of its type."""
    default = type(msg)()
    return {name for name in msg.get_fields_and_field_types()
            if getattr(msg, name) != getattr(default, name)}


def test_fixtures_fill_every_field():
    # Guards the round-trip tests below: a field added to a .msg must be filled here, or it is not round-tripped.
    assert _non_default_fields(make_init_box()) == set(InitBox.get_fields_and_field_types())
    assert _non_default_fields(make_track_result()) == set(TrackResult.get_fields_and_field_types())


def test_state_constants_match_tracker_enum():
    for state in TrackState:
        assert getattr(TrackResult, state.name) == state.value
    constants = {k for k in dir(TrackResult) if k.isupper() and isinstance(getattr(TrackResult, k), int)}
    assert constants == {s.name for s in TrackState}


def test_init_track_service_types():
    req = InitTrack.Request()
    req.box = _box(3.0)
    req.image.encoding = "bgr8"
    assert InitTrack.Response(success=True, message="", init_id=3).init_id == 3
    assert req.box.width == pytest.approx(83.125)


@pytest.fixture()
def node():
    context = rclpy.Context()
    rclpy.init(context=context)
    n = Node("test_messages", context=context)
    yield n, context
    n.destroy_node()
    rclpy.shutdown(context=context)


def _receive(node_ctx, topic_in: str, topic_out: str, msg, timeout: float = 20.0):
    """Publish msg on topic_in and return the first message that arrives on topic_out."""
    node, context = node_ctx
    got = []
    node.create_subscription(type(msg), topic_out, got.append, QOS)
    pub = node.create_publisher(type(msg), topic_in, QOS)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    next_pub = 0.0
    while not got and time.monotonic() < deadline:
        if time.monotonic() >= next_pub:  # re-publish until discovery has completed
            pub.publish(msg)
            next_pub = time.monotonic() + 0.5
        executor.spin_once(timeout_sec=0.05)
    executor.remove_node(node)
    assert got, f"no {type(msg).__name__} arrived on {topic_out} within {timeout} s"
    return got[0]


@pytest.mark.parametrize("make", [make_init_box, make_track_result], ids=["InitBox", "TrackResult"])
def test_round_trip_in_process(node, make):
    sent = make()
    topic = f"/test/in_process_{type(sent).__name__}"
    received = _receive(node, topic, topic, sent)
    assert received == sent
    assert received.header.stamp.nanosec == sent.header.stamp.nanosec


@pytest.mark.parametrize("make", [make_init_box, make_track_result], ids=["InitBox", "TrackResult"])
def test_round_trip_across_processes(node, make):
    sent = make()
    name = type(sent).__name__
    echo = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("ros_echo.py")), f"siamattn_ros/msg/{name}",
         f"/test/xproc_{name}_in", f"/test/xproc_{name}_out"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in echo.stdout:  # the child may log before it is ready
            lines.append(line)
            if line.strip() == "ready":
                break
        assert lines and lines[-1].strip() == "ready", f"echo process did not start: {''.join(lines)}"
        received = _receive(node, f"/test/xproc_{name}_in", f"/test/xproc_{name}_out", sent)
    finally:
        echo.send_signal(signal.SIGINT)
        try:
            echo.wait(timeout=10)
        except subprocess.TimeoutExpired:
            echo.kill()
            echo.wait()
    assert received == sent
    assert _non_default_fields(received) == set(type(sent).get_fields_and_field_types())


def test_package_exposes_version():
    import siamattn_ros

    assert siamattn_ros.__version__ == "0.1.0"
    # The installed package.xml and the Python package agree on the version.
    xml = (Path(__file__).resolve().parents[1] / "package.xml").read_text()
    assert f"<version>{siamattn_ros.__version__}</version>" in xml
