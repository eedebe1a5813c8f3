"""Child processes for tests and tools: `ChildProcess` (any command line, e.g. `ros2 launch ...`) and `NodeProcess`
(tracker_node itself: the tests, the soak tool, replay and the demo). Start, read the log, measure RSS, stop.

Each child runs in its own process group with its output in a log file, and is always stopped with SIGINT to the
whole group (clean shutdown, as a terminal's Ctrl-C), then SIGKILL if it does not exit, so nothing outlives the test
or tool that started it. NodeProcess passes the node's parameters through a params file (`params` over
config/tracker.yaml).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import yaml

from siamattn_ros.interface.names import NODE_NAME

REPO = Path(__file__).resolve().parents[2]


def _base_params() -> dict:
    """config/tracker.yaml's parameters in a source checkout; {} elsewhere (the node's defaults equal them)."""
    path = REPO / "config" / "tracker.yaml"
    if not path.is_file():
        return {}
    return dict(yaml.safe_load(path.read_text())["/**"]["ros__parameters"])


class ChildProcess:
    """`argv` in its own process group, stdout + stderr in `log_path` (default: a temporary folder removed by
    cleanup()); env None inherits this process's environment."""

    def __init__(self, argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
                 log_path: Optional[Union[str, Path]] = None, cwd: Optional[Union[str, Path]] = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="siamattn_proc_")
        self.cmd = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log_path = Path(log_path) if log_path is not None else Path(self._dir.name) / "process.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "ChildProcess":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         cwd=None if self.cwd is None else str(self.cwd), start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def wait_for_log(self, text: str, timeout: float) -> bool:
        """True once `text` appears in the log; False on timeout or when the process exits first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log():
                return True
            if not self.alive():
                time.sleep(0.2)  # let the last lines reach the file
                return text in self.log()
            time.sleep(0.05)
        return False

    def rss_kib(self) -> int:
        """Resident set size of the process (Linux /proc), KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no VmRSS in /proc/{self.pid}/status")

    def wait(self, timeout: float) -> Optional[int]:
        """Exit code, or None if still running after timeout."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        """SIGINT (clean shutdown), then SIGKILL to the whole process group; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGINT)
            if self.wait(timeout) is None:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the group (e.g. a node a crashed launch left behind)."""
        self._signal_group(signal.SIGKILL)

    def group_alive(self) -> bool:
        """True while any process of the group still runs (the group id is the leader's pid)."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return any(_pgid(pid) == self.pid for pid in _pids())

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:  # already gone
            pass

    def cleanup(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> "ChildProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pgid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
        fields = text[text.rindex(")") + 2:].split()
        return -1 if fields[0] == "Z" else int(fields[2])  # a zombie has exited
    except (OSError, ValueError, IndexError):
        return -1


class NodeProcess(ChildProcess):
    """`python -m siamattn_ros.ros.tracker_node` with `params` (merged over config/tracker.yaml) and `remaps`."""

    def __init__(self, params: Optional[Mapping[str, Any]] = None, remaps: Optional[Mapping[str, str]] = None,
                 env: Optional[Mapping[str, str]] = None, name: str = NODE_NAME, namespace: str = "",
                 log_path: Optional[Union[str, Path]] = None) -> None:
        super().__init__([], log_path=log_path)
        base = _base_params()
        base.update(params or {})
        self.params_file = Path(self._dir.name) / "params.yaml"
        self.params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": base}}))
        self.cmd = [sys.executable, "-m", "siamattn_ros.ros.tracker_node", "--ros-args",
                    "--params-file", str(self.params_file), "-r", f"__node:={name}"]
        if namespace:
            self.cmd += ["-r", f"__ns:=/{namespace.strip('/')}"]
        for src, dst in (remaps or {}).items():
            self.cmd += ["-r", f"{src}:={dst}"]
        self.env = child_env(**(env or {}))

    def start(self) -> "NodeProcess":
        super().start()
        return self


def child_env(**extra: str) -> dict[str, str]:
    """os.environ for a child that runs this checkout: the repository first on PYTHONPATH, unbuffered and uncoloured
    output (so the log can be read line by line), plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update({"PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0"}, **extra)
    return env
