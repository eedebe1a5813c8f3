"""The tracker against the paper's inference (spec §10) where it used to diverge: the mask paste region of large
targets, mask and polygon while LOST under the paper presets, and the unclipped init state (boxes partly outside the
image or larger than it). Expectations are computed here from the spec's formulas, independently of the tracker code
(the sub-window crop is the one tested against the spec in test_tracker_steps.py)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from siamattn_ros.testing.networks import ScriptedNet
from siamattn_ros.tracker import Tracker, TrackerConfig, TrackState
from siamattn_ros.tracker import mask as M
from siamattn_ros.tracker.config import load_preset
from siamattn_ros.tracker.crop import crop_cv

pytestmark = pytest.mark.usefixtures("single_thread")

# Anchor shapes (w, h) in crop pixels, in anchor order (spec §5).
ANCHOR_WH = [(104, 32), (88, 40), (64, 64), (40, 80), (32, 96)]
STDS = (0.1, 0.1, 0.2, 0.2)
MASK_LOGIT = 8.0  # ScriptedNet's default mask logit


def spec_one_frame(net: ScriptedNet, cfg: TrackerConfig, box, width: int, height: int) -> dict:
    """Spec §10.2 + §10.3 steps 1-13 for one frame after init, by hand (scalar Python)."""
    x, y, w0, h0 = box
    cx0, cy0 = x + (w0 - 1) / 2, y + (h0 - 1) / 2  # init state, used as is (not clipped to the image)
    ctx = cfg.context_amount * (w0 + h0)
    s_z = math.sqrt((w0 + ctx) * (h0 + ctx))
    scale_z = 127 / s_z
    s_x = round(s_z * 255 / 127)
    aw, ah = ANCHOR_WH[net.anchor]
    ax, ay = -96 + 8 * net.col, -96 + 8 * net.row
    dx, dy, dw, dh = net.loc
    pcx, pcy, pw, ph = dx * aw + ax, dy * ah + ay, math.exp(dw) * aw, math.exp(dh) * ah
    score = 1 / (1 + math.exp(-net.fg))

    def sz(a, b):
        q = (a + b) / 2
        return math.sqrt((a + q) * (b + q))
    s_c = sz(pw, ph) / sz(w0 * scale_z, h0 * scale_z)
    r_c = (w0 / h0) / (pw / ph)
    penalty = math.exp(-(max(r_c, 1 / r_c) * max(s_c, 1 / s_c) - 1) * cfg.penalty_k)
    cx_r, cy_r = min(max(pcx + 127.5, 0), 254), min(max(pcy + 127.5, 0), 254)
    w_r, h_r = min(max(pw, 10), 254), min(max(ph, 10), 254)
    d = [v * s for v, s in zip(net.refine, STDS)]
    cx_f, cy_f, w_f, h_f = d[0] * w_r + cx_r, d[1] * h_r + cy_r, math.exp(d[2]) * w_r, math.exp(d[3]) * h_r
    crop_x0, crop_y0 = cx0 - s_x / 2, cy0 - s_x / 2
    lr = penalty * score * cfg.lr
    cx, cy = cx_f / scale_z + crop_x0, cy_f / scale_z + crop_y0
    w, h = w0 * (1 - lr) + w_f / scale_z * lr, h0 * (1 - lr) + h_f / scale_z * lr
    cx, cy = min(max(cx, 0), width - 1), min(max(cy, 0), height - 1)  # step 10
    w, h = min(max(w, 10), width - 1), min(max(h, 10), height - 1)
    # steps 12-13: mask RoI in crop pixels, then its rectangle in the image with k = s_x / 255
    mx1, my1 = (cx - crop_x0) * scale_z - w * scale_z / 2, (cy - crop_y0) * scale_z - h * scale_z / 2
    k = s_x / 255
    sub = (crop_x0 + mx1 * k, crop_y0 + my1 * k, w * scale_z * k, h * scale_z * k)
    return {"center0": (cx0, cy0), "s_x": s_x, "state": (cx - w / 2, cy - h / 2, w, h), "score": score,
            "mask_roi": (mx1, my1, mx1 + w * scale_z, my1 + h * scale_z), "sub": sub}


def full_frame_warp(prob: np.ndarray, sub, width: int, height: int, threshold: float) -> np.ndarray:
    """The authors' paste-back: one affine warp of the whole M×M mask into a width×height frame (spec step 13)."""
    sx, sy, sw, sh = sub
    s_w, s_h = prob.shape[1] / sw, prob.shape[0] / sh
    a, b = (width - 1) / (width * s_w), (height - 1) / (height * s_h)
    mat = np.array([[a, 0, a * sx * s_w], [0, b, b * sy * s_h]], np.float64)
    full = cv2.warpAffine(prob, mat, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
    return ((full > threshold) * 255).astype(np.uint8)


def _textured(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8), (width, height))


