"""Deformable RoI pooling against a literal scalar reference written from spec section 7.2 (float64)."""
import math

import pytest
import torch

from siamattn_ros.model.roi_pool import DeformRoIPoolingPack, c_round, deform_roi_pool


pytestmark = pytest.mark.usefixtures("single_thread")


def _c_round(v: float) -> float:
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def reference_pool(feat, rois, offsets, scale, p, s=4, trans_std=0.1):
    """One output value at a time with Python scalars for the geometry; tensor arithmetic only where autograd must
    reach the feature values and the offsets."""
    n = rois.shape[0]
    _, c, h, w = feat.shape
    out = [[[[None] * p for _ in range(p)] for _ in range(c)] for _ in range(n)]
    for r in range(n):
        b = int(rois[r, 0])
        x1 = _c_round(float(rois[r, 1])) * scale - 0.5
        y1 = _c_round(float(rois[r, 2])) * scale - 0.5
        x2 = (_c_round(float(rois[r, 3])) + 1) * scale - 0.5
        y2 = (_c_round(float(rois[r, 4])) + 1) * scale - 0.5
        rw, rh = max(x2 - x1, 0.1), max(y2 - y1, 0.1)
        bw, bh = rw / p, rh / p
        for ph in range(p):
            for pw in range(p):
                if offsets is None:
                    tx = ty = 0.0
                else:
                    tx = offsets[r, 0, ph, pw] * trans_std
                    ty = offsets[r, 1, ph, pw] * trans_std
                ws = pw * bw + x1 + tx * rw
                hs = ph * bh + y1 + ty * rh
                for ch in range(c):
                    total, count = 0.0, 0
                    for ih in range(s):
                        for iw in range(s):
                            wx = ws + iw * bw / s
                            hy = hs + ih * bh / s
                            fx = float(wx.detach()) if isinstance(wx, torch.Tensor) else wx
                            fy = float(hy.detach()) if isinstance(hy, torch.Tensor) else hy
                            if fx < -0.5 or fx > w - 0.5 or fy < -0.5 or fy > h - 0.5:
                                continue
                            if isinstance(wx, torch.Tensor):
                                wx = wx.clamp(0.0, w - 1.0)
                                hy = hy.clamp(0.0, h - 1.0)
                            else:
                                wx = min(max(wx, 0.0), w - 1.0)
                                hy = min(max(hy, 0.0), h - 1.0)
                            fwx = float(wx.detach()) if isinstance(wx, torch.Tensor) else wx
                            fhy = float(hy.detach()) if isinstance(hy, torch.Tensor) else hy
                            xa, xb = math.floor(fwx), math.ceil(fwx)
                            ya, yb = math.floor(fhy), math.ceil(fhy)
                            dx, dy = wx - xa, hy - ya
                            v = ((1 - dx) * (1 - dy) * feat[b, ch, ya, xa] + dx * (1 - dy) * feat[b, ch, ya, xb]
                                 + (1 - dx) * dy * feat[b, ch, yb, xa] + dx * dy * feat[b, ch, yb, xb])
                            total = total + v
                            count += 1
                    out[r][ch][ph][pw] = total / count if count else feat.new_zeros(())
    return torch.stack([torch.stack([torch.stack([torch.stack([torch.as_tensor(v, dtype=feat.dtype) for v in row])
                                                              for row in chan]) for chan in roi]) for roi in out])


# RoIs in crop pixels (255 space) on a 13x13 map at scale 13/255: border-crossing, tiny (< min size), interior,
# entirely outside, half-integer corners (C rounding), second batch item.
ROIS = [
    [0, -30.0, -20.0, 60.0, 50.0],
    [0, 100.4, 100.6, 100.2, 100.9],
    [0, 70.0, 80.0, 180.0, 160.0],
    [1, 200.5, 150.5, 290.5, 300.5],
    [1, -120.0, -80.0, -60.0, -20.0],
    [0, 2.5, -2.5, 40.5, 30.49],
]


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 13, 13, generator=g, dtype=torch.float64)
    rois = torch.tensor(ROIS, dtype=torch.float64)
    offsets = torch.randn(len(ROIS), 2, 3, 3, generator=g, dtype=torch.float64) * 2.0
    return feat, rois, offsets


