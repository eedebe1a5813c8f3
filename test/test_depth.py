"""Depth input: the target's 3D position from an aligned depth image (ros/depth.py, exact numbers), and through DDS:
tracker_node with depth_enabled pairs colour, depth and camera_info with message_filters and publishes
track/position + TrackResult.range; without message_filters it refuses to start with a clear reason."""
from __future__ import annotations

import array
import math
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from siamattn_ros.ros.depth import DepthError, depth_metres, target_position  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def depth_msg(values: np.ndarray, encoding: str, pad: int = 0) -> Image:
    h, w = values.shape
    dtype = "<f4" if encoding == "32FC1" else "<u2"
    rows = np.ascontiguousarray(values.astype(dtype)).view(np.uint8).reshape(h, -1)
    data = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=int(data.shape[1]))
    msg.data = array.array("B", data.tobytes())
    return msg


def camera_info(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> CameraInfo:
    info = CameraInfo(width=width, height=height)
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    return info


def test_depth_encodings_give_metres_and_nan_for_no_depth():
    mm = np.array([[0, 1000, 2500], [65535, 1, 300]], np.uint16)
    out = depth_metres(depth_msg(mm, "16UC1", pad=2))
    np.testing.assert_allclose(out[~np.isnan(out)], [1.0, 2.5, 65.535, 0.001, 0.3], rtol=1e-6)
    assert np.isnan(out[0, 0])
    m = np.array([[1.5, np.nan, np.inf], [0.0, -1.0, 2.0]], np.float32)
    out = depth_metres(depth_msg(m, "32FC1", pad=4))
    assert out[0, 0] == pytest.approx(1.5) and out[1, 2] == pytest.approx(2.0)
    assert np.isnan(out[[0, 0, 1, 1], [1, 2, 0, 1]]).all()
    with pytest.raises(DepthError, match="depth encoding 'bgr8' not supported"):
        depth_metres(Image(height=1, width=1, encoding="bgr8", step=3, data=[1, 2, 3]))
    short = depth_msg(mm, "16UC1")
    short.data = short.data[:-1]
    with pytest.raises(DepthError, match="does not fit"):
        depth_metres(short)


def test_median_depth_over_the_mask_back_projected_through_k():
    depth = np.full((120, 160), 5.0, np.float32)  # background at 5 m
    depth[40:80, 60:100] = 2.0  # the target at 2 m ...
    depth[50:52, 70:90] = np.nan  # ... with a hole
    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 60:100] = 255
    mask[40:45, 60:100] = 0
    info = camera_info(200.0, 210.0, 79.5, 59.5, 160, 120)
    box = (50.0, 30.0, 60.0, 60.0)  # larger than the target: the mask, not the box, selects the depths
    x, y, z = target_position(depth, mask, box, info)
    u, v = 50.0 + 30.0 - 0.5, 30.0 + 30.0 - 0.5  # box centre in pinhole pixel coordinates
    assert z == pytest.approx(2.0)
    assert (x, y) == (pytest.approx((u - 79.5) * 2.0 / 200.0), pytest.approx((v - 59.5) * 2.0 / 210.0))
    # Without a mask the box decides (median over the box: mostly target here).
    assert target_position(depth, None, (60.0, 40.0, 40.0, 40.0), info)[2] == pytest.approx(2.0)
    # No valid depth on the target: no position.
    assert target_position(np.full((120, 160), np.nan, np.float32), mask, box, info) is None
    with pytest.raises(DepthError, match="not aligned"):
        target_position(depth[:100], mask, box, info)
    with pytest.raises(DepthError, match="no usable intrinsics"):
        target_position(depth, mask, box, CameraInfo())


# ---------------------------------------------------------------- through DDS
def _require_message_filters():
    try:
        import message_filters  # noqa: F401
    except ImportError as exc:
        reason = f"message_filters not installed here ({exc}); it comes with a ROS 2 install (or ../shared/ros-overlay)"
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)


