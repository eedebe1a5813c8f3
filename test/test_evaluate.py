"""Evaluation metrics on hand-computed cases, and the evaluate command on a small generated sequence."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from siamattn_ros.data import sources
from siamattn_ros.interface import metrics

NAN = np.nan


def test_box_iou_hand_cases():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [NAN, NAN, NAN, NAN]], float)
    pred = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [NAN, NAN, NAN, NAN], [1, 1, 2, 2]], float)
    iou = metrics.box_iou(pred, gt)
    np.testing.assert_allclose(iou[:3], [1.0, 50 / 150, 0.0])
    assert np.isnan(iou[3])
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        metrics.box_iou(pred[:3], gt)


def test_centre_errors():
    gt = np.array([[0, 0, 10, 20]], float)
    pred = np.array([[3, 4, 10, 20]], float)
    assert metrics.centre_error(pred, gt)[0] == pytest.approx(5.0)
    assert metrics.centre_error(pred, gt, normalised=True)[0] == pytest.approx(np.hypot(0.3, 0.2))
    assert np.isinf(metrics.centre_error(np.full((1, 4), NAN), gt)[0])


def test_curves_and_sequence_score():
    gt = np.array([[0, 0, 10, 10]] * 5, float)
    gt[3] = NAN  # absent: not scored
    pred = gt.copy()
    pred[3] = [50, 50, 10, 10]
    pred[2] = [5, 0, 10, 10]  # IoU 1/3, centre error 5
    pred[4] = [30, 0, 10, 10]  # IoU 0, error 30
    s = metrics.score_sequence(pred, gt)  # frame 0 skipped -> frames 1, 2, 4 scored
    assert s.frames_scored == 3
    # success(t) for IoUs {1, 1/3, 0}: t < 1/3 -> 2/3 (t = 0 counts IoU > 0), 1/3 <= t < 1 -> 1/3, t = 1 -> 0.
    ts = metrics.SUCCESS_THRESHOLDS
    expected = np.where(ts < 1 / 3, 2 / 3, np.where(ts < 1.0, 1 / 3, 0.0))
    np.testing.assert_allclose(s.success, expected)
    assert s.success_auc == pytest.approx(expected.mean())
    assert s.precision_20 == pytest.approx(2 / 3)
    assert np.isnan(s.mask_iou)


def test_mask_iou():
    a = np.zeros((4, 4), np.uint8)
    a[:2] = 255
    b = np.zeros((4, 4), np.uint8)
    b[1:3] = 1
    assert metrics.mask_iou(a, b) == pytest.approx(4 / 12)
    assert metrics.mask_iou(None, b) == 0.0
    gt = np.array([[0, 0, 2, 2]] * 2, float)
    s = metrics.score_sequence(gt, gt, [None, a], [b, b])
    assert s.mask_iou == pytest.approx(4 / 12) and s.success_auc == pytest.approx(20 / 21)


@pytest.mark.skipif(not sources.available(), reason=f"opencv-doc data not installed at {sources.OPENCV_DATA}")
def test_evaluate_command_on_generated_sequence(tmp_path):
    from siamattn_ros.data import SequenceSpec, make_sequence, write_sequence
    from siamattn_ros.testing.checkpoints import TINY_MODEL, random_checkpoint
    from siamattn_ros.tools import evaluate

    seq = make_sequence(SequenceSpec(num_frames=8, width=200, height=150, object_size=(40.0, 60.0)), 21)
    write_sequence(seq, tmp_path / "seqs" / "s21")
    ckpt = random_checkpoint(tmp_path / "tiny_mnv2.pth", seed=0, model=TINY_MODEL)
    out = tmp_path / "res"
    rc = evaluate.main(["--sequences", str(tmp_path / "seqs"), "--trackers", "siamattn,csrt,kcf",
                        "--model", str(ckpt), "--out", str(out), "--threads", "1"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res) == {"siamattn", "csrt", "kcf"}
    for r in res.values():
        assert 0.0 <= r["success_auc"] <= 1.0 and r["frames"] == 8 and r["fps"] > 0
    assert 0.0 <= res["siamattn"]["mask_iou"] <= 1.0  # the sequence has masks; SiamAttn produces them
    assert (out / "success.png").stat().st_size > 0 and (out / "precision.png").stat().st_size > 0
    table = (out / "summary.md").read_text()
    assert "| csrt |" in table and "| siamattn |" in table
    assert np.loadtxt(out / "csrt" / "s21.txt", delimiter=",").shape == (8, 4)
    # Failure-detection figures: per-frame confidence/state files, pooled AUROC, >4x runs, leave-view events.
    st = np.loadtxt(out / "siamattn" / "s21_state.txt", delimiter=",")
    assert st.shape == (8, 2) and ((st[1:, 0] >= 0) & (st[1:, 0] <= 1)).all() and st[0, 1] == 0  # INITIALIZING
    for r in res.values():
        assert 0 <= r["max_oversize_run"] <= 7 and r["max_oversize_run_sequence"] == "s21"
        assert r["auroc_on_frames"] + r["auroc_off_frames"] <= 7
        assert np.isnan(r["failure_auroc"]) or 0.0 <= r["failure_auroc"] <= 1.0
        assert set(r["per_sequence"]) == {"s21"}
    assert "failure AUROC" in table and "| s21 | " in table


def test_auroc_hand_cases():
    assert metrics.auroc([3, 2], [1]) == 1.0
    assert metrics.auroc([1], [2, 3]) == 0.0
    assert metrics.auroc([1, 1], [1]) == 0.5  # ties count one half
    # Pairs (pos, neg): (.9,.5) (.9,.1) (.4,.5) (.4,.1) -> 3 of 4 ordered correctly.
    assert metrics.auroc([0.9, 0.4], [0.5, 0.1]) == pytest.approx(0.75)
    # A constant score (e.g. an OpenCV tracker that never reports failure) separates nothing.
    assert metrics.auroc([1, 1, 1], [1, 1]) == 0.5
    assert np.isnan(metrics.auroc([], [0.3]))


def test_failure_labels_and_failure_auroc():
    iou = np.array([1.0, 0.6, 0.3, 0.1, NAN, 0.5])
    vis = np.array([True, True, True, True, False, True])
    lab = metrics.failure_labels(iou, vis)
    # init frame left out; 0.3 is neither on nor off target; absent and IoU < 0.2 are failures; 0.5 is on target.
    np.testing.assert_array_equal(lab, [-1, 1, -1, 0, 0, 1])
    conf = np.array([0.99, 0.8, 0.9, 0.7, 0.95, 0.6])
    # positives {0.8, 0.6} vs negatives {0.7, 0.95}: (0.8>0.7) only -> 1 of 4.
    assert metrics.failure_auroc(conf, lab) == pytest.approx(0.25)


def test_oversize_run_and_longest_run():
    assert metrics.longest_run([True, True, False, True, True, True, False]) == 3
    assert metrics.longest_run([]) == 0
    truth = np.array([[0, 0, 10, 10]] * 9, float)
    truth[7] = NAN
    big = [0, 0, 25, 20]  # area 500 > 4 x 100
    pred = np.array([big, big, [0, 0, 20, 15], big, big, big, big, big, big], float)  # frame 2: area 300
    tracking = np.array([True, True, True, False, True, True, True, True, True])
    # Runs: frames 0-1 (2), frame 3 not TRACKING, frames 4-6 (3), frame 7 has no truth, frame 8 (1).
    assert metrics.oversize_run(pred, truth, tracking) == 3
    assert metrics.oversize_run(pred, truth, tracking, factor=5.0) == 0


def test_leave_events_lost_within_window():
    vis = np.array([1, 1, 0, 0, 0, 1, 1, 0, 0, 1], bool)
    lost = np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 1], bool)
    # Event 1 (frames 2-4 absent): LOST at frame 4, inside the window. Event 2 (frames 7-8): LOST only at frame 9,
    # after the target is back: not a detection.
    assert metrics.leave_events(vis, lost) == (2, 1)
    assert metrics.leave_events(vis, lost, within=2) == (2, 0)
    assert metrics.leave_events(np.ones(5, bool), np.zeros(5, bool)) == (0, 0)


def test_describe_sequence_statistics():
    from siamattn_ros.data.sequence import Sequence
    from siamattn_ros.tools.evaluate import describe_sequence, describe_table

    frames = [np.full((100, 200, 3), 7, np.uint8) for _ in range(5)]
    boxes = np.array([[0, 10, 20, 30], [50, 10, 40, 10], [NAN] * 4, [NAN] * 4, [100, 20, 100, 40]], float)
    vis = ~np.isnan(boxes).any(axis=1)
    d = describe_sequence(Sequence(frames, boxes, None, vis, name="s"))
    assert d["frames"] == 5 and d["absent"] == 2 and d["leave_events"] == 1 and d["returns"] == 1
    assert d["grey"] and d["size"] == "200x100"
    assert d["box_w"] == (20.0, 40.0, 100.0) and d["box_h"] == (10.0, 30.0, 40.0)
    # sqrt(w h) = sqrt(600), 20, sqrt(4000); width fractions 0.1, 0.2, 0.5;
    # border: frame 0 (x = 0) and frame 4 (x + w = 200).
    np.testing.assert_allclose(d["sqrt_area"], (20.0, np.sqrt(600), np.sqrt(4000)))
    np.testing.assert_allclose(d["w_frac"], (0.1, 0.2, 0.5))
    assert d["border_frames"] == 2
    table = describe_table([d])
    assert table[2].startswith("| s | 5 | 2 (1 / 1) | 200x100 | yes |") and "**total** | 5 |" in table[-1]
