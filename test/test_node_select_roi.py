"""select_roi: keeps the newest frame + header and sends InitBox stamped with the frame the box was drawn on."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402

from siamattn_ros.msg import InitBox  # noqa: E402
from siamattn_ros.testing.frames import synthetic_frame  # noqa: E402
from siamattn_ros.testing.ros_client import make_header  # noqa: E402
from siamattn_ros.ros.image_conv import to_image_msg  # noqa: E402
from siamattn_ros.ros.qos import init_qos, output_qos  # noqa: E402
from siamattn_ros.ros.select_roi import RoiSelector, gui_available  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def graph():
    """A selector on /roi_test/image and a camera + init listener node, spun together in this process."""
    ctx = Context()
    rclpy.init(context=ctx)
    selector = RoiSelector(context=ctx, cli_args=["--ros-args", "-r", "image:=/roi_test/image"])
    peer = Node("roi_test_peer", context=ctx)
    camera = peer.create_publisher(Image, "/roi_test/image", output_qos(5))
    received: list[InitBox] = []
    peer.create_subscription(InitBox, "/track/init", received.append, init_qos())
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(selector)
    executor.add_node(peer)

    def spin_until(predicate, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not predicate():
            executor.spin_once(timeout_sec=0.05)
        return predicate()

    try:
        assert spin_until(lambda: camera.get_subscription_count() > 0
                          and selector.publisher.get_subscription_count() > 0)
        yield selector, camera, received, spin_until
    finally:
        executor.shutdown()
        selector.destroy_node()
        peer.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_box_is_sent_with_the_stamp_of_the_frozen_frame(graph):
    selector, camera, received, spin_until = graph
    frames = [to_image_msg(synthetic_frame(i)[0], make_header(2_000_000_000 + i, "roi_cam"), "bgr8") for i in range(3)]
    camera.publish(frames[0])
    assert spin_until(lambda: selector.frames_received >= 1)
    image, header = selector.snapshot()  # the user freezes frame 0 and starts dragging
    assert header == frames[0].header and image.shape == (120, 160, 3)
    for f in frames[1:]:  # the stream moves on while the user drags
        camera.publish(f)
    assert spin_until(lambda: selector.latest_message().header == frames[2].header)
    selector.publish_box(header, (10.0, 20.0, 30.0, 40.0), (image.shape[1], image.shape[0]))
    assert spin_until(lambda: len(received) == 1)
    msg = received[0]
    assert msg.header == frames[0].header  # stamp and frame_id of the frame drawn on, not the newest
    assert (msg.box.center_x, msg.box.center_y, msg.box.width, msg.box.height, msg.box.angle) == (
        25.0, 40.0, 30.0, 40.0, 0.0)


def test_invalid_box_is_not_sent(graph):
    selector, camera, received, spin_until = graph
    camera.publish(to_image_msg(synthetic_frame(0)[0], make_header(7), "bgr8"))
    assert spin_until(lambda: selector.frames_received >= 1)
    image, header = selector.snapshot()
    with pytest.raises(ValueError, match="must be >= 1 px"):
        selector.publish_box(header, (10.0, 10.0, 0.0, 5.0), (160, 120))
    spin_until(lambda: bool(received), timeout=0.5)
    assert received == []


def test_without_gui_support_the_tool_says_so_and_exits_2():
    ok, _ = gui_available()
    if ok:
        pytest.skip("this OpenCV has GUI support; the degradation path is not taken")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "siamattn_ros.ros.select_roi"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 2
    assert "cannot open windows" in proc.stderr and "--box X Y W H" in proc.stderr
    assert "Traceback" not in proc.stderr
