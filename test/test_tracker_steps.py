"""Each inference step of the tracker (spec §5, §10) on hand-computed cases. No network involved."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from siamattn_ros.model.anchors import flat_anchors
from siamattn_ros.tracker import decode as D
from siamattn_ros.tracker import mask as M
from siamattn_ros.tracker.config import PRESETS, TrackerConfig, load_preset
from siamattn_ros.tracker.crop import crop_cv, crop_torch, window_at
from siamattn_ros.tracker.result import TrackState
from siamattn_ros.tracker.state import ConfidenceStateMachine, lost_scan_offset, scan_offsets
from siamattn_ros.interface.convert import check_box
from siamattn_ros.tracker.tracker import check_image, clip_box


def _ramp_image(h: int = 40, w: int = 50) -> np.ndarray:
    """Every pixel distinct: B = x, G = y, R = x + y."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack((xs, ys, xs + ys), axis=-1).astype(np.uint8)


# --- sub-window --------------------------------------------------------------------------------------------------
def test_window_bounds_follow_spec_rounding():
    # c = (5+1)/2 = 3; xmin = floor(10 - 3 + 0.5) = 7, ymin = floor(20.2 - 3 + 0.5) = 17
    win = window_at((10.0, 20.2), 5)
    assert (win.x0, win.y0, win.x1, win.y1) == (7, 17, 11, 21)
    # even size: c = 2.5, floor(10 - 2.5 + 0.5) = 8
    assert window_at((10.0, 10.0), 4).x0 == 8
    assert win.padding(50, 40) == (0, 0, 0, 0)
    # x0 = floor(1 - 3 + 0.5) = -2; y0 = floor(38.6 - 2.5) = 36, y1 = 40
    assert window_at((1.0, 38.6), 5).padding(50, 40) == (2, 0, 0, 1)


def test_crop_inside_is_exact_slice():
    img = _ramp_image()
    out = crop_cv(img, (20.0, 15.0), 9, 9, np.array([1, 2, 3], np.uint8))
    win = window_at((20.0, 15.0), 9)
    np.testing.assert_array_equal(out, img[win.y0:win.y1 + 1, win.x0:win.x1 + 1])


def test_crop_at_border_pads_with_mean_colour():
    img = _ramp_image()
    pad = np.array([7, 8, 9], np.uint8)
    # centre at the top-left pixel, size 5: window [-2, 2] x [-2, 2] (c = 3, floor(0 - 3 + 0.5) = -3 -> [-3, 1])
    out = crop_cv(img, (0.0, 0.0), 5, 5, pad)
    win = window_at((0.0, 0.0), 5)
    assert (win.x0, win.y0) == (-3, -3)
    assert (out[:3, :] == pad).all() and (out[:, :3] == pad).all()
    np.testing.assert_array_equal(out[3:, 3:], img[0:2, 0:2])


def test_crop_beyond_border_is_all_padding():
    img = _ramp_image()
    pad = np.array([7, 8, 9], np.uint8)
    out = crop_cv(img, (-100.0, 300.0), 11, 7, pad)
    assert out.shape == (7, 7, 3) and (out == pad).all()


