"""Each bundled recording replayed through the real tracker_node process (separate process, real DDS).

Each recording is run once per test session (module fixture): with the shipped model
(models/siamattn_mnv2_embedded.pth) when it exists, otherwise with a seeded random-weight checkpoint on the first
frames only. Plumbing checks run on either: every result's header is a frame of the bag, the init with a past stamp
is applied on exactly that frame, every later frame gets exactly one result, in order, and the result stream
recorded into a bag reads back. Quality checks (IoU bars, LOST while out of view, re-acquisition) need the shipped
model and are skipped, with the reason printed, until it exists.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamattn_ros.replay.bag import deserialize, read_messages
from siamattn_ros.interface.states import CLAIMING_STATES, TrackState
from siamattn_ros.replay.session import run_tracker

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "siamattn_mnv2_embedded.pth"
HAVE_SHIPPED = SHIPPED.is_file()
needs_shipped = pytest.mark.skipif(not HAVE_SHIPPED, reason=f"shipped model {SHIPPED} not present yet")
RANDOM_FRAMES = 20   # frames replayed when only the random-weight checkpoint is available

# Bars for the shipped model, set below what it measured here through the node, with a margin for run-to-run and
# machine differences (docs/RECORDINGS.md). Model version 3 with lost_threshold 0.447 (2026-12-06): vtest_woman 0.721
# mean IoU, never LOST; synth_butterfly 0.772 until the target leaves, 0.753 overall, LOST through the absence and
# re-acquired on the 4th frame after the return; synth_reenter LOST through the absence, not re-acquired (see the
# xfail below). Both re-acquisitions are marginal: the returning target scores 0.66-0.69 against the recovery level
# 0.673, depending on where the state was held. (Version 3 with lost_threshold 0.613: 0.708 / 0.765 re-acquired /
# 0.351 not re-acquired; version 1: 0.735 / 0.786 / 0.814 and 0.264; version 2 passed the same bars.)
VTEST_MEAN_IOU_BAR = 0.60
SYNTH_REENTER_MEAN_IOU_BAR = 0.65
SYNTH_BUTTERFLY_MEAN_IOU_BAR = 0.18
SYNTH_BUTTERFLY_BEFORE_EXIT_IOU_BAR = 0.65
RECOVERY_WITHIN_FRAMES = 25
RECOVERED_IOU = 0.3

# recording -> how the node is fed (both transports are covered)
TRANSPORT = {"vtest_woman": "compressed", "synth_butterfly": "raw", "synth_reenter": "compressed"}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    if HAVE_SHIPPED:
        return SHIPPED
    from siamattn_ros.testing.checkpoints import random_checkpoint

    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "random_siamattn_mnv2.pth", seed=1234)


@pytest.fixture(scope="module")
def runs(model_path, tmp_path_factory):
    """{recording: (TrackerRun, bag of the recorded /track/result)}, each run on first use."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            bag = tmp_path_factory.mktemp(f"results_{name}") / "results.mcap"
            run = run_tracker(name, model_path, transport=TRANSPORT[name],
                              max_frames=None if HAVE_SHIPPED else RANDOM_FRAMES, record_path=bag)
            cache[name] = (run, bag)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(TRANSPORT))
