"""Startup errors end tracker_node with one clear line and exit code 1 (no traceback)."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
pytest.importorskip("torch", reason="torch is not installed")

from siamattn_ros.testing.node_process import NodeProcess  # noqa: E402


@pytest.mark.parametrize("params,expected", [
    ({"model": "/nonexistent/dir/weights.pth"}, "model checkpoint '/nonexistent/dir/weights.pth' does not exist"),
    ({"model": "siamattn_mnv2", "device": "tpu"}, "unknown device 'tpu'"),
    ({"model": "siamattn_mnv2", "qos_reliability": "sometimes"}, "qos_reliability must be one of"),
])
def test_startup_error_is_one_line_and_exit_code_1(params, expected):
    with NodeProcess(params={"warmup": False, **params}) as proc:
        code = proc.wait(300)  # a loaded 2-core machine needs > 60 s to import torch + rclpy
        log = proc.log()
    assert code == 1, log
    assert expected in log
    assert "Traceback" not in log
    fatal = [line for line in log.splitlines() if "[FATAL]" in line]
    assert len(fatal) == 1 and "cannot start" in fatal[0], log
