"""Template search of the state box (TrackerConfig.template_search, siamattn_ros/tracker/template_search.py), with the
shipped model: on a drawn rigid target, and on real footage (visp_mire2, carphone_bowtie, bikes_walker)."""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import cv2
import numpy as np
import pytest

from siamattn_ros.interface.metrics import box_iou
from siamattn_ros.tracker import TrackerConfig, load_preset
from siamattn_ros.tracker.crop import context_side, crop_cv, to_tensor
from siamattn_ros.tracker.template_search import TemplateBoxSearch

pytestmark = pytest.mark.usefixtures("single_thread")

ANNOTATIONS = Path(__file__).resolve().parents[1] / "data" / "annotations"


def _scene(dx: int = 0, dy: int = 0) -> Tuple[np.ndarray, Tuple[float, float, float, float]]:
    """A smooth random background with a rigid, blocky textured target of 100x70 px at (110 + dx, 80 + dy)."""
    rng = np.random.default_rng(3)
    img = cv2.resize(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_LINEAR)
    target = cv2.resize(rng.integers(0, 256, (7, 10, 3), dtype=np.uint8), (100, 70), interpolation=cv2.INTER_NEAREST)
    img[80 + dy:150 + dy, 110 + dx:210 + dx] = target
    return img, (110.0 + dx, 80.0 + dy, 100.0, 70.0)


def _features(tracker, image: np.ndarray, center: Tuple[float, float], size: Tuple[float, float]):
    """The search crop's adjusted feature levels as the tracker computes them, its origin and scale."""
    s_z = context_side(*size, tracker.config.context_amount)
    side = round(s_z * tracker.instance_size / tracker.exemplar_size)
    x = to_tensor(crop_cv(image, center, side, tracker.instance_size, np.zeros(3, np.uint8)), tracker.device)
    features = tracker.model.extract(x)[2:]
    return features, (center[0] - side / 2.0, center[1] - side / 2.0), tracker.exemplar_size / s_z


def _cxcywh(box) -> Tuple[float, float, float, float]:
    x, y, w, h = box
    return (x + w / 2.0, y + h / 2.0, w, h)


def _xywh(box) -> np.ndarray:
    cx, cy, w, h = box
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h])


def _search_from_the_scene(tracker) -> TemplateBoxSearch:
    """A search whose reference is the target of _scene() on its own frame."""
    search = TemplateBoxSearch(tracker.exemplar_size, tracker.instance_size, tracker.anchor_stride)
    frame0, box0 = _scene()
    ref = _cxcywh(box0)
    features, origin, scale = _features(tracker, frame0, ref[:2], ref[2:])
    search.set_reference(features, origin, scale, ref, tracker.config.context_amount)
    return search


def test_search_moves_a_box_too_tall_and_too_low_back_onto_a_rigid_target(shipped):
    import torch

    with torch.inference_mode():
        search = _search_from_the_scene(shipped)
        frame1, box1 = _scene(6, 4)
        truth = _cxcywh(box1)
        # The box heads' error on visp_mire2: the box 1.3x as tall as the target, its centre low.
        state = (truth[0], truth[1] + 0.15 * truth[3], truth[2], 1.3 * truth[3])
        features, origin, scale = _features(shipped, frame1, state[:2], state[2:])
        found, s_found, s_state = search.search(features, origin, scale, state[:2], state[2:], (320, 240))
    iou_state = float(box_iou(_xywh(state)[None], np.array([box1]))[0])
    iou_found = float(box_iou(_xywh(found)[None], np.array([box1]))[0])
    print(f"similarity {s_state:.3f} -> {s_found:.3f}, IoU {iou_state:.3f} -> {iou_found:.3f}")
    assert s_found > s_state + 0.05
    assert iou_found >= iou_state + 0.1, (iou_state, iou_found)
    assert found[3] < state[3] and found[1] < state[1]  # shorter, and moved up