def test_crop_resizes_bilinear_like_opencv():
    img = _ramp_image(60, 60)
    out = crop_cv(img, (30.0, 30.0), 40, 20, np.zeros(3, np.uint8))
    win = window_at((30.0, 30.0), 40)
    ref = cv2.resize(img[win.y0:win.y1 + 1, win.x0:win.x1 + 1], (20, 20), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("center,size,out", [((20.0, 15.0), 9, 9), ((2.0, 37.0), 31, 31), ((25.0, 20.0), 33, 17),
                                             ((-3.0, 45.0), 40, 64), ((10.0, 5.0), 70, 127)])
def test_torch_crop_matches_opencv_crop(center, size, out):
    img = _ramp_image()
    pad = np.array([7, 8, 9], np.uint8)
    ref = crop_cv(img, center, size, out, pad).astype(np.int32)
    got = crop_torch(torch.from_numpy(img), center, size, out, torch.from_numpy(pad))
    assert got.shape == (1, 3, out, out) and got.dtype == torch.float32
    got = got[0].permute(1, 2, 0).numpy().astype(np.int32)
    if size == out:
        np.testing.assert_array_equal(got, ref)
    else:  # OpenCV's fixed-point interpolation weights: at most one grey level apart
        assert np.abs(got - ref).max() <= 1


# --- anchors, scores, decoding ------------------------------------------------------------------------------------
def test_anchor_sizes_and_centres():
    a = flat_anchors(8, (0.33, 0.5, 1.0, 2.0, 3.0), (8.0,), 25)
    assert a.shape == (4, 3125)
    sizes = [(a[2, k * 625], a[3, k * 625]) for k in range(5)]
    assert sizes == [(104, 32), (88, 40), (64, 64), (40, 80), (32, 96)]
    n = 3 * 625 + 4 * 25 + 7  # anchor 3, row 4, col 7
    assert (a[0, n], a[1, n]) == (-96 + 8 * 7, -96 + 8 * 4)
    assert (a[0, 0], a[1, 0], a[0, 624], a[1, 624]) == (-96, -96, 96, 96)


def test_cosine_window():
    w = D.cosine_window(25, 5)
    assert w.shape == (3125,)
    assert w[0] == 0.0 and w[624] == 0.0 and w[12 * 25 + 12] == pytest.approx(1.0)
    np.testing.assert_array_equal(w[:625], w[2 * 625:3 * 625])
    assert w[12 * 25 + 11] == pytest.approx(np.hanning(25)[11])


def test_fg_score_layout():
    cls = torch.zeros(1, 10, 25, 25)
    cls[0, 5 + 2, 3, 4] = math.log(3.0)  # fg logit of anchor 2 at row 3, col 4 -> p = 3 / (1 + 3)
    cls[0, 1, 0, 0] = math.log(4.0)      # bg logit of anchor 1 at (0, 0) -> p_fg = 1 / 5
    s = D.fg_scores(cls)
    assert s[2 * 625 + 3 * 25 + 4].item() == pytest.approx(0.75)
    assert s[625].item() == pytest.approx(0.2)
    assert s[0].item() == pytest.approx(0.5)


def test_decode_boxes():
    anchors = torch.from_numpy(flat_anchors(8, (0.33, 0.5, 1.0, 2.0, 3.0), (8.0,), 25))
    loc = torch.zeros(1, 20, 25, 25)
    # anchor 2 (64x64) at row 10, col 20: dx = 0.5, dy = -0.25, dw = log 2, dh = 0
    loc[0, 0 + 2, 10, 20] = 0.5
    loc[0, 5 + 2, 10, 20] = -0.25
    loc[0, 10 + 2, 10, 20] = math.log(2.0)
    b = D.decode_boxes(loc, anchors)[:, 2 * 625 + 10 * 25 + 20]
    np.testing.assert_allclose(b.numpy(), [0.5 * 64 + (-96 + 160), -0.25 * 64 + (-96 + 80), 128, 64], rtol=1e-6)


def test_scale_penalty_hand_values():
    boxes = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [64.0, 128.0, 128.0], [64.0, 128.0, 32.0]])
    p = D.scale_penalty(boxes, torch.tensor([64.0, 64.0]), 0.1).numpy()
    assert p[0] == pytest.approx(1.0)
    assert p[1] == pytest.approx(math.exp(-(2.0 - 1.0) * 0.1))  # same ratio, twice the size: s_c = 2, r_c = 1
    s_c = math.sqrt((128 + 80) * (32 + 80)) / 128.0  # sz(128, 32) / sz(64, 64)
    assert p[2] == pytest.approx(math.exp(-(4.0 * s_c - 1.0) * 0.1), rel=1e-6)  # r_c = change(1 / 4) = 4


