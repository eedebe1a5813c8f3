"""RPN label assignment, RoI sampling, refinement targets and the four losses on hand-computed cases."""
import math

import numpy as np
import pytest
import torch

from siamattn_ros.train.losses import box_refine_loss, mask_refine_loss, rpn_cls_loss, rpn_loc_loss
from siamattn_ros.train.schedule import lr_at, lr_at_fraction
from siamattn_ros.train.targets import (AnchorTargets, TargetConfig, box_refine_targets, decode_rpn,
                                        mask_refine_targets, sample_rois)

RATIOS = (0.33, 0.5, 1.0, 2.0, 3.0)


def make_targets(**kw) -> AnchorTargets:
    return AnchorTargets(8, RATIOS, (8.0,), 25, 255, TargetConfig(**kw))


def test_anchor_geometry_matches_spec():
    t = make_targets()
    a = t.anchors_cxcywh
    assert a.shape == (5, 4, 25, 25)
    np.testing.assert_allclose(a[:, 2, 0, 0], [104, 88, 64, 40, 32])
    np.testing.assert_allclose(a[:, 3, 0, 0], [32, 40, 64, 80, 96])
    # Grid centre cell sits on the crop centre (127.5), spacing 8.
    assert a[0, 0, 12, 12] == 127.5 and a[0, 1, 12, 12] == 127.5 and a[0, 0, 12, 13] == 135.5


def test_training_targets_decode_back_through_the_tracker_decode():
    """Training targets and inference decode share one anchor generator and one layout: the deltas assigned to the
    positive anchors, laid out as the network's loc output, decode (tracker/decode.py) back to the truth box."""
    from siamattn_ros.model.anchors import flat_anchors
    from siamattn_ros.tracker import decode as D

    t = make_targets()
    anchors = flat_anchors(8, RATIOS, (8.0,), 25)
    np.testing.assert_array_equal(anchors.reshape(4, 5, 25, 25),
                                  (t.anchors_cxcywh - [[[[127.5]], [[127.5]], [[0]], [[0]]]]).transpose(1, 0, 2, 3))
    truth = np.array([100.0, 110.0, 160.0, 150.0])  # x1, y1, x2, y2 in the 255 crop
    cls, delta, _ = t(truth, negative=False, rng=np.random.default_rng(0))
    assert (cls == 1).any()
    loc = torch.from_numpy(delta).reshape(1, 20, 25, 25)  # channels dx x A, dy x A, dw x A, dh x A
    boxes = D.decode_boxes(loc, torch.from_numpy(anchors)).numpy()  # centre-relative cx, cy, w, h
    for n in np.flatnonzero(cls.ravel() == 1):
        cx, cy, w, h = boxes[:, n]
        np.testing.assert_allclose([cx + 127.5 - w / 2, cy + 127.5 - h / 2, cx + 127.5 + w / 2, cy + 127.5 + h / 2],
                                   truth, atol=1e-3)


def test_positive_pair_labels_and_deltas():
    t = make_targets()
    rng = np.random.default_rng(0)
    box = np.array([127.5 - 32, 127.5 - 32, 127.5 + 32, 127.5 + 32])  # exactly the 64x64 centre anchor
    cls, delta, w = t(box, False, rng)
    assert cls[2, 12, 12] == 1
    np.testing.assert_allclose(delta[:, 2, 12, 12], 0.0, atol=1e-6)
    # Neighbour one cell right: dx = -8 / 64.
    assert delta[0, 2, 12, 13] == pytest.approx(-8 / 64)
    npos, nneg = int((cls == 1).sum()), int((cls == 0).sum())
    assert 1 <= npos <= 16 and nneg == 48
    assert w.sum() == pytest.approx(1.0) and (w[cls != 1] == 0).all()
    # Every positive has IoU > 0.6, every negative < 0.3.
    iou = t.iou(box)
    assert (iou[cls == 1] > 0.6).all() and (iou[cls == 0] < 0.3).all()


def test_negative_pair_only_local_negatives():
    t = make_targets()
    box = np.array([40.0, 40.0, 80.0, 80.0])  # centre 60 -> cell round((60 - 127.5) / 8) + 12 = 4
    cls, delta, w = t(box, True, np.random.default_rng(1))
    assert (cls == 1).sum() == 0 and (cls == 0).sum() == 16 and w.sum() == 0
    rows, cols = np.nonzero((cls == 0).any(axis=0))
    assert rows.min() >= 1 and rows.max() <= 7 and cols.min() >= 1 and cols.max() <= 7


