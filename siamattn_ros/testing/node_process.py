"""Run tracker_node in a child process (tests, the soak tool, replay and the demo): start, read its log, measure RSS,
stop.

The child gets its parameters through a params file (`params` over config/tracker.yaml), its own process group, and
is always stopped with SIGINT (clean shutdown), then SIGKILL if it does not exit, so no node outlives the test or
tool that started it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import yaml

from siamattn_ros.interface.names import NODE_NAME

REPO = Path(__file__).resolve().parents[2]


def _base_params() -> dict:
    """config/tracker.yaml's parameters in a source checkout; {} elsewhere (the node's defaults equal them)."""
    path = REPO / "config" / "tracker.yaml"
    if not path.is_file():
        return {}
    return dict(yaml.safe_load(path.read_text())["/**"]["ros__parameters"])


class NodeProcess:
    """`python -m siamattn_ros.ros.tracker_node` with `params` (merged over config/tracker.yaml) and `remaps`.

    log_path: where the node's console output goes (default: a temporary folder removed by cleanup()).
    """

    def __init__(self, params: Optional[Mapping[str, Any]] = None, remaps: Optional[Mapping[str, str]] = None,
                 env: Optional[Mapping[str, str]] = None, name: str = NODE_NAME, namespace: str = "",
                 log_path: Optional[Union[str, Path]] = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="siamattn_node_")
        base = _base_params()
        base.update(params or {})
        self.params_file = Path(self._dir.name) / "params.yaml"
        self.params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": base}}))
        self.log_path = Path(log_path) if log_path is not None else Path(self._dir.name) / "node.log"
        self.cmd = [sys.executable, "-m", "siamattn_ros.ros.tracker_node", "--ros-args",
                    "--params-file", str(self.params_file), "-r", f"__node:={name}"]
        if namespace:
            self.cmd += ["-r", f"__ns:=/{namespace.strip('/')}"]
        for src, dst in (remaps or {}).items():
            self.cmd += ["-r", f"{src}:={dst}"]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
            "PYTHONUNBUFFERED": "1", "RCUTILS_COLORIZED_OUTPUT": "0", **(env or {})}
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "NodeProcess":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
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
                return text in self.log()
            time.sleep(0.05)
        return False

    def rss_kib(self) -> int:
        """Resident set size of the node process (Linux /proc), KiB."""
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

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGINT (clean shutdown), then SIGKILL to the whole process group; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGINT)
            if self.wait(timeout) is None:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:  # already gone
            pass

    def cleanup(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> "NodeProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()
