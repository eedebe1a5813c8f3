"""The bundled recordings: layout, size, ground truth (in the bag and beside it), and regeneration from sources."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from siamattn_ros.replay.bag import bag_topics, deserialize, read_messages
from siamattn_ros.interface.metrics import auc, box_iou, success_curve
from siamattn_ros.replay.recording import (IMAGE_TOPIC, INFO_TOPIC, RECORDINGS_DIR, TRUTH_TOPIC, bundled_recordings,
                                           load_recording)
from siamattn_ros.tools import make_recordings

REPO = Path(__file__).resolve().parents[1]
MAX_BAG_BYTES = 6_000_000
NAMES = ("vtest_woman", "synth_butterfly", "synth_reenter")
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def test_every_recipe_has_a_bundled_bag_and_nothing_else_is_bundled():
    assert sorted(p.name for p in bundled_recordings()) == sorted(make_recordings.RECIPES) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_bag_layout_size_and_truth_per_frame(name):
    bag = RECORDINGS_DIR / name
    size = sum(f.stat().st_size for f in bag.iterdir())
    assert size < MAX_BAG_BYTES, f"{name} is {size} bytes"
    assert bag_topics(bag) == {IMAGE_TOPIC: "sensor_msgs/msg/CompressedImage",
                               TRUTH_TOPIC: "geometry_msgs/msg/PolygonStamped", INFO_TOPIC: "std_msgs/msg/String"}
    images, truths = [], []
    for m in read_messages(bag):
        if m.topic == IMAGE_TOPIC:
            images.append(deserialize(m).header)
        elif m.topic == TRUTH_TOPIC:
            truths.append(deserialize(m))
    # One truth message per frame, with the frame's header (stamp and frame_id) exactly.
    assert [(h.stamp.sec, h.stamp.nanosec, h.frame_id) for h in images] == \
           [(t.header.stamp.sec, t.header.stamp.nanosec, t.header.frame_id) for t in truths]
    assert len(set((h.stamp.sec, h.stamp.nanosec) for h in images)) == len(images)
    for t in truths:  # 4 corners of an axis-aligned box, or none when not visible
        pts = [(p.x, p.y) for p in t.polygon.points]
        assert len(pts) in (0, 4)
        if pts:
            assert pts[0][1] == pts[1][1] and pts[1][0] == pts[2][0] and pts[2][1] == pts[3][1]
    rec = load_recording(name)
    assert rec.info["name"] == name and rec.info["frames"] == len(rec) == len(images)
    assert "Apache-2.0" in rec.info["licence"]
    img = rec.frames[0].decode()
    assert img.shape == (rec.info["height"], rec.info["width"], 3)
    # The GOT-10k file beside the bag says the same.
    side = np.genfromtxt(RECORDINGS_DIR / f"{name}.groundtruth.txt", delimiter=",")
    np.testing.assert_allclose(side, rec.truth, atol=0.051, equal_nan=True)
    ok = rec.visible
    assert (rec.truth[ok, 0] >= -0.5).all() and (rec.truth[ok, 0] + rec.truth[ok, 2] <= img.shape[1] + 0.5).all()
    assert (rec.truth[ok, 1] >= -0.5).all() and (rec.truth[ok, 1] + rec.truth[ok, 3] <= img.shape[0] + 0.5).all()


def test_vtest_truth_is_the_hand_annotation_at_half_resolution():
    rec = load_recording("vtest_woman")
    ann = np.loadtxt(REPO / "data/annotations/vtest_woman/groundtruth.txt", delimiter=",")
    assert len(ann) == len(rec) == 200
    np.testing.assert_allclose(rec.truth, ann * 0.5, atol=0.051)
    assert rec.visible.all()


@pytest.mark.parametrize("name", ["synth_butterfly", "synth_reenter"])
def test_synth_target_leaves_and_reenters(name):
    rec = load_recording(name)
    vis = rec.visible
    gone = np.nonzero(~vis)[0]
    assert vis[:10].all() and vis[-10:].all() and gone.size >= 10
    # One contiguous absence: it leaves once and comes back.
    assert gone.max() - gone.min() + 1 == gone.size
    assert rec.info["out_of_view_frames"] == [int(gone.min()), int(gone.max())]


def test_annotations_regenerate_from_keyframes():
    d = REPO / "data/annotations/vtest_woman"
    first, last = make_recordings._frame_range(d)
    boxes = make_recordings.interpolate_keyframes(make_recordings.read_keyframes(d / "keyframes.txt"), first, last)
    np.testing.assert_allclose(boxes, np.loadtxt(d / "groundtruth.txt", delimiter=","), atol=0.051)
    with pytest.raises(ValueError, match="do not cover"):
        make_recordings.interpolate_keyframes(np.array([[10, 0, 0, 1, 1], [20, 0, 0, 1, 1]]), 5, 20)


def test_keyframes_with_absent_target(tmp_path):
    kf = tmp_path / "keyframes.txt"
    kf.write_text("# frame,x,y,w,h\n0,0,0,10,10\n2,4,0,10,10\n3,absent\n5,absent\n6,6,6,10,10\n8,8,8,12,12\n")
    k = make_recordings.read_keyframes(kf)
    assert k.shape == (6, 5) and np.isnan(k[2, 1:]).all() and k[2, 0] == 3
    boxes = make_recordings.interpolate_keyframes(k, 0, 8)
    np.testing.assert_allclose(boxes[[0, 1, 2, 6, 7, 8]], [[0, 0, 10, 10], [2, 0, 10, 10], [4, 0, 10, 10],
                                                            [6, 6, 10, 10], [7, 7, 11, 11], [8, 8, 12, 12]])
    # Frames 3..5 (absent key frames and between them) are NaN; 2 and 6 (present key frames next to them) are not.
    assert np.isnan(boxes[3:6]).all()


@pytest.mark.skipif(not VTEST.is_file(), reason="opencv-doc not installed (apt-get install opencv-doc)")
@pytest.mark.parametrize("name", NAMES)
def test_make_recordings_reproduces_the_bundled_bag(name, tmp_path):
    assert make_recordings.main([name, "--out", str(tmp_path)]) == 0
    new, old = load_recording(tmp_path / name), load_recording(name)
    np.testing.assert_array_equal(new.truth, old.truth)
    assert [f.stamp_ns for f in new.frames] == [f.stamp_ns for f in old.frames]
    for i in (0, len(old) // 2, len(old) - 1):
        a, b = new.frames[i].decode().astype(int), old.frames[i].decode().astype(int)
        assert np.abs(a - b).mean() < 1.0, f"frame {i} differs"
    info_new = {k: v for k, v in new.info.items()}
    assert info_new == old.info


def test_iou_and_success_on_hand_computed_boxes():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 1, 1]])
    iou = box_iou(a, b, missing_pred=np.nan)  # a missing prediction left unscored, as the replay scoring did
    np.testing.assert_allclose(iou[:3], [1.0, 50 / 150, 0.0])
    assert np.isnan(iou[3])
    curve = success_curve(iou)
    assert curve[0] == pytest.approx(2 / 3) and curve[-1] == 0.0  # IoU > 0 for 2 of 3; nothing > 1
    assert auc(np.array([1.0, 1.0])) == pytest.approx(20 / 21)