def test_decode_rpn_zero_deltas_give_clipped_anchors():
    t = make_targets()
    anchors = torch.from_numpy(t.anchors_cxcywh).float()
    boxes = decode_rpn(torch.zeros(1, 20, 25, 25), anchors, 255)
    assert boxes.shape == (1, 3125, 4)
    centre = boxes[0, 2 * 625 + 12 * 25 + 12]  # anchor 2 (64x64), cell (12, 12)
    torch.testing.assert_close(centre, torch.tensor([95.5, 95.5, 159.5, 159.5]))


def test_sample_rois_foreground_only_and_repeats():
    gt = torch.tensor([[100.0, 100.0, 160.0, 160.0], [0.0, 0.0, 50.0, 50.0]])
    props = torch.tensor([[[100.0, 100.0, 158.0, 160.0], [0.0, 200.0, 30.0, 250.0]],
                          [[0.0, 0.0, 50.0, 50.0], [100.0, 100.0, 200.0, 200.0]]])
    cfg = TargetConfig(roi_per_img=5)
    rois, gts = sample_rois(props, gt, torch.tensor([True, False]), cfg, torch.Generator().manual_seed(0))
    assert rois.shape == (5, 5) and (rois[:, 0] == 0).all()  # image 1 is a negative pair: no RoIs
    assert (gts == gt[0]).all()
    # Only the two foreground candidates (the near-GT proposal and the GT itself), each at least twice.
    keys = {tuple(r.tolist()) for r in rois[:, 1:]}
    assert keys == {(100.0, 100.0, 158.0, 160.0), (100.0, 100.0, 160.0, 160.0)}


def test_box_and_mask_targets():
    rois = torch.tensor([[0.0, 10.0, 20.0, 30.0, 60.0]])  # w 20, h 40, centre (20, 40)
    gts = torch.tensor([[12.0, 20.0, 32.0, 60.0]])         # centre (22, 40), w 20, h 40
    d = box_refine_targets(rois, gts, (0.1, 0.1, 0.2, 0.2))
    torch.testing.assert_close(d, torch.tensor([[(2 / 20) / 0.1, 0.0, 0.0, 0.0]]))
    mask = torch.zeros(1, 255, 255)
    mask[0, :, :128] = 1  # left half
    t = mask_refine_targets(mask, torch.tensor([[0.0, 96.0, 96.0, 160.0, 160.0]]), 64)
    assert t.shape == (1, 1, 64, 64)
    assert t[0, 0, :, :31].min() == 1 and t[0, 0, :, 33:].max() == 0


def test_rpn_losses_hand_computed():
    cls = torch.zeros(1, 10, 2, 2)
    labels = torch.full((1, 5, 2, 2), -1)
    labels[0, 0, 0, 0] = 1
    labels[0, 1, 0, 0] = 0
    assert float(rpn_cls_loss(cls, labels)) == pytest.approx(math.log(2))
    cls[0, 5, 0, 0] = 10.0  # confident foreground on the positive anchor: pos loss ~0, neg loss still log 2
    assert float(rpn_cls_loss(cls, labels)) == pytest.approx(0.5 * math.log(2), abs=1e-4)
    loc = torch.zeros(2, 20, 2, 2)
    target = torch.zeros(2, 4, 5, 2, 2)
    target[0, :, 3, 1, 1] = torch.tensor([1.0, -2.0, 0.5, 0.5])
    weight = torch.zeros(2, 5, 2, 2)
    weight[0, 3, 1, 1] = 0.5
    assert float(rpn_loc_loss(loc, target, weight)) == pytest.approx(4.0 * 0.5 / 2)


def test_refinement_losses():
    assert float(box_refine_loss(torch.tensor([[0.5, 3.0]]), torch.zeros(1, 2))) == pytest.approx(
        (0.5 * 0.25 + 2.5) / 2)
    logits = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0]).view(1, 1, 1, 10)
    target = torch.tensor([1.0] * 9 + [0.0]).view(1, 1, 1, 10)
    # Losses: 9 x log 2 and one ~10; OHEM keeps 7: the 10 and six log 2.
    expected = (10.0000454 + 6 * math.log(2)) / 7
    assert float(mask_refine_loss(logits, target, 0.7)) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="1.5"):
        mask_refine_loss(logits, target, 1.5)


def test_lr_schedule_warmup_then_log_decay():
    assert lr_at(0, 100, 0.005, 0.0005, 0.001, 10) == pytest.approx(0.001)
    assert lr_at(10, 100, 0.005, 0.0005, 0.001, 10) == pytest.approx(0.005)
    assert lr_at(99, 100, 0.005, 0.0005, 0.001, 10) == pytest.approx(0.0005)
    mid = lr_at(10 + 89 // 2, 100, 0.005, 0.0005, 0.001, 10)
    assert 0.0005 < mid < 0.005
    assert lr_at_fraction(0.5, 50, 0.01, 0.0001, 0.001, 10) == pytest.approx(0.001)
