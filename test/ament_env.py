"""The ROS 2 command line and an ament prefix of THIS checkout, for tests that start `ros2 launch` / `ros2 run`.

The tests do not rely on whatever prefix the environment has for siamattn_ros (the shared virtualenv may serve
another checkout, and a half-installed prefix would only satisfy `get_package_share_directory`): they build a
throw-away prefix with scripts/ament_prefix.sh, exactly as `make test` lays out the virtualenv, and put it first on
AMENT_PREFIX_PATH for the child process.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from siamattn_ros.testing.node_process import ChildProcess, child_env as testing_child_env

REPO = Path(__file__).resolve().parents[1]


def require(*modules: str) -> None:
    """Skip (with the reason printed) unless every module imports; they come with a ROS 2 install."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            reason = f"{name} is not installed here; it comes with a ROS 2 install (or ../shared/ros-overlay)"
            print(f"SKIP reason: {reason}")
            pytest.skip(reason)


def ros2_command() -> list[str]:
    """argv prefix running the ros2 CLI with this interpreter (the overlay's `ros2` is a shell function, and an
    installed `ros2` script may name another Python)."""
    require("ros2cli")
    return [sys.executable, "-c", "import sys; from ros2cli.cli import main; sys.exit(main())"]


def make_prefix(path: Path) -> Path:
    """An ament prefix at `path` whose siamattn_ros share/ and lib/ run this checkout (scripts/ament_prefix.sh)."""
    subprocess.run(["bash", str(REPO / "scripts" / "ament_prefix.sh"), str(path), sys.executable], check=True,
                   stdout=subprocess.DEVNULL)
    return path


def child_env(prefix: Optional[Path] = None, **extra: str) -> dict[str, str]:
    """os.environ for a ROS child process: `prefix` first on AMENT_PREFIX_PATH, this checkout first on PYTHONPATH,
    unbuffered and uncoloured output (so the tests can read the log lines)."""
    if prefix is not None:
        extra["AMENT_PREFIX_PATH"] = os.pathsep.join(
            [str(prefix)] + ([os.environ["AMENT_PREFIX_PATH"]] if os.environ.get("AMENT_PREFIX_PATH") else []))
    return testing_child_env(**extra)


def launched(argv: list[str], env: dict[str, str], log_path: Path) -> ChildProcess:
    """A ROS command line (`ros2 launch ...`, `ros2 run ...`) started in its own process group, output in
    `log_path`; stop() sends SIGINT to the whole group, as a terminal's Ctrl-C, launch and `timeout` do."""
    return ChildProcess(argv, env=env, log_path=log_path, cwd=REPO).start()
