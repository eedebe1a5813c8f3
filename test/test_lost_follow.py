"""Leaving the view and coming back: LOST soon after the target left (real footage), and the option to let the
LOST search follow a partly visible target (TrackerConfig.lost_follow) until it is seen whole again."""
from pathlib import Path

import math

import numpy as np
import pytest

from siamattn_ros.interface.metrics import box_iou
from siamattn_ros.testing.networks import ScriptedNet
from siamattn_ros.tracker import Tracker, TrackerConfig, TrackState, load_preset

pytestmark = pytest.mark.usefixtures("single_thread")
SMALL = Path(__file__).resolve().parents[1] / "data" / "annotations" / "vtest_small"


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _centre(tracker: Tracker) -> np.ndarray:
    x, y, w, h = tracker.state_box_xywh
    return np.array([x + w / 2, y + h / 2])


def _lost_then_dim_target_to_the_right(follow: bool, col: int = 14):
    """ScriptedNet: tracked, then nothing (LOST), then for 6 frames a candidate (col - 12) * 8 crop px right of every
    window's centre scoring 0.35: above lost_threshold (0.2), below the recovery level (0.6)."""
    net = ScriptedNet(fg=10.0)
    cfg = TrackerConfig(confidence_threshold=0.5, hysteresis=0.1, lost_threshold=0.2, lost_frames=2,
                        lost_follow=follow, warmup=False)
    tr = Tracker(net, cfg)
    img = np.full((600, 800, 3), 90, np.uint8)  # large enough that every ring-1 window lies in the image
    tr.init(img, (370.0, 270.0, 60.0, 60.0))
    assert tr.track(img).state == TrackState.TRACKING
    net.fg = _logit(0.02)
    states = [tr.track(img).state for _ in range(2)]
    assert states[-1] == TrackState.LOST
    start, size = _centre(tr), tr.state_box_xywh[2:].copy()
    net.fg, net.col = _logit(0.35), col
    results = [tr.track(img) for _ in range(6)]
    assert all(r.state == TrackState.LOST for r in results)
    assert all(r.confidence == pytest.approx(0.35, abs=1e-4) for r in results)
    np.testing.assert_allclose(tr.state_box_xywh[2:], size)  # the size does not change while LOST
    return _centre(tr) - start


def test_while_lost_the_search_follows_a_dim_nearby_candidate_at_the_last_position_only():
    # s_z = sqrt(120 * 120) = 120: 16 crop px = 16 * 120 / 127 source px. The LOST scan searches the last position
    # on every other frame (3 of these 6) and a ring window on the others: only the first move the centre (within
    # 0.5 px: the search crop's side is rounded to whole pixels).
    step = 16 * 120 / 127
    np.testing.assert_allclose(_lost_then_dim_target_to_the_right(follow=True), [3 * step, 0.0], atol=0.5)
    # Off (the default, and the presets): the last position stays where the target was last seen.
    np.testing.assert_array_equal(_lost_then_dim_target_to_the_right(follow=False), [0.0, 0.0])
    # A candidate farther than one target size (96 crop px = 91 source px > 60) does not move it.
    np.testing.assert_array_equal(_lost_then_dim_target_to_the_right(follow=True, col=24), [0.0, 0.0])


def test_lost_follow_is_validated_and_changeable_at_run_time():
    with pytest.raises(ValueError, match="lost_follow.*'yes'"):
        TrackerConfig(lost_follow="yes")
    tr = Tracker(ScriptedNet(), TrackerConfig(warmup=False))
    assert tr.set_params(lost_follow=True).lost_follow is True


def test_shipped_model_is_lost_within_10_frames_of_the_target_leaving_real_footage(shipped):
    """vtest_small (real footage): a 15 x 37 px pedestrian leaves through the left border at frame 94."""
    from siamattn_ros.data.seqio import read_sequence

    try:
        seq = read_sequence(SMALL, load_masks=False)
    except FileNotFoundError as exc:
        pytest.skip(f"opencv-doc not installed (make test installs it): {exc}")
    gone = int(np.argmin(seq.visible))
    assert gone == 94 and not seq.visible[gone:gone + 10].any()
    shipped.config = load_preset("embedded").replace(warmup=False)
    shipped.init(seq.frames[0], seq.boxes_xywh[0])
    states = [shipped.track(seq.frames[i], want_mask=False).state for i in range(1, gone + 10)]
    assert TrackState.LOST not in states[:80]  # not while she walks along the path
    assert TrackState.LOST in states[gone - 1:], states[gone - 1:]


def test_shipped_model_with_lost_follow_reacquires_a_target_after_an_occlusion(shipped):
    """Held-out semi-synthetic sequence 6 (never used in training): a look-alike and an occluder cross the target,
    the tracker goes LOST while the target is partly hidden; with lost_follow the search stays on the partly visible
    target and tracks it again (measured 2026-12-07: 0 vs 18 frames TRACKING with IoU > 0.5 after frame 51)."""
    from siamattn_ros.tools.evaluate import heldout_sequence

    seq = heldout_sequence(6)
    hits = {}
    for follow in (False, True):
        shipped.config = load_preset("embedded").replace(warmup=False, lost_follow=follow)
        shipped.init(seq.frames[0], seq.boxes_xywh[0])
        res = [shipped.track(f, want_mask=False) for f in seq.frames[1:]]
        ious = box_iou(np.array([r.box_xywh for r in res]), seq.boxes_xywh[1:])
        assert TrackState.LOST in [r.state for r in res[40:60]]
        hits[follow] = sum(1 for r, v in zip(res[50:], ious[50:]) if r.state == TrackState.TRACKING and v > 0.5)
    print(hits)
    assert hits[False] < 5 and hits[True] >= 12, hits