# --- 1. mask paste region ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rect,width,height", [
    ((12.5, 20.0, 204.0, 210.0), 400, 300),   # > 200 px target, inside
    ((150.0, 60.0, 320.0, 260.0), 480, 360),  # larger target reaching the right / bottom border
    ((-40.0, -30.0, 230.0, 250.0), 320, 240),  # partly outside on the left / top
])
def test_paste_of_large_masks_reaches_one_mask_pixel_beyond(rect, width, height):
    """An all-ones mask at threshold 0.2: bilinear interpolation towards the zero border exceeds 0.2 for mask
    coordinates u in (-0.8, M - 1 + 0.8), i.e. 0.8 MASK pixels (0.8·a image pixels) beyond the outer samples."""
    sx, sy, sw, sh = rect
    s_w, s_h = 64 / sw, 64 / sh
    a, b = (width - 1) / (width * s_w), (height - 1) / (height * s_h)
    cx, cy = a * sx * s_w, b * sy * s_h
    exp_x = (max(0, math.floor(cx - 0.8 * a) + 1), min(width - 1, math.ceil(cx + 63.8 * a) - 1))
    exp_y = (max(0, math.floor(cy - 0.8 * b) + 1), min(height - 1, math.ceil(cy + 63.8 * b) - 1))
    pm = M.paste_map(rect, 64, width, height)
    for paste in (lambda p: M.paste_cv(p, pm, 0.2), lambda p: M.paste_torch(torch.from_numpy(p), pm, 0.2).numpy()):
        full = M.full_frame(paste(np.ones((64, 64), np.float32)), pm, width, height)
        ys, xs = np.nonzero(full)
        assert (xs.min(), xs.max()) == exp_x and (ys.min(), ys.max()) == exp_y


@pytest.mark.parametrize("rect", [(12.5, 20.0, 204.0, 210.0), (150.0, 60.0, 320.0, 260.0), (-40.0, -30.0, 230.0, 250.0),
                                  (300.0, 200.0, 260.0, 220.0)])
