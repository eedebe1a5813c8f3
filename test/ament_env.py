"""The ROS 2 command line and an ament prefix of THIS checkout, for tests that start `ros2 launch` / `ros2 run`.

The tests do not rely on whatever prefix the environment has for siamattn_ros (the shared virtualenv may serve
another checkout, and a half-installed prefix would only satisfy `get_package_share_directory`): they build a
throw-away prefix with scripts/ament_prefix.sh, exactly as `make test` lays out the virtualenv, and put it first on
AMENT_PREFIX_PATH for the child process.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

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
    env = dict(os.environ)
    if prefix is not None:
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(
            [str(prefix)] + ([env["AMENT_PREFIX_PATH"]] if env.get("AMENT_PREFIX_PATH") else []))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update({"PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0"}, **extra)
    return env


class Launched:
    """A ROS command line (`ros2 launch ...`, `ros2 run ...`) in its own process group, output in a log file.

    stop() sends SIGINT to the whole group, as a terminal's Ctrl-C, launch and `timeout` do, and returns the exit
    code (SIGKILL after `timeout` s, so nothing outlives the test)."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv, self.log_path = argv, log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO),
                                         start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log():
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the last lines reach the file
                return text in self.log()
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        return self.proc.wait(10)

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the group (e.g. a node a crashed launch left behind)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def group_alive(self) -> bool:
        """True while any process of the group still runs (the group id is the leader's pid)."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return any(_pgid(pid) == self.proc.pid for pid in _pids())


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pgid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
        state = text[text.rindex(")") + 2:].split()
        return -1 if state[0] == "Z" else int(state[2])
    except (OSError, ValueError, IndexError):
        return -1
