"""The track CLI (CSV + overlay video) and draw_overlay, on a small synthetic clip with a saved checkpoint."""
from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from siamattn_ros.testing.checkpoints import random_checkpoint
from siamattn_ros.testing.frames import synthetic_sequence
from siamattn_ros.tools import track as track_cli
from siamattn_ros.tracker import TrackResult, TrackState
from siamattn_ros.tracker.mask import box_polygon
from siamattn_ros.tracker.overlay import draw_overlay


pytestmark = pytest.mark.usefixtures("single_thread")


def test_draw_overlay_draws_box_mask_and_text_without_touching_input():
    img = np.full((120, 160, 3), 100, np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 50:100] = 255
    box = np.array([50.0, 40.0, 50.0, 40.0])
    res = TrackResult(box_xywh=box, polygon=box_polygon(box), mask=mask, confidence=0.87,
                      state=TrackState.TRACKING, init_id=1, frames_since_init=3)
    out = draw_overlay(img, res)
    assert out.shape == img.shape and out.dtype == np.uint8 and (img == 100).all()
    assert (out[60, 75] != img[60, 75]).any()        # inside the mask: tinted
    assert (out[60, 50] != out[60, 75]).any() and (out[60, 50] != 100).any()  # left box edge: drawn
    assert (out[110, 5] == 100).all()                 # far away: untouched
    assert (out[:40, 50:110] != 100).any()            # label above the box
    lost = draw_overlay(img, TrackResult(box, box_polygon(box), None, 0.05, TrackState.LOST, 1, 9))
    assert (lost[60, 50] != out[60, 50]).any()        # state changes the colour
    with pytest.raises(ValueError, match="uint8"):
        draw_overlay(img.astype(np.float32), res)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """One of our checkpoints (random weights: the CLI's plumbing is under test, not tracking quality)."""
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "mnv2.pth", seed=0, pretrained=False)


def test_track_cli_writes_csv_and_overlay(tmp_path, checkpoint):
    frames, boxes, _ = synthetic_sequence()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames[:4]):
        cv2.imwrite(str(folder / f"{i:05d}.png"), f)
    ckpt = checkpoint
    x, y, w, h = boxes[0]
    out_csv, out_mp4 = tmp_path / "res.csv", tmp_path / "ov.mp4"
    rc = track_cli.main(["--images", str(folder), "--init", f"{x},{y},{w},{h}", "--model", str(ckpt),
                         "--out", str(out_csv), "--overlay", str(out_mp4)])
    assert rc == 0
    rows = list(csv.reader(open(out_csv)))
    assert rows[0] == ["frame", "x", "y", "w", "h", "score", "state"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3]
    np.testing.assert_allclose([float(v) for v in rows[1][1:5]], boxes[0])
    assert rows[1][6] == "INITIALIZING" and all(r[6] in TrackState.__members__ for r in rows[2:])
    for r in rows[2:]:
        bx, by, bw, bh = (float(v) for v in r[1:5])
        assert bx >= 0 and by >= 0 and bw > 0 and bh > 0 and bx + bw <= 320 and by + bh <= 240
        assert 0.0 <= float(r[5]) <= 1.0
    cap = cv2.VideoCapture(str(out_mp4))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 4


def test_track_cli_rejects_bad_init_box(tmp_path):
    with pytest.raises(SystemExit):
        track_cli.main(["--images", str(tmp_path), "--init", "1,2,3", "--out", str(tmp_path / "r.csv")])


def test_track_cli_reads_video_files(tmp_path, checkpoint):
    frames, boxes, _ = synthetic_sequence()
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for f in frames[:3]:
        writer.write(f)
    writer.release()
    x, y, w, h = boxes[0]
    out_csv = tmp_path / "res.csv"
    assert track_cli.main(["--images", str(video), "--init", f"{x},{y},{w},{h}", "--model", str(checkpoint),
                           "--no-mask", "--out", str(out_csv)]) == 0
    rows = list(csv.reader(open(out_csv)))
    assert len(rows) == 4 and rows[1][6] == "INITIALIZING"
