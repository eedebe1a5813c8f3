"""tracker_node with image_transport=compressed: sensor_msgs/CompressedImage in, same outputs out."""
from __future__ import annotations

import array

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
torch = pytest.importorskip("torch", reason="torch is not installed")

from sensor_msgs.msg import CompressedImage  # noqa: E402

from siamattn_ros.msg import TrackResult  # noqa: E402
from siamattn_ros.interface.convert import stamp_to_ns  # noqa: E402
from siamattn_ros.ros.messages import xywh_to_box  # noqa: E402
from siamattn_ros.testing.checkpoints import random_checkpoint  # noqa: E402
from siamattn_ros.testing.frames import synthetic_frame  # noqa: E402
from siamattn_ros.testing.node_session import connected_node  # noqa: E402
from siamattn_ros.testing.ros_client import make_header  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ckpt = random_checkpoint(tmp_path_factory.mktemp("ckpt") / "mnv2_random.pth", seed=99)
    with connected_node({"model": str(ckpt), "device": "cpu", "num_threads": 1, "image_transport": "compressed",
                         "qos_reliability": "reliable"}, "/cam/image_raw/compressed", namespace="cam",
                        driver_args={"ns": "cam", "compressed": True, "image_reliability": "reliable"},
                        show_log=True) as (proc, driver):
        yield proc, driver


def test_compressed_frames_are_tracked_under_a_namespace(setup):
    proc, driver = setup
    assert "input=/cam/image_raw/compressed (compressed, reliable) output=/cam/track/result" in proc.log()
    image, (x, y, w, h) = synthetic_frame(0)
    msg = driver.image_msg(image, 5_000_000_001)
    assert isinstance(msg, CompressedImage)
    res = driver.publish_and_wait(msg)
    assert res.header == msg.header and res.state == TrackResult.STOPPED
    driver.publish_init(make_header(0), xywh_to_box((x, y, w, h)))
    assert driver.wait_until(lambda: any(r.header == msg.header and r.state == TrackResult.INITIALIZING
                                         for r in driver.results), 20)
    for i in range(1, 4):
        msg = driver.image_msg(synthetic_frame(i)[0], 5_000_000_001 + i)
        res = driver.publish_and_wait(msg)
        assert res.header == msg.header and res.state != TrackResult.STOPPED
        assert (res.image_width, res.image_height) == (160, 120)


def test_undecodable_compressed_frame_is_logged_and_skipped(setup):
    proc, driver = setup
    broken = CompressedImage(format="jpeg")
    broken.header = make_header(6_000_000_000)
    broken.data = array.array("B", b"\xff\xd8 definitely not a jpeg")
    driver.publish_image(broken)
    assert proc.wait_for_log("cv2.imdecode could not decode", 20)
    assert not driver.results_for(stamp_to_ns(broken.header.stamp))
    msg = driver.image_msg(synthetic_frame(9)[0], 6_000_000_001)
    assert driver.publish_and_wait(msg).header == msg.header