def test_c_round_is_half_away_from_zero():
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.49, -2.49])
    assert c_round(x).tolist() == [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 2.0, -2.0]


@pytest.mark.parametrize("with_offsets", [False, True])
def test_forward_matches_scalar_reference(data, with_offsets):
    feat, rois, offsets = data
    off = offsets if with_offsets else None
    ours = deform_roi_pool(feat, rois, off, 13 / 255, 3, 4, 0.1)
    ref = reference_pool(feat, rois, off, 13 / 255, 3, 4, 0.1)
    assert ours.shape == (len(ROIS), 3, 3, 3)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    # The RoI that lies entirely outside the map has no valid sample in any bin -> zeros (not NaN).
    if not with_offsets:
        assert torch.all(ours[4] == 0)
    # Samples are dropped rather than zero-filled: a border-crossing RoI is not a shrunk average.
    assert torch.isfinite(ours).all()


def test_gradients_match_scalar_reference(data):
    feat, rois, offsets = data
    f1 = feat.clone().requires_grad_(True)
    o1 = offsets.clone().requires_grad_(True)
    f2 = feat.clone().requires_grad_(True)
    o2 = offsets.clone().requires_grad_(True)
    w = torch.randn(len(ROIS), 3, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (deform_roi_pool(f1, rois, o1, 13 / 255, 3, 4, 0.1) * w).sum().backward()
    (reference_pool(f2, rois, o2, 13 / 255, 3, 4, 0.1) * w).sum().backward()
    torch.testing.assert_close(f1.grad, f2.grad, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(o1.grad, o2.grad, rtol=1e-9, atol=1e-9)
    assert o1.grad.abs().sum() > 0 and f1.grad.abs().sum() > 0


def test_gradcheck_wrt_features_and_offsets():
    g = torch.Generator().manual_seed(2)
    feat = torch.randn(1, 2, 7, 7, generator=g, dtype=torch.float64, requires_grad=True)
    off = (torch.randn(2, 2, 2, 2, generator=g, dtype=torch.float64) * 0.7).requires_grad_(True)
    rois = torch.tensor([[0, 20.0, 30.0, 200.0, 190.0], [0, -40.0, 10.0, 90.0, 120.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f, o: deform_roi_pool(f, rois, o, 7 / 255, 2, 4, 0.1), (feat, off))


def test_differs_from_roi_align_on_border_rois(data):
    """Guards against a silent swap for torchvision's roi_align, which handles borders differently."""
    from torchvision.ops import roi_align

    feat, rois, _ = data
    ours = deform_roi_pool(feat, rois[:1], None, 13 / 255, 3, 4, 0.1)
    theirs = roi_align(feat, rois[:1], 3, 13 / 255, 4, aligned=True)
    assert (ours - theirs).abs().max() > 1e-3


def test_pack_with_zero_init_offsets_equals_plain_pool():
    torch.manual_seed(0)
    pack = DeformRoIPoolingPack(25 / 255, 4, channels=8, hidden=16, offset_input_size=2)
    feat = torch.randn(1, 8, 25, 25)
    rois = torch.tensor([[0, 10.0, 20.0, 150.0, 260.0]])
    torch.testing.assert_close(pack(feat, rois), deform_roi_pool(feat, rois, None, 25 / 255, 4))
    with torch.no_grad():
        pack.offset_fc[4].bias.normal_()
    assert (pack(feat, rois) - deform_roi_pool(feat, rois, None, 25 / 255, 4)).abs().max() > 1e-4


def test_bad_inputs_name_the_problem():
    feat = torch.zeros(1, 2, 5, 5)
    with pytest.raises(ValueError, match=r"\(n, 5\)"):
        deform_roi_pool(feat, torch.zeros(3, 4), None, 1.0, 2)
    with pytest.raises(ValueError, match="batch indices"):
        deform_roi_pool(feat, torch.tensor([[1.0, 0, 0, 2, 2]]), None, 1.0, 2)
