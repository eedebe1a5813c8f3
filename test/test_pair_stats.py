"""Pair / sequence statistics (data/box_stats.py, tools/pair_stats.py) on hand-computed boxes; no footage needed
except for the last test, which samples a few real training pairs when the Debian imagery is installed."""
import numpy as np
import pytest

from siamattn_ros.data import box_stats as bs
from siamattn_ros.data.pairs import AugmentConfig, FramePair, crop_pair
from siamattn_ros.data.seqio import write_sequence
from siamattn_ros.data.sequence import Sequence
from siamattn_ros.tools import pair_stats

NAN = np.nan
# Side of the search crop the tracker cuts around a 20 x 20 box: p = 0.5 (20 + 20) = 20, s_z = sqrt(40 * 40) = 40,
# scaled by 255 / 127.
SEARCH_SIDE_20 = 40.0 * 255 / 127


def test_size_aspect_and_border_on_hand_boxes():
    boxes = np.array([[10, 20, 10, 40],      # area 400 in 100 x 100: sqrt(0.04) = 0.2; w/W 0.1; aspect 4
                      [0.5, 30, 20, 20],     # 0.5 px from the left edge: touches
                      [1.5, 1.5, 97, 97],    # 1.5 px from every edge: does not touch (tolerance 1 px)
                      [50, 50, 49.2, 10],    # right edge at 99.2 >= 100 - 1: touches
                      [NAN, NAN, NAN, NAN]])
    np.testing.assert_allclose(bs.relative_size(boxes[:1], (100, 100)), [0.2])
    np.testing.assert_allclose(bs.width_fraction(boxes[:1], (100, 100)), [0.1])
    np.testing.assert_allclose(bs.aspect(boxes[:2]), [4.0, 1.0])
    np.testing.assert_allclose(bs.side_px(boxes[:2]), [20.0, 20.0])
    assert bs.touches_border(boxes, (100, 100)).tolist() == [False, True, False, True, False]
    # Per-row frame sizes: the same box touches in a 60-wide frame (right edge 60 - 1 <= 60), not in a 100-wide one.
    assert bs.touches_border(np.array([[30, 30, 29.5, 10]] * 2), [(60, 100), (100, 100)]).tolist() == [True, False]
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        bs.aspect(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive"):
        bs.relative_size(boxes[:1], (0, 100))


def test_motion_and_scale_change():
    prev = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    cur = np.array([[3, 4, 10, 10],            # centre (5,5) -> (8,9): 5 px = 0.5 target sizes
                    [-5, -5, 20, 20]], float)  # same centre, area x4
    np.testing.assert_allclose(bs.motion(prev, cur), [0.5, 0.0])
    np.testing.assert_allclose(bs.scale_change(prev, cur), [0.0, np.log(4.0)])
    np.testing.assert_allclose(bs.scale_change(cur, prev), [0.0, np.log(4.0)])   # shrinking counts the same
    with pytest.raises(ValueError, match="same shape"):
        bs.motion(prev, cur[:1])


def test_outside_fraction_and_search_windows():
    windows = np.array([[-10, 0, 20, 20],      # left half outside
                        [90, 90, 20, 20],      # 10 x 10 of 20 x 20 inside
                        [10, 10, 20, 20],      # inside
                        [200, 0, 20, 20]],     # fully outside
                       float)
    np.testing.assert_allclose(bs.outside_fraction(windows, (100, 100)), [0.5, 0.75, 0.0, 1.0])
    w = bs.search_windows(np.array([[40, 40, 20, 20]], float))[0]
    np.testing.assert_allclose(w, [50 - SEARCH_SIDE_20 / 2, 50 - SEARCH_SIDE_20 / 2, SEARCH_SIDE_20, SEARCH_SIDE_20])
    assert np.isnan(bs.search_windows(np.array([[NAN] * 4]))).all()


def test_grey_quantiles_fraction():
    img = np.zeros((4, 5, 3), np.uint8)
    img[..., :] = np.arange(5, dtype=np.uint8)[None, :, None]
    assert bs.is_grey(img) and bs.is_grey(img[..., 0])
    img[0, 0, 2] = 9
    assert not bs.is_grey(img)
    assert bs.quantiles(np.r_[np.arange(1.0, 12.0), NAN, np.inf]) == pytest.approx((2.0, 6.0, 10.0))
    assert all(np.isnan(bs.quantiles(np.array([NAN]))))
    assert bs.fraction(np.array([True, False, False, True])) == 0.5
    assert np.isnan(bs.fraction(np.array([], bool)))


def _still_aug() -> AugmentConfig:
    return AugmentConfig(template_shift=0, template_scale=0, search_shift=0, search_scale=0, blur=0, flip=0, color=0,
                         gray=0)


def test_crop_view_reads_back_the_search_window():
    """The search window recovered from crop_pair's output is the one crop_pair cut (no shift: centred on the box)."""
    img = np.full((100, 100, 3), 90, np.uint8)
    rng = np.random.default_rng(0)
    centre = FramePair(img, np.array([40, 40, 20, 20.]), img, np.array([40, 40, 20, 20.]))
    off, pad = pair_stats._crop_view(centre, crop_pair(rng, centre, _still_aug()), 255)
    assert off == pytest.approx(0.0, abs=1e-9) and pad == pytest.approx(0.0, abs=1e-9)
    corner = FramePair(img, np.array([0, 0, 20, 20.]), img, np.array([0, 0, 20, 20.]))
    off, pad = pair_stats._crop_view(corner, crop_pair(rng, corner, _still_aug()), 255)
    inside = 10 + SEARCH_SIDE_20 / 2   # window [10 - side/2, 10 + side/2]^2, the image starts at 0
    assert off == pytest.approx(0.0, abs=1e-9)
    assert pad == pytest.approx(1 - (inside / SEARCH_SIDE_20) ** 2)
    # With a search shift the target is off the crop's centre by up to shift crop pixels per axis, i.e. up to
    # sqrt(2) * 64 / 63.5 target sizes for a square target (its side in the crop is 127 / 2).
    aug = _still_aug()
    aug.search_shift = 64.0
    offs = [pair_stats._crop_view(centre, crop_pair(rng, centre, aug), 255)[0] for _ in range(20)]
    assert 0.0 < max(offs) <= np.sqrt(2) * 64 / 63.5 + 1e-6


def test_sequence_samples_and_tables(tmp_path, capsys, monkeypatch):
    frames = [np.dstack([np.full((80, 100), v, np.uint8) for v in (30, 120, 200)]) for _ in range(3)]
    boxes = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [NAN] * 4])
    folder = write_sequence(Sequence(frames, boxes, None, np.array([True, True, False]), name="toy"), tmp_path / "toy")
    s = pair_stats.sequence_samples(folder)
    assert len(s.box) == 2 and s.tmpl_at_border == [False] and s.grey_frame == [False, False]
    np.testing.assert_allclose(s.offset, [2 / 20])                       # one step (frame 0 -> 1) in view
    inside = 20 + SEARCH_SIDE_20 / 2                                     # window around box 0's centre (20, 20)
    np.testing.assert_allclose(s.pad, [1 - (inside / SEARCH_SIDE_20) ** 2])
    np.testing.assert_allclose(s.step_px, [2.0])
    cells = pair_stats.summarise(s)
    assert cells["n"] == "2" and cells["frame"] == "100×80" and cells["border_s"] == "0 %"
    lines = pair_stats.table([s, s])
    assert len(lines) == 2 + len(pair_stats.ROWS)
    assert {line.count("|") for line in lines} == {4}                   # no stray '|' in a label or cell
    monkeypatch.chdir(tmp_path)                                          # the default --config from anywhere
    assert pair_stats.main(["--pairs", "0", "--sequences", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| real (all frames) | toy |" in out


def test_source_names_and_bad_arguments(tmp_path):
    assert pair_stats.source_names([{"type": "planar"}, {"type": "synthetic"}]) == ["planar", "synthetic"]
    assert pair_stats.source_names([{"type": "synthetic"}, {"type": "synthetic"}]) == ["synthetic#0", "synthetic#1"]
    with pytest.raises(SystemExit, match="--pairs"):
        pair_stats.main(["--pairs", "-1"])
    with pytest.raises(SystemExit, match="nope.yaml"):
        pair_stats.main(["--config", str(tmp_path / "nope.yaml"), "--pairs", "1"])


def test_sample_pairs_from_the_training_config(tmp_path):
    from siamattn_ros.data import sources

    if not sources.available():
        pytest.skip("opencv-doc imagery not installed (apt-get install opencv-doc)")
    cfg = tmp_path / "t.yaml"
    cfg.write_text("sources:\n  - {type: synthetic, weight: 1.0, split: train}\naugment: {gray: 1.0}\n")
    (s,) = pair_stats.sample_pairs(str(cfg), 3, seed=1)
    assert s.name == "synthetic" and len(s.box) == len(s.offset) == len(s.pad) == 3
    assert all(s.grey_crop)                                             # gray: 1.0 reaches every crop
    assert all(0.0 <= p <= 1.0 for p in s.pad)
    np.testing.assert_allclose(np.array(s.frame_wh), [[384, 384]] * 3)  # SyntheticPairSource's frame size


def test_attribute_flags_of_pairs_and_sequences(tmp_path):
    pairs = pair_stats.Samples("hand")
    for tb, sb in (([0, 0, 10, 10], [30, 0, 10, 20]),      # area 200; centre moves 30.4 px = 3.04 sizes; x 0: edge
                   ([40, 40, 20, 20], [41, 40, 40, 40])):   # area x4 (SV); moves 14.9 px = 0.74 sizes
        tb, sb = np.array(tb, float), np.array(sb, float)
        pairs.frame_wh.append((100, 100))
        pairs.tmpl_box.append(tb)
        pairs.box.append(sb)
        pairs.step_prev.append(tb)
        pairs.step_cur.append(sb)
        pairs.step_px.append(float(np.hypot(*(sb[:2] + sb[2:] / 2 - tb[:2] - tb[2:] / 2))))
        pairs.tmpl_at_border.append(bool(bs.touches_border(tb, (100, 100))[0]))
    f = pair_stats.attribute_flags(pairs)
    assert {k: v.tolist() for k, v in f.items()} == {
        "lr_otb": [True, False], "lr_lasot": [True, False], "fm_otb": [True, False], "fm_lasot": [True, False],
        "sv": [False, True],     # pair 1: area ratio exactly 2 is inside [1/2, 2]
        "arc": [False, False],   # pair 1: aspect 1 -> 0.5, on the boundary
        "border": [True, False], "absent": [False, False]}
    frames = [np.full((80, 100, 3), 60, np.uint8)] * 3
    boxes = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [NAN] * 4])   # area 400: not < 400, but < 1000
    folder = write_sequence(Sequence(frames, boxes, None, np.array([True, True, False]), name="toy"), tmp_path / "toy")
    seq = pair_stats.sequence_samples(folder)
    assert pair_stats.attribute_flags(seq) == {"lr_otb": False, "lr_lasot": True, "fm_otb": False, "fm_lasot": False,
                                               "sv": False, "arc": False, "border": False, "absent": True}
    lines = pair_stats.attribute_table([pairs], [seq, seq])
    assert lines[0] == "| attribute | hand (% of pairs) | real: sequences of 2 | toy | toy |"
    row = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in lines[2:]}
    assert row["LR (OTB): box area < 400 px"] == ["50 %", "0", "·", "· |"]
    assert row["target absent (out of view / fully hidden)"] == ["0 %", "2", "yes", "yes |"]