def test_select_best_window_and_score():
    window = torch.from_numpy(D.cosine_window(25, 5))
    score = torch.zeros(3125)
    score[100] = 0.9
    pen = torch.ones(3125)
    assert D.select_best(score, pen, window, 1.0).item() == 12 * 25 + 12  # window only: centre of anchor 0
    assert D.select_best(score, pen, window, 0.0).item() == 100
    pen[100] = 0.1  # a strong penalty moves the choice to the window's favourite
    assert D.select_best(score, pen, window, 0.5).item() == 312


def test_rpn_box_clipping_and_refinement_roi():
    box = D.rpn_box_in_crop(torch.tensor([-200.0, 300.0 - 127.5, 5.0, 400.0]), 255)
    np.testing.assert_allclose(box.numpy(), [0.0, 254.0, 10.0, 254.0])
    roi = D.bbox_roi(torch.tensor([100.0, 120.0, 50.0, 40.0]))
    np.testing.assert_allclose(roi.numpy(), [[0.0, 75.5, 100.5, 124.5, 139.5]])
    ref = D.decode_refine(torch.tensor([[1.0, -2.0, 0.0, math.log(2.0) / 0.2]]),
                          torch.tensor([100.0, 120.0, 50.0, 40.0]), (0.1, 0.1, 0.2, 0.2))
    np.testing.assert_allclose(ref.numpy(), [100 + 0.1 * 50, 120 - 0.2 * 40, 50, 80], rtol=1e-6)


def test_mask_roi_and_sub_rect():
    assert D.mask_roi((110.0, 60.0), (20.0, 10.0), (100.0, 50.0), 2.0) == (0.0, 10.0, 40.0, 30.0)
    # k = s_x / 255 = 2: crop (0, 10)-(40, 30) -> image (100, 70), size (80, 40)
    assert M.sub_rect((0.0, 10.0, 40.0, 30.0), (100.0, 50.0), 510, 255) == (100.0, 70.0, 80.0, 40.0)