def test_no_candidate_reaches_further_out_of_the_image_than_the_state(shipped):
    import torch

    frame0, _ = _scene()
    with torch.inference_mode():
        search = _search_from_the_scene(shipped)
        # A state at the left and top border (the target is right of and below it): every box left of or above it
        # would show padding, and a template of a border-touching target has padding there too.
        for state in ((50.0, 35.0, 100.0, 70.0), (160.0, 35.0, 100.0, 70.0), (50.0, 115.0, 100.0, 70.0)):
            features, origin, scale = _features(shipped, frame0, state[:2], state[2:])
            found, _, _ = search.search(features, origin, scale, state[:2], state[2:], (320, 240))
            for a, b in ((found[0] - found[2] / 2, state[0] - state[2] / 2),
                         (found[1] - found[3] / 2, state[1] - state[3] / 2)):
                assert a >= min(b, 0.0) - 1e-6, (state, found)


def test_template_search_settings_are_validated_and_presets_set():
    for bad in ({"template_search_trust": 1.5}, {"template_search_margin": -0.1}, {"template_search_frames": 0},
                {"template_search_frames": 2.5}, {"template_search_max_zoom": float("nan")}):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=f"TrackerConfig.{name}"):
            TrackerConfig(**bad)
    with pytest.raises(ValueError, match="TrackerConfig.template_search must be true/false"):
        TrackerConfig(template_search="yes")
    assert load_preset("embedded").template_search
    assert not load_preset("vot2018").template_search and not load_preset("otb100").template_search


def _read(name: str):
    from siamattn_ros.data.seqio import read_sequence

    try:
        return read_sequence(ANNOTATIONS / name, load_masks=False)
    except FileNotFoundError as exc:
        pytest.skip(f"footage not installed (make test installs it): {exc}")


def _states(tracker, seq, n: int, on: bool) -> np.ndarray:
    tracker.config = load_preset("embedded").replace(warmup=False, template_search=on)
    tracker.init(seq.frames[0], seq.boxes_xywh[0])
    states = []
    for f in seq.frames[1:n]:
        tracker.track(f, want_mask=False)
        states.append(tracker.state_box_xywh)
    return np.array(states)


def test_real_footage_mire2_state_follows_the_square_not_the_carton(shipped):
    """visp_mire2 (real footage, hand-held camera over a black square on a carton): without the search the state
    includes the carton's front face from the first frames (1.3x the square's height); with it the state keeps to
    the square. Frames 1-189, before the strong perspective change (measured 2026-12-07: state mean IoU 0.70 ->
    0.83)."""
    seq = _read("visp_mire2")
    n = 190
    off, on = (_states(shipped, seq, n, flag) for flag in (False, True))
    assert shipped.template_search_active
    before, after = (float(np.mean(box_iou(s, seq.boxes_xywh[1:n]))) for s in (off, on))
    print(f"visp_mire2 state mean IoU frames 1-{n - 1}: {before:.3f} -> {after:.3f}")
    assert after >= before + 0.08, (before, after)
    # The carton: the state without the search is taller than the square, with it about its height.
    ratio_off, ratio_on = (float(np.median(s[:, 3] / seq.boxes_xywh[1:n, 3])) for s in (off, on))
    assert ratio_off > 1.2 and 0.85 < ratio_on < 1.15, (ratio_off, ratio_on)


def test_real_footage_small_target_and_walking_person_untouched(shipped):
    """carphone_bowtie (45x17 px, the template enlarges it 2.1x > template_search_max_zoom): the search is off for
    it, the track identical. bikes_walker (a man walking past the camera): the template prefers another box on
    single frames only (never template_search_frames in a row), so his track is the same too."""
    small = _read("carphone_bowtie")
    off, on = (_states(shipped, small, 60, flag) for flag in (False, True))
    assert not shipped.template_search_active
    np.testing.assert_array_equal(off, on)

    walker = _read("bikes_walker")
    off, on = (_states(shipped, walker, 27, flag) for flag in (False, True))  # he is in view until frame ~26
    assert shipped.template_search_active
    np.testing.assert_array_equal(off, on)
