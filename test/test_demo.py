"""`python -m siamattn_ros.tools.demo` (what `make demo` runs), as a user runs it."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[1]


def _demo(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siamattn_ros.tools.demo", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


def test_demo_without_the_model_says_so_and_fails(tmp_path):
    missing = tmp_path / "no_such_model.pth"
    proc = _demo("--model", str(missing), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert f"{missing} does not exist" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_demo_writes_video_plot_and_table(tmp_path):
    from siamattn_ros.testing.checkpoints import random_checkpoint

    ckpt = random_checkpoint(tmp_path / "random_siamattn_mnv2.pth", seed=7)
    out = tmp_path / "demo_output"
    n = 12
    proc = _demo("--model", str(ckpt), "--out", str(out), "--max-frames", str(n))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for key in ("frames tracked", "FPS", "mean IoU", "overlay video", "success plot"):
        assert key in proc.stdout
    assert f"frames tracked     {n - 1} " in proc.stdout
    video = cv2.VideoCapture(str(out / "vtest_woman_overlay.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    ok, frame = video.read()
    assert ok and frame.shape == (2 * 288 + 46, 2 * 384, 3)
    plot = cv2.imread(str(out / "vtest_woman_success.png"))
    assert plot is not None and plot.shape[0] > 200
    rows = list(csv.DictReader(open(out / "vtest_woman_results.csv")))
    assert [int(r["frame"]) for r in rows] == list(range(n))
    assert rows[0]["state"] == "INITIALIZING" and all(r["state"] != "none" for r in rows)
    assert "ready" in (out / "vtest_woman_node.log").read_text()
