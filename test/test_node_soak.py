"""The soak tool runs end to end (short here; long runs are for the command line, see docs/ROS_NODE.md)."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
pytest.importorskip("torch", reason="torch is not installed")

from siamattn_ros.tools import soak  # noqa: E402


def test_short_soak_run_reports_memory_and_keeps_the_node_alive(tmp_path, capsys):
    summary = soak.run(seconds=4, rate=30, width=160, height=120, model=None, device="cpu", threads=1,
                       sample=1.0, reinit=1.5, warmup_fraction=0.3)
    out = capsys.readouterr().out
    assert "rss_MiB" in out and "summary:" in out
    assert summary["node_alive_at_end"] and summary["node_exit_code"] == 0 and summary["node_errors"] == 0
    assert summary["published"] > 60 and 0 < summary["results"] <= summary["published"]
    assert summary["inits_seen"] >= 2  # the first init and at least one re-init on a frame from a second ago
    assert 100 < summary["rss_end_mib"] < 8000 and summary["rss_max_mib"] >= summary["rss_end_mib"]
