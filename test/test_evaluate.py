"""Evaluation metrics on hand-computed cases, and the evaluate command on a small generated sequence."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
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
    from siamattn_ros.model import build_model, save_checkpoint
    from siamattn_ros.tools import evaluate
    from test_train_loop import TINY_MODEL

    seq = make_sequence(SequenceSpec(num_frames=8, width=200, height=150, object_size=(40.0, 60.0)), 21)
    write_sequence(seq, tmp_path / "seqs" / "s21")
    torch.manual_seed(0)
    from siamattn_ros.model import ModelConfig
    ckpt = tmp_path / "tiny_mnv2.pth"
    save_checkpoint(build_model(ModelConfig.from_dict(TINY_MODEL)), ckpt)
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