def test_node_publishes_the_target_position_from_synchronised_depth(tmp_path):
    _require_message_filters()
    pytest.importorskip("torch")
    from geometry_msgs.msg import PointStamped

    from siamattn_ros.msg import TrackResult
    from siamattn_ros.ros.image_conv import to_image_msg
    from siamattn_ros.ros.messages import xywh_to_box
    from siamattn_ros.ros.qos import image_qos
    from siamattn_ros.testing.checkpoints import random_checkpoint
    from siamattn_ros.testing.frames import synthetic_frame
    from siamattn_ros.testing.node_session import connected_node
    from siamattn_ros.testing.ros_client import make_header

    ckpt = random_checkpoint(tmp_path / "mnv2_random.pth", seed=2)
    ns = "depth_test"
    with connected_node({"model": str(ckpt), "device": "cpu", "num_threads": 1, "depth_enabled": True,
                         "publish_overlay": False}, f"/{ns}/image", namespace=ns, remaps={},
                        driver_args={"ns": ns}, show_log=True) as (_, driver):
        positions: list = []
        driver.node.create_subscription(PointStamped, f"/{ns}/track/position", positions.append, 10)
        depth_pub = driver.node.create_publisher(Image, f"/{ns}/depth/image", image_qos("best_effort"))
        info_pub = driver.node.create_publisher(CameraInfo, f"/{ns}/depth/camera_info", image_qos("best_effort"))
        assert driver.wait_for_connection(60)
        assert driver.wait_until(lambda: depth_pub.get_subscription_count() > 0
                                 and info_pub.get_subscription_count() > 0, 30)
        info = camera_info(150.0, 150.0, 79.5, 59.5, 160, 120)
        mm = np.full((120, 160), 1500, np.uint16)  # everything at 1.5 m, with some holes
        mm[::7, ::5] = 0

        def send(i: int) -> Image:
            image, _ = synthetic_frame(i)
            msg = driver.image_msg(image, 2_000_000_000 + i * 33_333_333, "cam_color_optical_frame")
            info.header = msg.header
            depth = depth_msg(mm, "16UC1")
            depth.header = make_header(2_000_000_000 + i * 33_333_333 + 2_000_000, "cam_color_optical_frame")
            depth_pub.publish(depth)  # 2 ms off the colour stamp: paired by the approximate synchroniser
            info_pub.publish(info)
            return msg

        first = send(0)
        driver.publish_and_wait(first)
        driver.publish_init(make_header(0), xywh_to_box(synthetic_frame(0)[1]))
        assert driver.wait_until(lambda: any(r.state == TrackResult.INITIALIZING for r in driver.results), 60)
        checked = 0
        for i in range(1, 6):
            msg = send(i)
            res = driver.publish_and_wait(msg)
            if res.state not in (TrackResult.TRACKING, TrackResult.LOW_CONFIDENCE):
                assert res.range == 0.0  # LOST: the box is not a measurement, no position
                continue
            assert driver.wait_until(lambda: any(p.header == msg.header for p in positions), 10), \
                "no track/position for a tracked frame"
            point = [p for p in positions if p.header == msg.header][0].point
            u = res.box.center_x - 0.5
            v = res.box.center_y - 0.5
            assert point.z == pytest.approx(1.5, abs=1e-4)
            assert point.x == pytest.approx((u - 79.5) * 1.5 / 150.0, abs=1e-3)
            assert point.y == pytest.approx((v - 59.5) * 1.5 / 150.0, abs=1e-3)
            assert res.range == pytest.approx(math.sqrt(point.x ** 2 + point.y ** 2 + point.z ** 2), rel=1e-5)
            checked += 1
        assert checked >= 1, "the node never tracked: nothing checked"


def test_depth_without_message_filters_is_a_clear_startup_error(tmp_path):
    """Run the node where message_filters cannot be imported (its directory left off PYTHONPATH)."""
    _require_message_filters()
    import message_filters

    from siamattn_ros.testing.node_process import NodeProcess

    mf_dir = str(Path(message_filters.__file__).resolve().parents[1])
    if (Path(mf_dir) / "rclpy").is_dir():
        reason = f"message_filters shares {mf_dir} with rclpy here: it cannot be left out for this test"
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and Path(p).resolve() != Path(mf_dir)]
    proc = NodeProcess(params={"depth_enabled": True, "device": "cpu"},
                       env={"PYTHONPATH": os.pathsep.join([str(REPO)] + path)})
    proc.start()
    try:
        code = proc.wait(300)
        text = proc.log()
        assert code == 1, text
        assert "cannot start: depth_enabled is true but message_filters is not installed" in text, text
        assert "loading model" not in text  # refused before the model is loaded
    finally:
        proc.cleanup()