def test_results_match_bag_frames_and_past_stamp_init(runs, name):
    run, bag = runs(name)
    rec = run.recording
    n = run.last_index + 1
    assert n == (len(rec) if HAVE_SHIPPED else RANDOM_FRAMES)
    frames = {(f.stamp_ns, f.frame_id): f.index for f in rec.frames}
    # Every result carries the header of a frame in the bag, byte for byte (stamp and frame_id).
    for r in run.results:
        assert (r.stamp_ns, r.frame_id) in frames, (r.stamp_ns, r.frame_id)
    before = [r for r in run.results if r.init_id == 0]
    after = [r for r in run.results if r.init_id >= 1]
    assert before and all(r.state == TrackState.STOPPED for r in before)
    # The init is applied on frame 0 (a past frame when it was sent: frames 1-3 had been published) and
    # announced once, with the box that was sent.
    inits = [r for r in after if r.state == TrackState.INITIALIZING]
    assert len(inits) == 1 and inits[0].stamp_ns == rec.frames[0].stamp_ns and inits[0].frames_since_init == 0
    np.testing.assert_allclose(inits[0].box_xywh, rec.truth[0], atol=0.6)
    assert all(r.init_id == 1 for r in after)
    # Then exactly one result per frame 1..n-1, in frame order, counting frames since init.
    tracked = [r for r in after if r.state != TrackState.INITIALIZING]
    assert [frames[(r.stamp_ns, r.frame_id)] for r in tracked] == list(range(1, n))
    assert [r.frames_since_init for r in tracked] == list(range(1, n))
    assert all(r.state in (TrackState.TRACKING, TrackState.LOW_CONFIDENCE, TrackState.LOST) for r in tracked)
    # The /track/result stream recorded into a bag (our message type registered) reads back the same.
    stored = [deserialize(m) for m in read_messages(bag)]
    assert [(m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id, m.state, m.init_id) for m in stored] \
        == [(r.stamp_ns // 10**9, r.stamp_ns % 10**9, r.frame_id, r.state, r.init_id) for r in run.results]


@needs_shipped
def test_vtest_shipped_model_iou(runs):
    run, _ = runs("vtest_woman")
    ious = run.evaluated_ious()
    print(f"vtest_woman: mean IoU {np.nanmean(ious):.3f}, LOST frames {(run.states == TrackState.LOST).sum()}, "
          f"{run.fps:.1f} fps lock-step")
    assert np.nanmean(ious) >= VTEST_MEAN_IOU_BAR


def _absence(run):
    """(first frame out of view, first frame back in view, ious) of a synthetic run."""
    gone = np.nonzero(~run.recording.visible)[0]
    return int(gone.min()), int(gone.max()) + 1, run.evaluated_ious()


def _recovery(run, back: int, ious: np.ndarray):
    """States, IoUs and a re-acquired flag for the RECOVERY_WITHIN_FRAMES frames from the target's return."""
    after = np.arange(back, min(len(run.recording), back + RECOVERY_WITHIN_FRAMES))
    iou_after = np.nan_to_num(ious[after - 1])  # ious[k] is frame k + 1
    ok = np.isin(run.states[after], CLAIMING_STATES) & (iou_after >= RECOVERED_IOU)
    return run.states[after], iou_after, bool(ok.any())


@needs_shipped
@pytest.mark.parametrize("name", ["synth_butterfly", "synth_reenter"])
def test_synth_shipped_model_lost_while_out_of_view(runs, name):
    run, _ = runs(name)
    first_gone, back, _ = _absence(run)
    states_gone = run.states[first_gone:back]
    print(f"{name}: out of view {first_gone}..{back - 1}: states {states_gone.tolist()}")
    assert (states_gone == TrackState.LOST).any(), "never reported LOST while the target was out of view"
    assert not np.isin(states_gone[-10:], (TrackState.TRACKING,)).all(), "claims TRACKING on an absent target"


@needs_shipped
def test_synth_reenter_shipped_model_recovers_and_iou(runs):
    # Failed (a strict xfail) with version 3 before the template size check: the returning target peaked at 0.662
    # in the held search window, under the recovery level 0.673. With the check on (the preset since 7 Dec) it is
    # re-acquired on the 5th frame after the return (IoU 0.50 -> 0.75).
    run, _ = runs("synth_reenter")
    _, back, ious = _absence(run)
    states, iou_after, recovered = _recovery(run, back, ious)
    print(f"synth_reenter: mean IoU {np.nanmean(ious):.3f}; after return: states {states.tolist()} "
          f"IoU {iou_after.round(2).tolist()}")
    assert recovered, f"not re-acquired within {RECOVERY_WITHIN_FRAMES} frames of the target's return"
    assert np.nanmean(ious) >= SYNTH_REENTER_MEAN_IOU_BAR


@needs_shipped
def test_synth_butterfly_shipped_model_iou(runs):
    run, _ = runs("synth_butterfly")
    _, back, ious = _absence(run)
    before = ious[: back - 1]
    print(f"synth_butterfly: mean IoU {np.nanmean(ious):.3f}, before the target leaves {np.nanmean(before):.3f}")
    assert np.nanmean(before) >= SYNTH_BUTTERFLY_BEFORE_EXIT_IOU_BAR
    assert np.nanmean(ious) >= SYNTH_BUTTERFLY_MEAN_IOU_BAR


@needs_shipped
def test_synth_butterfly_shipped_model_recovers_despite_distractor(runs):
    run, _ = runs("synth_butterfly")
    _, back, ious = _absence(run)
    states, iou_after, recovered = _recovery(run, back, ious)
    print(f"synth_butterfly: after return: states {states.tolist()} IoU {iou_after.round(2).tolist()}")
    assert recovered
