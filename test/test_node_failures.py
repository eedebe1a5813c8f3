"""A failure inside the tracker (CUDA out of memory, a broken model) while the node runs: the node publishes an ERROR
result for the frame, with the reason, keeps running, reports it in /diagnostics, and tracks again once the tracker
works again, so a consumer of track/result can tell "broken" from "slow".

The node runs in this process (real rclpy, real Fast DDS between it and the test client); the failure is injected by
making the real tracker's track() raise the error a GPU raises when it runs out of memory, which cannot happen on
the CPU-only test machines.
"""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
torch = pytest.importorskip("torch", reason="torch is not installed")

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from siamattn_ros.msg import TrackResult  # noqa: E402
from siamattn_ros.ros.messages import xywh_to_box  # noqa: E402
from siamattn_ros.testing.checkpoints import random_checkpoint  # noqa: E402
from siamattn_ros.testing.frames import synthetic_frame  # noqa: E402
from siamattn_ros.testing.ros_client import TrackerDriver, make_header  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def in_process_node(tmp_path_factory):
    from siamattn_ros.ros.tracker_node import TrackerNode

    ckpt = random_checkpoint(tmp_path_factory.mktemp("ckpt") / "mnv2_random.pth", seed=3)
    ctx = Context()
    rclpy.init(context=ctx)
    overrides = [Parameter("model", value=str(ckpt)), Parameter("device", value="cpu"),
                 Parameter("num_threads", value=1), Parameter("diagnostics_period", value=0.2)]
    node = TrackerNode(context=ctx, namespace="/failure_test", parameter_overrides=overrides)
    executor = MultiThreadedExecutor(num_threads=4, context=ctx)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        yield node
    finally:
        node.shutdown()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        spinner.join(10)


def test_tracker_failure_gives_error_results_then_recovers(in_process_node):
    node = in_process_node
    driver = TrackerDriver(ns="failure_test", image_topic="/failure_test/image")
    try:
        assert driver.wait_for_connection(30)
        image, box = synthetic_frame(0)
        assert driver.publish_and_wait(driver.image_msg(image, 5_000_000_000)).state == TrackResult.STOPPED
        driver.publish_init(make_header(0), xywh_to_box(box))
        assert driver.wait_until(lambda: any(r.state == TrackResult.INITIALIZING for r in driver.results), 30)
        init_id = [r for r in driver.results if r.state == TrackResult.INITIALIZING][-1].init_id

        real_track = node._tracker.track

        def out_of_memory(*args, **kwargs):
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 7.79 GiB total capacity)")

        node._tracker.track = out_of_memory
        try:
            for i in range(1, 4):
                msg = driver.image_msg(synthetic_frame(i)[0], 5_000_000_000 + i * 33_000_000)
                res = driver.publish_and_wait(msg)
                assert res.state == TrackResult.ERROR and res.header == msg.header
                assert res.status_message.startswith("tracker failed: RuntimeError: CUDA out of memory")
            assert driver.wait_until(lambda: any(
                s.level == s.ERROR and "CUDA out of memory" in s.message
                for d in driver.diagnostics for s in d.status), 10), "no ERROR diagnostics"
        finally:
            node._tracker.track = real_track
        msg = driver.image_msg(synthetic_frame(4)[0], 5_000_000_000 + 4 * 33_000_000)
        res = driver.publish_and_wait(msg)
        assert res.state in (TrackResult.TRACKING, TrackResult.LOW_CONFIDENCE, TrackResult.LOST)
        assert res.init_id == init_id and res.frames_since_init >= 1  # the track survived the failures
    finally:
        driver.close()
