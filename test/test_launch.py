"""launch/tracker.launch.py, `ros2 launch` and `ros2 run`: what the launch file names exists and is installed
(everywhere); its description builds, and the node it starts tracks, follows its namespace, survives rviz:=true
without rviz2 and ends cleanly on SIGINT (where launch / launch_ros / ros2cli are installed: a ROS 2 install or
../shared/ros-overlay). The ROS tests run this checkout from a throw-away ament prefix (test/ament_env.py)."""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from ament_env import child_env, launched, make_prefix, require, ros2_command

from siamattn_ros.testing.node_process import ChildProcess

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
    assert set(mod.ARGUMENTS) == {"image_topic", "model", "checkpoint", "device", "params_file", "namespace", "rviz",
                                  "dds_profile", "depth", "depth_image_topic", "depth_info_topic"}
    assert (REPO.joinpath(*mod.DDS_PROFILE)).is_file() and mod.DDS_PROFILE[0] in dirs


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
    require("launch", "launch_ros")


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
        "params_file": str(REPO / "config" / "tracker.yaml"), "namespace": "cam1", "rviz": "false",
        "dds_profile": str(REPO / "config" / "fastdds_large_images.xml"), "depth": "false",
        "depth_image_topic": "", "depth_info_topic": ""})
    opaque = [e for e in ld.entities if isinstance(e, OpaqueFunction)][0]
    actions = opaque.execute(context)
    nodes = [a for a in actions if isinstance(a, Node)]

    def text(value):  # launch_ros keeps these as given (str) or as substitutions, depending on the version
        from launch.utilities import normalize_to_list_of_substitutions, perform_substitutions

        return value if isinstance(value, str) else perform_substitutions(
            context, normalize_to_list_of_substitutions(value))

    assert len(nodes) == 1
    assert text(nodes[0].node_package) == "siamattn_ros" and text(nodes[0].node_executable) == "tracker_node"
    env = {text(k): text(v) for k, v in (nodes[0].additional_env or [])}
    if not any(os.environ.get(v) for v in mod.DDS_PROFILE_VARS):  # the user's own profile would win
        assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(REPO / "config" / "fastdds_large_images.xml")


# ---------------------------------------------------------------- ros2 launch / ros2 run, as a user runs them
@pytest.fixture(scope="module")
def ros_cli(tmp_path_factory):
    """(ros2 argv prefix, child environment with this checkout's ament prefix first, a random checkpoint)."""
    require("launch", "launch_ros", "ros2cli", "ros2launch", "ros2run")
    pytest.importorskip("torch")
    from siamattn_ros.testing.checkpoints import random_checkpoint

    base = tmp_path_factory.mktemp("ros_cli")
    ckpt = random_checkpoint(base / "mnv2_random.pth", seed=0)
    return ros2_command(), child_env(make_prefix(base / "prefix")), ckpt


def _run(argv, env, tmp_path, name):
    return launched(argv, env, tmp_path / f"{name}.log")


def _stop_cleanly(proc: ChildProcess) -> str:
    """SIGINT to the process group (Ctrl-C); the command must exit 0 without a traceback and leave nothing running."""
    try:
        code = proc.stop()
        text = proc.log()
        assert code == 0, f"exit code {code} after SIGINT:\n{text[-4000:]}"
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-4000:]
        # Under launch: the node must exit within launch's SIGINT grace period (5 s), with code 0.
        assert "escalating to" not in text and "process has died" not in text, text[-4000:]
        assert not proc.group_alive(), f"processes left running after the command exited:\n{text[-2000:]}"
        return text
    finally:
        proc.kill_group()


def _track_on(image_topic: str, ns: str = "") -> None:
    """Publish frames on `image_topic`, init on one, and see TRACKING results from the node in `ns`."""
    require("rclpy")
    from siamattn_ros.msg import TrackResult
    from siamattn_ros.ros.messages import xywh_to_box
    from siamattn_ros.testing.frames import synthetic_frame
    from siamattn_ros.testing.ros_client import TrackerDriver, make_header

    driver = TrackerDriver(ns=ns, image_topic=image_topic)
    try:
        assert driver.wait_for_connection(60), f"no connection to the node on {image_topic}"
        image, box = synthetic_frame(0)
        first = driver.publish_and_wait(driver.image_msg(image, 1_000_000_000))
        assert first.state == TrackResult.STOPPED
        driver.publish_init(make_header(0), xywh_to_box(box))
        assert driver.wait_until(lambda: any(r.state == TrackResult.INITIALIZING for r in driver.results), 60)
        for i in range(1, 4):
            image, _ = synthetic_frame(i)
            res = driver.publish_and_wait(driver.image_msg(image, 1_000_000_000 + i * 33_000_000))
            assert res.state in (TrackResult.TRACKING, TrackResult.LOW_CONFIDENCE, TrackResult.LOST)
            assert res.frames_since_init == i
    finally:
        driver.close()


