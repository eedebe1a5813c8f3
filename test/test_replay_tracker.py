"""Each bundled recording replayed through the real tracker_node process (separate process, real DDS).

Plumbing checks run with a seeded random-weight checkpoint (no trained model needed): every result's header is a
frame of the bag, the init with a past stamp is applied on exactly that frame, every frame after it gets exactly
one tracked result, the results recorded into a bag read back. Quality checks need the shipped model
(models/siamattn_mnv2_embedded.pth) and are skipped, with the reason printed, until it exists.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamattn_ros.replay.bag import deserialize, read_messages
from siamattn_ros.replay.recording import load_recording
from siamattn_ros.replay.session import (INITIALIZING, LOST, LOW_CONFIDENCE, STOPPED, TRACKING, run_tracker)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "siamattn_mnv2_embedded.pth"
needs_shipped = pytest.mark.skipif(not SHIPPED.is_file(), reason=f"shipped model {SHIPPED} not present yet")

# Bars for the shipped model, calibrated on its measured results with a margin (docs/RECORDINGS.md has the numbers).
VTEST_MEAN_IOU_BAR = 0.45
SYNTH_MEAN_IOU_BAR = 0.40
RECOVERY_WITHIN_FRAMES = 25
RECOVERED_IOU = 0.3


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory) -> Path:
    import torch

    from siamattn_ros.model import build_model, save_checkpoint

    torch.manual_seed(1234)
    path = tmp_path_factory.mktemp("ckpt") / "random_siamattn_mnv2.pth"
    save_checkpoint(build_model("siamattn_mnv2"), path)
    return path


def _check_plumbing(run, n_frames: int) -> None:
    rec = run.recording
    frames = {(f.stamp_ns, f.frame_id): f.index for f in rec.frames}
    # Every result carries the header of a frame in the bag, byte for byte (stamp and frame_id).
    for r in run.results:
        assert (r.stamp_ns, r.frame_id) in frames, (r.stamp_ns, r.frame_id)
    before = [r for r in run.results if r.init_id == 0]
    after = [r for r in run.results if r.init_id >= 1]
    assert before and all(r.state == STOPPED for r in before)
    # The init is applied on frame 0 (a past frame when it was sent) and announced once.
    inits = [r for r in after if r.state == INITIALIZING]
    assert len(inits) == 1 and inits[0].stamp_ns == rec.frames[0].stamp_ns and inits[0].frames_since_init == 0
    np.testing.assert_allclose(inits[0].box_xywh, rec.truth[0], atol=0.6)
    assert all(r.init_id == 1 for r in after)
    # Then exactly one result per frame 1..n-1, in frame order, counting frames since init.
    tracked = [r for r in after if r.state != INITIALIZING]
    assert [frames[(r.stamp_ns, r.frame_id)] for r in tracked] == list(range(1, n_frames))
    assert [r.frames_since_init for r in tracked] == list(range(1, n_frames))
    assert all(r.state in (TRACKING, LOW_CONFIDENCE, LOST) for r in tracked)
    assert (run.states[1:n_frames] >= 0).all() and (run.states[n_frames:] == -1).all()


def test_vtest_compressed_plumbing_random_weights(random_checkpoint, tmp_path):
    n = 20
    run = run_tracker("vtest_woman", random_checkpoint, transport="compressed", max_frames=n,
                      record_path=tmp_path / "results")
    _check_plumbing(run, n)
    # The /track/result stream recorded into a bag (with our message type registered) reads back the same.
    stored = [deserialize(m) for m in read_messages(tmp_path / "results")]
    assert [(m.header.stamp.sec, m.header.stamp.nanosec, m.state, m.init_id) for m in stored] == \
           [(r.stamp_ns // 10**9, r.stamp_ns % 10**9, r.state, r.init_id) for r in run.results]


def test_synth_raw_plumbing_random_weights(random_checkpoint):
    n = 15
    run = run_tracker("synth_butterfly", random_checkpoint, transport="raw", max_frames=n)
    _check_plumbing(run, n)
    assert run.results[-1].stamp_ns == load_recording("synth_butterfly").frames[n - 1].stamp_ns


@needs_shipped
def test_vtest_shipped_model_iou():
    run = run_tracker("vtest_woman", SHIPPED)
    _check_plumbing(run, len(run.recording))
    ious = run.evaluated_ious()
    print(f"vtest_woman: mean IoU {np.nanmean(ious):.3f}, LOST frames {(run.states == LOST).sum()}, "
          f"{run.fps:.1f} fps lock-step")
    assert np.nanmean(ious) >= VTEST_MEAN_IOU_BAR


@needs_shipped
def test_synth_shipped_model_iou_lost_and_recovery():
    run = run_tracker("synth_butterfly", SHIPPED)
    rec = run.recording
    _check_plumbing(run, len(rec))
    ious = run.evaluated_ious()
    gone = np.nonzero(~rec.visible)[0]
    first_gone, back = int(gone.min()), int(gone.max()) + 1
    states_gone = run.states[first_gone:back]
    after = np.arange(back, min(len(rec), back + RECOVERY_WITHIN_FRAMES))
    iou_after = np.nan_to_num(ious[after - 1])  # ious[k] is frame k + 1
    print(f"synth_butterfly: mean IoU {np.nanmean(ious):.3f}; out of view {first_gone}..{back - 1}: states "
          f"{states_gone.tolist()}; after return: states {run.states[after].tolist()} IoU {iou_after.round(2).tolist()}")
    assert (states_gone == LOST).any(), "never reported LOST while the target was out of view"
    recovered = (np.isin(run.states[after], (TRACKING, LOW_CONFIDENCE))) & (iou_after >= RECOVERED_IOU)
    assert recovered.any(), f"not re-acquired within {RECOVERY_WITHIN_FRAMES} frames of the target's return"
    assert np.nanmean(ious) >= SYNTH_MEAN_IOU_BAR