def test_paste_region_of_large_masks_equals_full_frame_warp(rect):
    width, height = 480, 360
    yy, xx = np.mgrid[0:64, 0:64]
    prob = np.clip(1.8 - np.hypot((xx - 31) / 30.0, (yy - 33) / 29.0), 0, 1).astype(np.float32)  # edges ~0.75
    ref = full_frame_warp(prob, rect, width, height, 0.2)
    pm = M.paste_map(rect, 64, width, height)
    got = M.full_frame(M.paste_cv(prob, pm, 0.2), pm, width, height)
    assert np.count_nonzero(got != ref) <= 2, "region paste differs from the authors' full-frame warp"
    got_t = M.full_frame(M.paste_torch(torch.from_numpy(prob), pm, 0.2).numpy(), pm, width, height)
    assert np.count_nonzero(got_t != ref) <= max(3, np.count_nonzero(ref) // 100)


# --- 3. unclipped init state, 1. paste, end to end ------------------------------------------------------------------
CASES = {
    "large_inside": ((200.0, 120.0, 220.0, 210.0), 640, 480, dict(row=13, col=11, loc=(0.1, -0.05, 0.2, 0.1))),
    "at_top_left_border": ((0.0, 0.0, 210.0, 230.0), 640, 480, dict(row=12, col=12, loc=(0.0, 0.1, 0.0, 0.2))),
    "centre_left_of_image": ((-130.0, 100.0, 220.0, 200.0), 640, 480, dict(row=12, col=14, loc=(0.2, 0.0, 0.1, 0.0))),
    "larger_than_image": ((-60.0, -50.0, 420.0, 340.0), 320, 240, dict(row=12, col=12, loc=(0.0, 0.0, -0.3, -0.3))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_first_frame_uses_the_unclipped_init_state(case):
    box, width, height, net_args = CASES[case]
    net = ScriptedNet(refine=(0.3, -0.2, 0.1, -0.1), **net_args)
    cfg = load_preset("vot2018").replace(warmup=False)
    img = _textured(width, height)
    tr = Tracker(net, cfg)
    tr.init(img, box)
    r = tr.track(img)
    exp = spec_one_frame(net, cfg, box, width, height)
    # the search crop is centred on the init state itself, even where that centre lies outside the image
    ref_crop = crop_cv(img, exp["center0"], exp["s_x"], 255, np.array(cv2.mean(img)[:3]).astype(np.uint8))
    np.testing.assert_array_equal(net.crops[0][0].permute(1, 2, 0).numpy(), ref_crop.astype(np.float32))
    np.testing.assert_allclose(tr.state_box_xywh, exp["state"], rtol=1e-5, atol=1e-4)  # float32 decode
    assert r.confidence == pytest.approx(exp["score"], rel=1e-6)
    assert net.rois[-1][0] == "mask"
    np.testing.assert_allclose(net.rois[-1][1].numpy()[0, 1:], exp["mask_roi"], rtol=1e-5, atol=1e-4)
    # the pasted mask equals the authors' full-frame warp of the head's output onto the sub-rectangle
    prob = np.full((64, 64), 1 / (1 + math.exp(-MASK_LOGIT)), np.float32)
    ref = full_frame_warp(prob, exp["sub"], width, height, cfg.mask_threshold)
    assert ref.any()
    assert np.count_nonzero(r.mask != ref) <= 2


# --- 2. mask and polygon while LOST -----------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["otb100", "vot2018"])
def test_paper_presets_compute_mask_and_polygon_while_lost(preset):
    """Scores of 0.12 (< lost_threshold 0.2) make the state LOST after lost_frames; with the paper presets the boxes
    never depend on the state, so mask and polygon must equal those of a tracker that calls every frame TRACKING."""
    width, height = 640, 480
    box = (180.0, 120.0, 230.0, 205.0)
    img = _textured(width, height, seed=1)
    cfg = load_preset(preset).replace(warmup=False)
    assert not cfg.long_term
    never_lost = cfg.replace(confidence_threshold=0.0, hysteresis=0.0, lost_threshold=0.0)
    runs = []
    for c in (cfg, never_lost):
        tr = Tracker(ScriptedNet(fg=-2.0, loc=(0.05, 0.0, 0.1, 0.0)), c)
        tr.init(img, box)
        runs.append([tr.track(img) for _ in range(cfg.lost_frames + 2)])
    lost, ref = runs
    assert lost[-1].state == TrackState.LOST and all(r.state == TrackState.TRACKING for r in ref)
    for a, b in zip(lost, ref):
        np.testing.assert_array_equal(a.box_xywh, b.box_xywh)
        assert a.mask.any()
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.polygon, b.polygon)
    # the polygon is the rotated rectangle of the mask (here the corners of its pixel extent), not the box
    ys, xs = np.nonzero(lost[-1].mask)
    poly = lost[-1].polygon
    np.testing.assert_allclose([poly[:, 0].min(), poly[:, 0].max(), poly[:, 1].min(), poly[:, 1].max()],
                               [xs.min(), xs.max(), ys.min(), ys.max()], atol=0.01)
    assert not np.allclose(poly, M.box_polygon(lost[-1].box_xywh), atol=0.5)


def test_long_term_mode_reports_no_mask_while_lost():
    """The robot presets (long_term true) hold the state while LOST and report an empty mask and the box polygon."""
    width, height = 640, 480
    img = _textured(width, height, seed=1)
    cfg = load_preset("vot2018").replace(warmup=False, long_term=True)
    tr = Tracker(ScriptedNet(fg=-2.0), cfg)
    tr.init(img, (180.0, 120.0, 230.0, 205.0))
    r = [tr.track(img) for _ in range(cfg.lost_frames + 1)][-1]
    assert r.state == TrackState.LOST and not r.mask.any()
    np.testing.assert_array_equal(r.polygon, M.box_polygon(r.box_xywh))


# --- OTB scoring: clipped vs unclipped box --------------------------------------------------------------------------
def test_evaluate_scores_the_unclipped_state_box_on_request():
    from siamattn_ros.tools import evaluate

    box, width, height, net_args = CASES["centre_left_of_image"]
    img = _textured(width, height)
    cfg = {"warmup": False, "long_term": False}
    got = {}
    for mode in evaluate.BOX_MODES:
        net = ScriptedNet(refine=(0.3, -0.2, 0.1, -0.1), **net_args)
        t = evaluate.make_tracker("siamattn", net, "cpu", cfg, box_mode=mode)
        t.init(img, np.array(box))
        got[mode] = t.track(img, want_mask=False)[0]
    exp = spec_one_frame(net, load_preset("vot2018"), box, width, height)
    assert exp["state"][0] < 0  # the state box extends past the left edge
    np.testing.assert_allclose(got["unclipped"], exp["state"], rtol=1e-5, atol=1e-4)
    x, y, w, h = exp["state"]
    np.testing.assert_allclose(got["clipped"], [0.0, y, x + w, h], rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="box mode"):
        evaluate.make_tracker("siamattn", ScriptedNet(), "cpu", cfg, box_mode="clip")


def test_track_cli_writes_the_unclipped_box_on_request(tmp_path):
    from siamattn_ros.testing.checkpoints import random_checkpoint
    from siamattn_ros.testing.frames import synthetic_sequence
    from siamattn_ros.tools import track as track_cli

    frames, _, _ = synthetic_sequence()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames[:3]):
        cv2.imwrite(str(folder / f"{i:05d}.png"), f)
    ckpt = random_checkpoint(tmp_path / "mnv2.pth", seed=0, pretrained=False)
    rows = {}
    for mode in ("clipped", "unclipped"):
        out = tmp_path / f"{mode}.csv"
        assert track_cli.main(["--images", str(folder), "--init=-30,100,70,50", "--model", str(ckpt),
                               "--config", "vot2018", "--no-mask", "--box", mode, "--out", str(out)]) == 0
        rows[mode] = np.loadtxt(out, delimiter=",", skiprows=1, usecols=(1, 2, 3, 4))
    np.testing.assert_allclose(rows["unclipped"][0], [-30, 100, 70, 50])
    np.testing.assert_allclose(rows["clipped"][0], [0, 100, 40, 50])
    for u, c in zip(rows["unclipped"], rows["clipped"]):  # clipped = unclipped ∩ image (CSV: 2 decimals)
        x1, y1 = max(u[0], 0), max(u[1], 0)
        x2, y2 = min(u[0] + u[2], 320), min(u[1] + u[3], 240)
        np.testing.assert_allclose(c, [x1, y1, x2 - x1, y2 - y1], atol=0.011)