def test_ros2_launch_tracks_frames_on_image_topic_and_ends_cleanly_on_sigint(ros_cli, tmp_path):
    ros2, env, ckpt = ros_cli
    topic = f"/x_{uuid.uuid4().hex[:8]}"
    proc = _run(ros2 + ["launch", "siamattn_ros", "tracker.launch.py", f"model:={ckpt}", "device:=cpu",
                        f"image_topic:={topic}"], env, tmp_path, "launch")
    try:
        assert proc.wait_for_log("ready:", 180), proc.log()
        assert f"input={topic} " in proc.log() and "output=/track/result" in proc.log(), proc.log()
        _track_on(topic)
    finally:
        _stop_cleanly(proc)


def test_ros2_launch_namespace_moves_every_topic_and_rviz_without_rviz2_only_warns(ros_cli, tmp_path):
    ros2, env, ckpt = ros_cli
    ns = f"cam1_{uuid.uuid4().hex[:6]}"
    args = [f"model:={ckpt}", "device:=cpu", f"namespace:={ns}"]
    try:
        from ament_index_python.packages import get_package_prefix

        get_package_prefix("rviz2")
        rviz = False
        print("rviz2 is installed here: rviz:=true without rviz2 is not tried")
    except Exception:
        rviz = True
        args.append("rviz:=true")
    proc = _run(ros2 + ["launch", "siamattn_ros", "tracker.launch.py"] + args, env, tmp_path, "launch_ns")
    try:
        assert proc.wait_for_log("ready:", 180), proc.log()
        text = proc.log()
        assert f"input=/{ns}/image " in text and f"output=/{ns}/track/result" in text, text
        if rviz:
            assert "rviz2 is not installed" in text, text
        _track_on(f"/{ns}/image", ns=ns)
    finally:
        _stop_cleanly(proc)


def test_ros2_run_starts_the_node_and_ends_cleanly_on_sigint(ros_cli, tmp_path):
    ros2, env, ckpt = ros_cli
    proc = _run(ros2 + ["run", "siamattn_ros", "tracker_node", "--ros-args", "-p", f"model:={ckpt}",
                        "-p", "device:=cpu", "-r", "__ns:=/run_test"], env, tmp_path, "run")
    try:
        assert proc.wait_for_log("ready:", 180), proc.log()
        assert "input=/run_test/image " in proc.log(), proc.log()
    finally:
        _stop_cleanly(proc)


def test_ros2_run_finds_select_roi(ros_cli, tmp_path):
    ros2, env, _ = ros_cli
    import subprocess

    out = subprocess.run(ros2 + ["pkg", "executables", "siamattn_ros"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) >= {"siamattn_ros", "tracker_node", "select_roi"}, out.stdout
    help_out = subprocess.run(ros2 + ["run", "siamattn_ros", "select_roi", "--help"], env=env, capture_output=True,
                              text=True, timeout=120)
    assert help_out.returncode == 0 and "usage" in help_out.stdout.lower(), help_out.stdout + help_out.stderr


def test_the_test_environment_is_a_complete_ament_prefix():
    """`make test` makes its virtualenv an ament prefix for siamattn_ros (scripts/build_msgs.sh); check what
    `ros2 launch` / `ros2 run` need is there and runs a checkout of this package."""
    prefix = Path(sys.prefix)
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / "siamattn_ros"
    if not marker.exists():
        reason = f"{prefix} is not the virtualenv built by `make test` (no ament index entry for siamattn_ros)"
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    share = prefix / "share" / "siamattn_ros"
    mod = load_launch_module()
    assert (share / "launch" / "tracker.launch.py").is_file()
    assert (share.joinpath(*mod.PARAMS_FILE)).is_file() and (share.joinpath(*mod.RVIZ_CONFIG)).is_file()
    assert (share / "package.xml").is_file() and (share / "models").is_dir() and (share / "recordings").is_dir()
    for exe in ("tracker_node", "select_roi"):
        path = prefix / "lib" / "siamattn_ros" / exe
        assert path.is_file() and os.access(path, os.X_OK), path
        checkout = re.search(r'sys\.path\.insert\(0, "([^"]+)"\)', path.read_text()).group(1)
        assert (Path(checkout) / "siamattn_ros" / "ros" / "tracker_node.py").is_file()
