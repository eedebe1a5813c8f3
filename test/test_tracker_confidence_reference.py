"""TrackerConfig.reference_confidence: each target's confidence scaled to the model's typical on-target level, from
the quality head's estimate of the init box on the init frame; and the calibrate tool's choice of that level."""
import numpy as np
import pytest
import torch

from siamattn_ros.tools.calibrate import reference_level
from siamattn_ros.tracker.build import build_tracker

pytestmark = pytest.mark.usefixtures("single_thread")


def _frames(n: int = 6, size=(240, 320)) -> tuple:
    rng = np.random.default_rng(4)
    bg = rng.integers(60, 120, (*size, 3), dtype=np.uint8)
    patch = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    frames, boxes = [], []
    for i in range(n):
        f = bg.copy()
        x, y = 120 + 3 * i, 90 + 2 * i
        f[y:y + 40, x:x + 56] = patch
        frames.append(f)
        boxes.append([x, y, 56, 40])
    return frames, np.array(boxes, float)


@pytest.fixture(scope="module")
def trackers():
    # Thresholds 0 and long_term off: the state is never held, so both trackers see the same boxes every frame.
    common = dict(long_term=False, confidence_threshold=0.0, lost_threshold=0.0, hysteresis=0.0, warmup=False)
    plain = build_tracker("embedded", device="cpu", config="embedded")
    plain.config = plain.config.replace(**common)
    scaled = build_tracker("embedded", device="cpu", config="embedded")
    return plain, scaled, common


def test_init_quality_is_the_heads_estimate_of_the_init_box(trackers):
    plain, _, _ = trackers
    frames, boxes = _frames()
    assert not plain.initialized and np.isnan(plain.init_quality)  # NaN before any init
    plain.init(frames[0], boxes[0])
    assert np.isnan(plain.init_quality)          # reference_confidence 0: init() spends no extra network pass
    q = plain.measure_init_quality(frames[0])
    assert 0.0 < q < 1.0 and plain.init_quality == q
    # Independently: the init frame's search crop centred on the target, the box at the crop's centre.
    m = plain.model
    s_z = plain._context_side(1.0)
    scale = plain.exemplar_size / s_z
    side = round(s_z * plain.instance_size / plain.exemplar_size)
    x = plain._crop(frames[0], plain._center, side, plain.instance_size)
    c = (plain.instance_size - 1) / 2
    w, h = boxes[0][2] * scale, boxes[0][3] * scale
    with torch.inference_mode():
        m.track(x)
        expect = float(torch.sigmoid(m.box_quality(torch.tensor([[0.0, c - w / 2, c - h / 2, c + w / 2,
                                                                   c + h / 2]])).float()))
    assert q == pytest.approx(expect, abs=1e-5)


@pytest.mark.parametrize("reference", [0.9, 0.3, 0.999])
def test_published_confidence_is_scaled_by_reference_over_init_quality(trackers, reference):
    plain, scaled, common = trackers
    scaled.config = scaled.config.replace(reference_confidence=reference, **common)
    frames, boxes = _frames()
    plain.init(frames[0], boxes[0])
    plain.measure_init_quality(frames[0])
    scaled.init(frames[0], boxes[0])             # measures it itself (reference_confidence > 0)
    assert scaled.init_quality == pytest.approx(plain.init_quality, abs=1e-6)
    factor = min(max(reference / plain.init_quality, 2 / 3), 1.5)
    assert scaled.confidence_scale() == pytest.approx(factor) and plain.confidence_scale() == 1.0
    for f in frames[1:]:
        a, b = plain.track(f, want_mask=False), scaled.track(f, want_mask=False)
        np.testing.assert_allclose(b.box_xywh, a.box_xywh, atol=1e-4)
        assert b.confidence == pytest.approx(min(1.0, a.confidence * factor), abs=1e-5)


def test_reference_level_is_the_median_init_quality(trackers):
    plain, _, _ = trackers

    class Seq:
        def __init__(self, shift):
            frames, boxes = _frames(2)
            self.frames = [np.roll(f, shift, axis=1) for f in frames]
            self.boxes_xywh = boxes + [shift, 0, 0, 0]

    seqs = [Seq(0), Seq(40), Seq(-60)]
    levels = []
    for s in seqs:
        plain.init(s.frames[0], s.boxes_xywh[0])
        levels.append(plain.measure_init_quality(s.frames[0]))
    assert reference_level(plain, seqs) == pytest.approx(float(np.median(levels)))


def test_measure_init_quality_only_right_after_init(trackers):
    plain, _, _ = trackers
    frames, boxes = _frames()
    plain.init(frames[0], boxes[0])
    plain.track(frames[1], want_mask=False)
    with pytest.raises(RuntimeError, match="must follow init"):
        plain.measure_init_quality(frames[1])


def test_reference_confidence_is_validated():
    from siamattn_ros.tracker.config import TrackerConfig
    with pytest.raises(ValueError, match="reference_confidence"):
        TrackerConfig(reference_confidence=1.5)
