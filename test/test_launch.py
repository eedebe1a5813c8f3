"""launch/tracker.launch.py: what it names exists and is installed (everywhere); its description builds and the
node it starts comes up (where launch / launch_ros / ros2cli and an installed siamattn_ros are available)."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "tracker.launch.py"


def load_launch_module():
    spec = importlib.util.spec_from_file_location("siamattn_tracker_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # launch imports live inside its functions: this works without launch
    return module


def cmake_installs() -> tuple[set[str], set[str]]:
    """(programs installed to lib/${PROJECT_NAME}, directories installed to share/${PROJECT_NAME}) per CMakeLists."""
    text = re.sub(r"#[^\n]*", "", (REPO / "CMakeLists.txt").read_text())
    programs, dirs = set(), set()
    for body in re.findall(r"install\s*\((.*?)\)", text, flags=re.S):
        words = body.split()
        if not words or "DESTINATION" not in words:
            continue
        dest = words[words.index("DESTINATION") + 1]
        items = words[1:words.index("DESTINATION")]
        if words[0] == "PROGRAMS" and dest == "lib/${PROJECT_NAME}":
            programs.update(items)
        if words[0] == "DIRECTORY" and dest == "share/${PROJECT_NAME}":
            dirs.update(i.rstrip("/") for i in items)
    return programs, dirs


def test_launch_file_names_files_that_exist_and_are_installed():
    mod = load_launch_module()
    programs, dirs = cmake_installs()
    assert f"scripts/{mod.EXECUTABLE}" in programs
    assert (REPO / "scripts" / mod.EXECUTABLE).is_file() and os.access(REPO / "scripts" / mod.EXECUTABLE, os.X_OK)
    assert "launch" in dirs and LAUNCH_FILE.is_file()
    for rel in (mod.PARAMS_FILE, mod.RVIZ_CONFIG):
        assert rel[0] in dirs, f"{rel[0]}/ is not installed to share/siamattn_ros"
        assert (REPO.joinpath(*rel)).is_file(), f"{'/'.join(rel)} missing"
    assert set(mod.ARGUMENTS) == {"image_topic", "model", "checkpoint", "device", "params_file", "namespace", "rviz"}


def test_select_roi_executable_is_installed():
    programs, _ = cmake_installs()
    assert "scripts/select_roi" in programs and os.access(REPO / "scripts" / "select_roi", os.X_OK)


def test_rviz_config_shows_the_overlay_topic():
    mod = load_launch_module()
    cfg = yaml.safe_load(REPO.joinpath(*mod.RVIZ_CONFIG).read_text())
    displays = cfg["Visualization Manager"]["Displays"]
    images = {d["Topic"]["Value"]: d for d in displays if d["Class"] == "rviz_default_plugins/Image"}
    assert images["/track/overlay"]["Enabled"] is True
    assert {f"/{t}" for t in mod.RVIZ_TOPICS} <= set(images)


def test_params_file_is_a_ros_parameters_file_for_any_node_name():
    data = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())
    assert list(data) == ["/**"] and "ros__parameters" in data["/**"]


# ---------------------------------------------------------------- where launch / launch_ros are installed
def _import_launch():
    try:
        import launch  # noqa: F401
        import launch_ros  # noqa: F401
    except ImportError as exc:
        print(f"SKIP reason: launch/launch_ros not importable here ({exc}); they come with a ROS 2 install")
        pytest.skip(f"launch/launch_ros not installed ({exc})")


def test_launch_description_declares_the_arguments_and_builds_the_node():
    _import_launch()
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch_ros.actions import Node

    mod = load_launch_module()
    ld = mod.generate_launch_description()
    declared = [e for e in ld.entities if isinstance(e, DeclareLaunchArgument)]
    assert {d.name for d in declared} == set(mod.ARGUMENTS)
    context = LaunchContext()
    context.launch_configurations.update({
        "image_topic": "/cam/image_raw", "model": "/tmp/m.pth", "checkpoint": "", "device": "cpu",
        "params_file": str(REPO / "config" / "tracker.yaml"), "namespace": "cam1", "rviz": "false"})
    opaque = [e for e in ld.entities if isinstance(e, OpaqueFunction)][0]
    actions = opaque.execute(context)
    nodes = [a for a in actions if isinstance(a, Node)]

    def text(value):  # launch_ros keeps these as given (str) or as substitutions, depending on the version
        from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

        return value if isinstance(value, str) else perform_substitutions(
            context, normalize_to_list_of_substitutions(value))

    assert len(nodes) == 1
    assert text(nodes[0].node_package) == "siamattn_ros" and text(nodes[0].node_executable) == "tracker_node"


def test_ros2_launch_starts_a_working_node(tmp_path):
    _import_launch()
    if shutil.which("ros2") is None:
        pytest.skip("ros2 command line not installed")
    try:
        from ament_index_python.packages import get_package_share_directory

        get_package_share_directory("siamattn_ros")
    except Exception as exc:
        pytest.skip(f"siamattn_ros is not installed in an ament prefix (colcon build + source install): {exc}")
    torch = pytest.importorskip("torch")
    from siamattn_ros.testing.checkpoints import random_checkpoint

    ckpt = random_checkpoint(tmp_path / "mnv2_random.pth", seed=0)
    proc = subprocess.Popen(["ros2", "launch", "siamattn_ros", "tracker.launch.py", f"model:={ckpt}",
                             "device:=cpu", "namespace:=launch_test", "image_topic:=/launch_test/image_raw"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    # The read loop below blocks on the pipe: a watchdog kills the launch if it never prints "ready:".
    watchdog = threading.Timer(120.0, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "ready:" in line or len(lines) > 400:
                break
        text = "".join(lines)
        assert "ready:" in text and "input=/launch_test/image_raw" in text, text
        assert "output=/launch_test/track/result" in text, text
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