# --- mask paste-back and polygon ---------------------------------------------------------------------------------
def _full_warp(prob: np.ndarray, rect, w: int, h: int, thr: float) -> np.ndarray:
    """Reference: the authors' full-frame affine warp of the mask (spec §10.3 step 13)."""
    sx, sy, sw, sh = rect
    s_w, s_h = prob.shape[1] / sw, prob.shape[0] / sh
    a, b = (w - 1) / (w * s_w), (h - 1) / (h * s_h)
    mat = np.array([[a, 0, a * sx * s_w], [0, b, b * sy * s_h]], np.float64)
    full = cv2.warpAffine(prob, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return ((full > thr) * 255).astype(np.uint8)


def _blob(m: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:m, 0:m]
    return np.clip(1.2 - np.hypot((xx - 30) / 20.0, (yy - 36) / 14.0), 0, 1).astype(np.float32)


@pytest.mark.parametrize("rect", [(10.3, 20.7, 32.0, 16.0), (-15.0, 30.0, 60.0, 45.0), (80.0, 60.0, 50.0, 50.0),
                                  (200.0, 5.0, 20.0, 20.0)])
def test_paste_region_equals_full_frame_warp(rect):
    w, h = 100, 80
    prob = _blob()
    ref = _full_warp(prob, rect, w, h, 0.2)
    pm = M.paste_map(rect, 64, w, h)
    full = M.full_frame(M.paste_cv(prob, pm, 0.2), pm, w, h)
    assert full.shape == (h, w) and full.dtype == np.uint8
    assert set(np.unique(full)) <= {0, 255}
    mismatch = np.count_nonzero(full != ref)
    assert mismatch <= 2, f"{mismatch} pixels differ from the full-frame warp"
    if rect[0] >= w:  # entirely right of the image: nothing pasted
        assert pm.empty and not full.any()
    else:
        assert full.any()
        tfull = M.full_frame(M.paste_torch(torch.from_numpy(prob), pm, 0.2).numpy(), pm, w, h)
        assert np.count_nonzero(tfull != ref) <= max(3, ref.sum() // 255 // 100)


def test_paste_of_full_mask_covers_its_rectangle():
    prob = np.ones((64, 64), np.float32)
    pm = M.paste_map((10.0, 20.0, 32.0, 16.0), 64, 100, 80)
    full = M.full_frame(M.paste_cv(prob, pm, 0.5), pm, 100, 80)
    ys, xs = np.nonzero(full)
    # x = a·u + c_x with a ≈ 0.5 (a (W-1)/W scale): u = 0..63 -> x ≈ 9.9 .. 41.2
    assert xs.min() == 10 and xs.max() == 41 and ys.min() == 20 and ys.max() == 35


def test_polygon_of_rotated_rectangle():
    mask = np.zeros((120, 160), np.uint8)
    corners = cv2.boxPoints(((80.0, 60.0), (60.0, 30.0), 30.0))
    cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 255)
    region = mask[20:110, 30:140]
    poly, box = M.mask_shape(region, (30, 20), np.array([0.0, 0.0, 5.0, 5.0]))
    assert poly.shape == (4, 2) and poly.dtype == np.float32
    ys, xs = np.nonzero(mask)  # the box is the component's pixel extent, in image coordinates
    np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
    (cx, cy), (rw, rh), _ = cv2.minAreaRect(poly)
    assert abs(cx - 80) < 1.0 and abs(cy - 60) < 1.0
    assert sorted((rw, rh)) == pytest.approx([30, 60], abs=2.0)


def test_polygon_falls_back_to_box_for_small_masks():
    mask = np.zeros((50, 50), np.uint8)
    mask[10:19, 10:19] = 255  # 9x9 -> contour area 64 <= 100
    box = np.array([5.0, 6.0, 20.0, 10.0])
    poly, mask_box = M.mask_shape(mask, (0, 0), box)
    np.testing.assert_array_equal(poly, np.array([[5, 6], [25, 6], [25, 16], [5, 16]], np.float32))
    assert mask_box is None
    poly, mask_box = M.mask_shape(np.zeros((0, 0), np.uint8), (0, 0), box)
    np.testing.assert_array_equal(poly, M.box_polygon(box))
    assert mask_box is None


def test_mask_box_is_the_largest_component_and_must_overlap_the_state_box():
    mask = np.zeros((100, 200), np.uint8)
    mask[20:60, 30:50] = 255     # 20 x 40: the largest component
    mask[70:80, 150:170] = 255   # 20 x 10, elsewhere: ignored
    poly, mask_box = M.mask_shape(mask, (0, 0), np.array([0.0, 0.0, 5.0, 5.0]))
    np.testing.assert_array_equal(mask_box, [30, 20, 20, 40])
    state = np.array([28.0, 18.0, 26.0, 46.0])  # IoU 800 / 1196 = 0.67: the mask's box is reported
    np.testing.assert_array_equal(M.choose_box(state, mask_box), mask_box)
    wide = np.array([20.0, 10.0, 50.0, 60.0])  # IoU 800 / 3000 = 0.27 < MASK_BOX_MIN_IOU: the state box stays
    np.testing.assert_array_equal(M.choose_box(wide, mask_box), wide)
    np.testing.assert_array_equal(M.choose_box(state, None), state)


# --- clipping and input checks -------------------------------------------------------------------------------------
def test_clip_box_never_leaves_the_image():
    np.testing.assert_allclose(clip_box(0.0, 10.0, 50.0, 10.0, 100, 80), [0.0, 5.0, 25.0, 10.0])
    np.testing.assert_allclose(clip_box(99.0, 79.0, 300.0, 300.0, 100, 80), [0.0, 0.0, 100.0, 80.0])


@pytest.mark.parametrize("box,word", [((1, 2, 0, 5), "degenerate"), ((1, 2, 5, -3), "degenerate"),
                                      ((float("nan"), 2, 5, 5), "non-finite"), ((1, 2, float("inf"), 5), "non-finite"),
                                      ((1, 2, 3), "4 numbers"), ("abc", "4 numbers"), ((500, 2, 5, 5), "outside"),
                                      ((-20, -20, 10, 10), "outside")])
def test_bad_boxes_raise_value_error_naming_the_value(box, word):
    with pytest.raises(ValueError, match=word):
        check_box(box, 100, 80)


@pytest.mark.parametrize("image,word", [(np.zeros((10, 10), np.uint8), "grey"),
                                        (np.zeros((10, 10, 4), np.uint8), "BGRA2BGR"),
                                        (np.zeros((0, 10, 3), np.uint8), "empty"),
                                        (np.zeros((10, 10, 3), np.float32), "float32"),
                                        ([[1, 2, 3]], "numpy")])
def test_bad_images_raise_value_error_naming_the_problem(image, word):
    with pytest.raises(ValueError, match=word):
        check_image(image)


def test_flipped_view_is_accepted():
    img = _ramp_image()
    out = check_image(img[:, ::-1, ::-1])
    np.testing.assert_array_equal(out, img[:, ::-1, ::-1])


# --- confidence states ----------------------------------------------------------------------------------------------
def test_state_machine_hysteresis_and_lost():
    cfg = TrackerConfig(confidence_threshold=0.5, hysteresis=0.1, lost_threshold=0.2, lost_frames=3, warmup=False)
    sm = ConfidenceStateMachine()
    T, L, X = TrackState.TRACKING, TrackState.LOW_CONFIDENCE, TrackState.LOST
    scores = [0.9, 0.45, 0.55, 0.65, 0.1, 0.1, 0.3, 0.1, 0.1, 0.1, 0.55, 0.59, 0.61, 0.3]
    expect = [T, L, L, T, L, L, L, L, L, X, X, X, T, L]
    got = [sm.update(s, cfg) for s in scores]
    assert got == expect


def test_state_machine_low_confidence_for_too_long_is_lost():
    cfg = TrackerConfig(confidence_threshold=0.5, hysteresis=0.2, lost_threshold=0.2, lost_frames=3,
                        low_confidence_frames=3, warmup=False)
    sm = ConfidenceStateMachine()
    T, L, X = TrackState.TRACKING, TrackState.LOW_CONFIDENCE, TrackState.LOST
    # 0.6: above both thresholds but below the recovery level (0.7): LOW_CONFIDENCE holds, and after 3 frames LOST.
    scores = [0.9, 0.45, 0.6, 0.6, 0.6, 0.6, 0.75, 0.45, 0.6, 0.75, 0.45, 0.6, 0.6]
    expect = [T, L, L, X, X, X, T, L, L, T, L, L, X]
    assert [sm.update(s, cfg) for s in scores] == expect
    off = ConfidenceStateMachine()
    assert [off.update(s, cfg.replace(low_confidence_frames=0)) for s in scores][:6] == [T, L, L, L, L, L]


def test_thresholds_changed_at_run_time_apply_immediately():
    cfg = TrackerConfig(warmup=False)
    sm = ConfidenceStateMachine()
    assert sm.update(0.7, cfg) == TrackState.TRACKING
    assert sm.update(0.7, cfg.replace(confidence_threshold=0.8)) == TrackState.LOW_CONFIDENCE


def test_lost_scan_widens_ring_by_ring():
    assert len(scan_offsets(1)) == 8 and len(scan_offsets(2)) == 24
    assert all(max(abs(i), abs(j)) == 1 for i, j in scan_offsets(2)[:8])
    seq = [lost_scan_offset(n, 2) for n in range(50)]
    assert all(seq[n] == (0, 0) for n in range(0, 50, 2))  # last known position every other frame
    odd = seq[1::2]
    assert set(odd) == set(scan_offsets(2)) and odd[:8] == scan_offsets(1)
    assert lost_scan_offset(3, 0) == (0, 0)


# --- config ------------------------------------------------------------------------------------------------------
def test_presets_hold_the_paper_constants():
    got = {p: load_preset(p) for p in PRESETS}
    assert (got["otb100"].penalty_k, got["otb100"].window_influence, got["otb100"].lr) == (0.20, 0.35, 0.50)
    assert (got["vot2018"].penalty_k, got["vot2018"].window_influence, got["vot2018"].lr) == (0.10, 0.25, 0.45)
    assert all(c.mask_threshold == 0.2 and c.context_amount == 0.5 for c in got.values())
    assert not got["otb100"].long_term and got["embedded"].long_term


@pytest.mark.parametrize("changes,word", [({"confidence_threshold": 1.5}, "confidence_threshold"),
                                          ({"lost_frames": 0}, "lost_frames"),
                                          ({"low_confidence_frames": -1}, "low_confidence_frames"),
                                          ({"lost_threshold": 0.9}, "lost_threshold"),
                                          ({"penalty_k": float("nan")}, "penalty_k"),
                                          ({"bogus": 1}, "bogus")])
def test_config_validation(changes, word):
    with pytest.raises(ValueError, match=word):
        TrackerConfig().replace(**changes)


def test_threshold_calibration_suggestion():
    from siamattn_ros.tools.calibrate import suggest

    on = np.array([0.90, 0.95, 0.97, 0.98, 0.99, 0.99, 0.99, 0.995])
    off = np.array([0.1, 0.3, 0.6, 0.85, 0.93])
    s = suggest(on, off)
    # t = 0.95: on >= t 7/8, off < t 5/5 -> balanced accuracy 0.9375, the best cut
    assert s["confidence_threshold"] == 0.95 and s["balanced_accuracy"] == pytest.approx(0.938, abs=1e-3)
    # LOST halfway between a typical wrong frame and a poor right one: (0.6 + q5 0.9175) / 2, under q2 and the cut.
    assert s["lost_threshold"] == pytest.approx((np.median(off) + np.quantile(on, 0.05)) / 2, abs=1e-3)
    assert s["lost_threshold"] < np.quantile(on, 0.02)
    close = suggest(on, np.array([0.1, 0.91, 0.92, 0.93, 0.94]))  # wrong frames scored like right ones: q2 binds
    assert close["lost_threshold"] == pytest.approx(min(np.quantile(on, 0.02), close["confidence_threshold"]),
                                                    abs=1e-3)
    assert s["hysteresis"] == 0.0                            # 10 % of on-target frames lie below 0.95 already
    wide_on = np.array([0.95, 0.97, 0.97, 0.98, 0.98, 0.99, 0.99, 0.99, 0.99, 0.995])
    wide = suggest(wide_on, off)                             # cut 0.95; 90 % of on-target frames reach q10 = 0.968
    assert wide["confidence_threshold"] == 0.95
    assert wide["hysteresis"] == pytest.approx(np.quantile(wide_on, 0.10) - 0.95, abs=1e-3) and wide["hysteresis"] > 0
    with pytest.raises(ValueError, match="on- and off-target"):
        suggest(on, np.array([]))


def test_config_yaml_round_trip_and_paths(tmp_path):
    cfg = TrackerConfig(confidence_threshold=0.8, lost_threshold=0.6, lost_search_rings=3, warmup=False)
    path = tmp_path / "mine.yaml"
    cfg.to_yaml(path)
    assert load_preset(path) == cfg and TrackerConfig.from_yaml(path) == cfg
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_preset(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="unknown tracker preset"):
        load_preset("vot2019")
    (tmp_path / "bad.yaml").write_text("penalty_k: 0.1\nwindow: 0.3\n")
    with pytest.raises(ValueError, match="window"):
        load_preset(tmp_path / "bad.yaml")
