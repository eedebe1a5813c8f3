"""launch_testing: run launch/tracker.launch.py and wait until the tracker node reports ready; it exits cleanly.

Runs where launch_testing and launch_ros are available (a ROS 2 install, `colcon test`, or ../shared/ros-overlay);
the node comes from a throw-away ament prefix of this checkout (test/ament_env.py), so the test never depends on
what another prefix holds. Skipped with the reason printed elsewhere.
"""
from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _skip(reason: str) -> None:
    print(f"SKIP reason: {reason}")
    pytest.skip(reason, allow_module_level=True)


try:
    import launch_testing
    import launch_testing.actions
    import launch_testing.asserts
    from launch import LaunchDescription
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
except ImportError as exc:
    _skip(f"launch_testing / launch not installed here ({exc}); they come with a ROS 2 install")
try:
    import launch_ros  # noqa: F401
except ImportError as exc:
    _skip(f"launch_ros not installed here ({exc}); it comes with a ROS 2 install")

from ament_env import child_env, make_prefix  # noqa: E402

# launch_ros finds lib/siamattn_ros/tracker_node through AMENT_PREFIX_PATH of this process.
os.environ.update(child_env(make_prefix(Path(tempfile.mkdtemp(prefix="siamattn_prefix_")))))


def _random_checkpoint() -> str:
    from siamattn_ros.testing.checkpoints import random_checkpoint

    return str(random_checkpoint(Path(tempfile.mkdtemp(prefix="siamattn_launch_")) / "mnv2_random.pth", seed=0))


@pytest.mark.launch_test
def generate_test_description():
    tracker = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "tracker.launch.py")),
        launch_arguments={"model": _random_checkpoint(), "device": "cpu", "namespace": "launch_testing",
                          "image_topic": "/launch_testing/image_raw", "rviz": "false"}.items())
    return LaunchDescription([tracker, launch_testing.actions.ReadyToTest()])


class TestTrackerLaunch(unittest.TestCase):
    def test_node_reports_ready_with_resolved_topics(self, proc_output):
        proc_output.assertWaitFor("input=/launch_testing/image_raw", timeout=120)
        proc_output.assertWaitFor("output=/launch_testing/track/result", timeout=10)


@launch_testing.post_shutdown_test()
class TestTrackerShutdown(unittest.TestCase):
    def test_exit_code_is_clean(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
