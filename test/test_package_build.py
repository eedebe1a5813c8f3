"""The ROS package build (CMakeLists.txt) installs a complete package: messages, Python package, executables, launch,
config, rviz and model files — what `colcon build` does on a real ROS 2 machine, here against the PyPI ROS wheels."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
PACKAGE_PARTS = ["CMakeLists.txt", "package.xml", "msg", "srv", "siamattn_ros", "scripts", "launch", "config", "models", "recordings"]


@pytest.fixture(scope="module")
def install_prefix(tmp_path_factory) -> Path:
    if shutil.which("cmake") is None:
        pytest.fail("cmake is required to build the messages (apt-get install cmake)")
    if not (VENV / "share" / "rosidl_default_generators").is_dir():
        pytest.skip(f"rosidl generators are not installed in {VENV} (run `make test`, which installs them)")
    root = tmp_path_factory.mktemp("colcon")
    src = root / "src" / "siamattn_ros"
    src.mkdir(parents=True)
    for part in PACKAGE_PARTS:
        path = REPO / part
        assert path.exists(), f"{part} is missing from the package"
        if path.is_dir():
            shutil.copytree(path, src / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / part)
    env = dict(os.environ, AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV), PATH=f"{VENV}/bin:{os.environ['PATH']}")
    prefix = root / "install"
    steps = [
        ["cmake", "-S", str(src), "-B", str(root / "build"), f"-DCMAKE_INSTALL_PREFIX={prefix}",
         f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        ["cmake", "--build", str(root / "build"), "-j2"],
        ["cmake", "--install", str(root / "build")],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return prefix


def _site_packages(prefix: Path) -> Path:
    rel = Path(sysconfig.get_paths()["purelib"]).relative_to(sys.prefix)
    return prefix / rel


def test_executables_installed(install_prefix: Path):
    for exe in ("tracker_node", "select_roi"):
        path = install_prefix / "lib" / "siamattn_ros" / exe
        assert path.is_file(), f"{path} not installed"
        assert os.access(path, os.X_OK), f"{path} is not executable"


def test_share_files_installed(install_prefix: Path):
    share = install_prefix / "share" / "siamattn_ros"
    for rel in ("package.xml", "launch/tracker.launch.py", "config/tracker.yaml", "config/tracker.rviz",
                "msg/InitBox.msg", "msg/TrackResult.msg", "srv/InitTrack.srv", "models/siamattn_mnv2_embedded.pth",
                "recordings/vtest_woman/metadata.yaml"):
        assert (share / rel).is_file(), f"{share / rel} not installed"
    # The package is registered in the ament index, which is how ros2 launch / ros2 run find it.
    assert (install_prefix / "share" / "ament_index" / "resource_index" / "packages" / "siamattn_ros").is_file()


def test_installed_python_package_imports_with_messages(install_prefix: Path):
    site = _site_packages(install_prefix)
    assert (site / "siamattn_ros" / "msg").is_dir() and (site / "siamattn_ros" / "tracker").is_dir()
    code = ("import siamattn_ros, siamattn_ros.tracker.result as r; from siamattn_ros.msg import TrackResult, InitBox;"
            "from siamattn_ros.srv import InitTrack; assert TrackResult.LOST == r.TrackState.LOST;"
            "import siamattn_ros.msg, siamattn_ros.tracker; print(siamattn_ros.__file__);"
            "print(siamattn_ros.msg.__file__); print(siamattn_ros.tracker.__file__)")
    env = dict(os.environ, PYTHONPATH=str(site))
    # PYTHONPATH precedes the venv's site-packages and the checkout's .pth entry, as a sourced ROS workspace does.
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for line in proc.stdout.split():
        assert line.startswith(str(site)), f"imported {line}, not the installed copy"
