"""The box-quality (IoU prediction) head that gives the embedded model its confidence, its training targets, the
fine-tuning checkpoint load, and the planar camera-motion training pairs."""
import numpy as np
import pytest
import torch

from siamattn_ros.data import sources
from siamattn_ros.model import CheckpointError, build_model, load_checkpoint, paper_config, save_checkpoint
from siamattn_ros.train.losses import box_quality_loss
from siamattn_ros.train.targets import TargetConfig, sample_quality_rois

pytestmark = pytest.mark.usefixtures("single_thread")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_quality_rois_targets_are_their_iou_and_cover_good_and_bad_boxes():
    g = torch.Generator().manual_seed(0)
    gt = torch.tensor([[100.0, 90.0, 160.0, 170.0], [40.0, 50.0, 80.0, 70.0]])
    proposals = torch.rand(2, 50, 2, generator=g) * 200
    proposals = torch.cat([proposals, proposals + 10 + torch.rand(2, 50, 2, generator=g) * 80], 2)
    cfg = TargetConfig(quality_per_img=8)
    ious = []
    for _ in range(40):
        rois, target = sample_quality_rois(proposals, gt, torch.tensor([False, False]), cfg, g, 255)
        assert rois.shape == (16, 5) and target.shape == (16,)
        assert rois[:8, 0].eq(0).all() and rois[8:, 0].eq(1).all()
        for r, t in zip(rois.numpy(), target.numpy()):
            assert t == pytest.approx(_iou(r[1:], gt[int(r[0])].numpy()), abs=1e-5)
        # The grown boxes (slots 4-5 of each image) are 1.5-4x the target's sides.
        gw = (gt[:, 2] - gt[:, 0]).repeat_interleave(8)
        w = rois[:, 3] - rois[:, 1]
        grown = torch.tensor([k % 8 in (4, 5) for k in range(16)])
        assert (w[grown] >= 1.5 * gw[grown] - 1e-4).all() and (w[grown] <= 4.0 * gw[grown] + 1e-4).all()
        ious.append(target)
    ious = torch.cat(ious)
    assert (ious >= 0.5).float().mean() > 0.15 and (ious < 0.2).float().mean() > 0.25


def test_quality_rois_with_the_image_extent_include_boxes_swollen_to_the_image():
    g = torch.Generator().manual_seed(3)
    gt = torch.tensor([[90.0, 120.0, 170.0, 175.0]])                   # a large target at the image's bottom edge
    extent = torch.tensor([[-60.0, -40.0, 230.0, 180.0]])            # the image ends inside the crop (right, bottom)
    proposals = torch.tensor([[[10.0, 10.0, 60.0, 60.0]] * 20])
    cfg = TargetConfig(quality_per_img=12)
    rois, target = sample_quality_rois(proposals, gt, torch.tensor([False]), cfg, g, 255, extent)
    boxes = rois[:, 1:]
    assert torch.equal(boxes[-1], extent[0])                          # the whole visible image is one of them
    assert target[-1] == pytest.approx(_iou(extent[0].numpy(), gt[0].numpy()), abs=1e-5) and target[-1] < 0.3
    cut = boxes[[7]]                                                  # grown slots 6-8; every second one is cut
    assert (cut[:, :2] >= extent[0, :2] - 1e-4).all() and (cut[:, 2:] <= extent[0, 2:] + 1e-4).all()
    for r, t in zip(rois.numpy(), target.numpy()):
        assert t == pytest.approx(_iou(r[1:], gt[0].numpy()), abs=1e-5)


def test_quality_rois_with_scores_include_the_best_scoring_look_alike_and_the_best_proposal():
    g = torch.Generator().manual_seed(5)
    gt = torch.tensor([[100.0, 90.0, 160.0, 170.0]])
    target_box = [102.0, 92.0, 158.0, 168.0]                          # IoU ~0.87 with the truth
    look_alike = [20.0, 30.0, 80.0, 110.0]                            # same size elsewhere: IoU 0
    background = [[5.0 * k, 200.0, 5.0 * k + 30.0, 240.0] for k in range(30)]
    proposals = torch.tensor([[target_box, look_alike] + background])
    scores = torch.cat([torch.tensor([[0.95, 0.9]]), torch.full((1, 30), 0.05)], 1)
    cfg = TargetConfig(quality_per_img=16)
    rois, target = sample_quality_rois(proposals, gt, torch.tensor([False]), cfg, g, 255, None, scores)
    boxes = rois[:, 1:]
    # Slots 12.. are the proposals: the look-alike first (target 0), then the tracker's own pick (target ~0.87).
    assert boxes[12].tolist() == look_alike and target[12] == 0.0
    assert boxes[13].tolist() == target_box and target[13] > 0.8
    # On a negative pair the best-scoring box is the look-alike by definition: every target stays 0.
    _, neg_target = sample_quality_rois(proposals, gt, torch.tensor([True]), cfg, g, 255, None, scores)
    assert torch.all(neg_target == 0)
    # Without scores the proposals are drawn at random, as before.
    rois_random, _ = sample_quality_rois(proposals, gt, torch.tensor([False]), cfg, g, 255)
    assert rois_random.shape == rois.shape


def test_quality_targets_of_a_negative_pair_are_zero():
    g = torch.Generator().manual_seed(1)
    gt = torch.tensor([[100.0, 90.0, 160.0, 170.0]])
    proposals = torch.tensor([[[100.0, 90.0, 160.0, 170.0]] * 10])
    _, target = sample_quality_rois(proposals, gt, torch.tensor([True]), TargetConfig(), g, 255)
    assert torch.all(target == 0)


def test_box_quality_loss_is_smallest_at_the_target():
    t = torch.tensor([0.9, 0.1])
    right = box_quality_loss(torch.logit(t), t)
    wrong = box_quality_loss(torch.logit(1 - t), t)
    assert right < wrong


def test_embedded_model_has_the_head_and_it_depends_on_the_template():
    torch.manual_seed(0)
    m = build_model("siamattn_mnv2", pretrained=False).eval()
    assert m.iou_head is not None and build_model(paper_config(), pretrained=False).iou_head is None
    with pytest.raises(RuntimeError, match="before template"):
        m.box_quality(torch.tensor([[0.0, 10, 10, 50, 50]]))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 255, 255, generator=g) * 255
    rois = torch.tensor([[0.0, 90, 90, 160, 160], [0.0, 0, 0, 254, 254]])
    with torch.no_grad():
        torch.nn.init.normal_(m.iou_head.modulation.weight, std=0.5)
        outs = []
        for seed in (1, 2):
            m.template(torch.rand(1, 3, 127, 127, generator=torch.Generator().manual_seed(seed)) * 255)
            m.track(x)
            outs.append(m.box_quality(rois))
    assert outs[0].shape == (2,) and torch.isfinite(outs[0]).all()
    assert not torch.allclose(outs[0], outs[1])       # the same boxes, another template: another quality


def test_quality_head_context_sees_outside_the_box():
    from siamattn_ros.model.heads import BoxQualityHead

    torch.manual_seed(0)
    head = BoxQualityHead(8, 4, 3, 0.1, 16, context=2.0).eval()
    feats = torch.zeros(1, 8, 25, 25)
    feats[:, :, 10:15, 10:15] = 1.0                                    # an "object" covering cells 10-14
    tvec = torch.zeros(1, 4)
    roi = torch.tensor([[0.0, 100.0, 100.0, 150.0, 150.0]])           # exactly the object
    base = head(feats, tvec, roi)
    around = feats.clone()
    around[:, :, 6:9, :] = 3.0                                         # change only what lies outside the box
    assert not torch.allclose(head(around, tvec, roi), base)
    plain = BoxQualityHead(8, 4, 3, 0.1, 16, context=0.0).eval()
    assert torch.allclose(plain(around, tvec, roi), plain(feats, tvec, roi))
    with pytest.raises(ValueError, match="iou_context"):
        BoxQualityHead(8, 4, 3, 0.1, 16, context=0.5)


def test_fine_tuning_load_restarts_a_new_head_of_an_older_design(tmp_path):
    old_cfg = build_model("siamattn_mnv2", pretrained=False).cfg
    old_cfg.iou_context = 0.0                                          # model v2's head: the box alone
    old = build_model(old_cfg, pretrained=False)
    save_checkpoint(old, tmp_path / "v2.pth")
    new = build_model("siamattn_mnv2", pretrained=False)
    assert new.cfg.iou_context > 0
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_checkpoint(new, tmp_path / "v2.pth")
    before = {k: v.clone() for k, v in new.iou_head.state_dict().items()}
    load_checkpoint(new, tmp_path / "v2.pth", new_modules=("iou_head",))
    for key, value in new.iou_head.state_dict().items():              # the whole head fresh, none of it mixed
        assert torch.equal(value, before[key]), key
    for key, value in old.state_dict().items():
        if not key.startswith("iou_head."):
            assert torch.equal(new.state_dict()[key], value), key
    loaded = build_model(old_cfg, pretrained=False)                    # an older file still loads as it was saved
    load_checkpoint(loaded, tmp_path / "v2.pth")


def test_fine_tuning_load_accepts_only_the_named_new_head(tmp_path):
    old_cfg = build_model("siamattn_mnv2", pretrained=False).cfg
    old_cfg.iou_head = False
    old = build_model(old_cfg, pretrained=False)
    save_checkpoint(old, tmp_path / "old.pth")
    new = build_model("siamattn_mnv2", pretrained=False)
    with pytest.raises(CheckpointError, match="iou_head"):
        load_checkpoint(new, tmp_path / "old.pth")
    before = new.iou_head.out.weight.clone()
    load_checkpoint(new, tmp_path / "old.pth", new_modules=("iou_head",))
    assert torch.equal(new.iou_head.out.weight, before)
    for key, value in old.state_dict().items():                         # everything else comes from the file
        assert torch.equal(new.state_dict()[key], value), key


needs_data = pytest.mark.skipif(not sources.available(), reason="opencv-doc images not installed (apt-get install "
                                "opencv-doc visp-images-data)")


@needs_data
def test_planar_pairs_have_real_tracking_statistics():
    from siamattn_ros.data.pairs import PlanarPairSource
    from siamattn_ros.data.shapes import mask_box_xywh

    src = PlanarPairSource(gray_prob=0.2)
    rng = np.random.default_rng(0)
    fw, fh = src.frame_size
    widths, border, aspects, grey = [], 0, [], 0
    n = 60
    for _ in range(n):
        p = src.sample(rng)
        assert p.template_image.shape == (fh, fw, 3) and p.search_image.shape == (fh, fw, 3)
        np.testing.assert_allclose(p.search_box, mask_box_xywh(p.search_mask))      # truth = visible mask's box
        for b in (p.template_box, p.search_box):
            assert b[0] >= 0 and b[1] >= 0 and b[0] + b[2] <= fw + 1e-6 and b[1] + b[3] <= fh + 1e-6
        b = p.search_box
        widths.append(b[2] / fw)
        aspects.append(max(b[2] / b[3], b[3] / b[2]))
        border += b[0] <= 0.5 or b[1] <= 0.5 or b[0] + b[2] >= fw - 0.5 or b[1] + b[3] >= fh - 0.5
        grey += bool(np.all(p.search_image[..., 0] == p.search_image[..., 1]))
    widths = np.array(widths)
    assert widths.max() > 0.5 and (widths * fw <= 25).sum() >= 3         # large and small targets
    assert border / n > 0.2                                             # touching / crossing the frame border
    assert max(aspects) > 3.0 and grey >= 3


@needs_data
def test_training_never_reads_evaluation_footage():
    footage = sources.evaluation_footage()
    assert footage, "data/annotations names its footage in meta_info.ini"
    for split in sources.SPLITS:
        assert not any(sources.is_evaluation_footage(p) for p in sources.still_paths(split))


def test_tracker_confidence_is_the_quality_of_the_refined_box():
    from siamattn_ros.tracker import Tracker, TrackerConfig

    torch.manual_seed(0)
    model = build_model("siamattn_mnv2", pretrained=False)
    with torch.no_grad():
        torch.nn.init.normal_(model.iou_head.out.weight, std=0.5)   # a head that does not answer ~0.5 everywhere
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    tracker = Tracker(model, TrackerConfig(warmup=False))
    assert tracker.has_quality_head
    tracker.init(frame, (130.0, 90.0, 60.0, 50.0))
    result = tracker.track(frame)
    assert 0.0 < result.confidence < 1.0 and result.confidence != pytest.approx(tracker.last_score)
    # Independently: the head on the refined box of the same search step.
    x = tracker._crop(frame, tracker._center, 120, 255)
    params = torch.tensor([60.0, 50.0, 0.04, 0.44, 0.0])
    with torch.inference_mode():
        out = tracker._search_step(x, params)
        cx, cy, w, h = out[6:10].tolist()
        expected = torch.sigmoid(model.box_quality(torch.tensor([[0.0, cx - w / 2, cy - h / 2, cx + w / 2,
                                                                   cy + h / 2]])))
    assert float(out[10]) == pytest.approx(float(expected), abs=1e-6)


def test_tracker_without_quality_head_reports_the_rpn_score():
    from siamattn_ros.tracker import Tracker, TrackerConfig

    torch.manual_seed(0)
    model = build_model("siamattn_mnv2", pretrained=False)
    model.iou_head = None
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    tracker = Tracker(model, TrackerConfig(warmup=False))
    tracker.init(frame, (130.0, 90.0, 60.0, 50.0))
    result = tracker.track(frame)
    assert not tracker.has_quality_head and result.confidence == pytest.approx(tracker.last_score)


def test_bench_tracker_compares_two_checkpoints_side_by_side(tmp_path, capsys):
    from siamattn_ros.testing.checkpoints import random_checkpoint, tiny_model
    from siamattn_ros.tools import bench_tracker

    a = random_checkpoint(tmp_path / "a.pth", seed=0, model={**tiny_model(), "iou_head": False}, pretrained=False)
    b = random_checkpoint(tmp_path / "b.pth", seed=1, model={**tiny_model(), "iou_head": True}, pretrained=False)
    assert bench_tracker.main(["--model", str(a), "--checkpoint", str(a), "--vs-checkpoint", str(b), "--frames", "2",
                               "--rounds", "1", "--threads", "1", "--no-mask"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("640x480", "1280x720"))]
    assert len(rows) == 2
    for row in rows:
        a_ms, b_ms, ratio = float(row[1]), float(row[2]), float(row[3])
        assert a_ms > 0 and b_ms > 0 and ratio == pytest.approx(b_ms / a_ms, rel=0.02, abs=0.01)


def test_quality_select_picks_the_candidate_the_head_rates_best():
    from siamattn_ros.tracker import Tracker, TrackerConfig

    torch.manual_seed(0)
    model = build_model("siamattn_mnv2", pretrained=False)
    with torch.no_grad():
        torch.nn.init.normal_(model.iou_head.out.weight, std=0.5)
    frame = np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    tracker = Tracker(model, TrackerConfig(warmup=False))
    tracker.init(frame, (130.0, 90.0, 60.0, 50.0))
    x = tracker._crop(frame, tracker._center, 120, 255)
    params = torch.tensor([60.0, 50.0, 0.04, 0.44, 0.0])
    with torch.inference_mode():
        plain = tracker._search_step(x, params)
        tracker.config = tracker.config.replace(quality_select=True)
        chosen = tracker._search_step(x, params)
        rpn, refined = plain[2:6], plain[6:10]
        cands = [refined, rpn, torch.cat((refined[:2], params[:2]))]
        q = [float(torch.sigmoid(model.box_quality(torch.cat((torch.zeros(1), c[:2] - c[2:] / 2,
                                                               c[:2] + c[2:] / 2)).view(1, 5)))) for c in cands]
    best = int(np.argmax(q))
    assert torch.allclose(chosen[6:10], cands[best]) and float(chosen[10]) == pytest.approx(max(q), abs=1e-6)
    assert float(chosen[10]) >= float(plain[10]) - 1e-6


def test_quality_margin_keeps_the_previous_size_unless_a_resized_box_is_rated_that_much_better():
    from siamattn_ros.tracker import Tracker, TrackerConfig

    torch.manual_seed(0)
    model = build_model("siamattn_mnv2", pretrained=False)
    frame = np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    tracker = Tracker(model, TrackerConfig(warmup=False, quality_select=True))
    tracker.init(frame, (130.0, 90.0, 60.0, 50.0))
    x = tracker._crop(frame, tracker._center, 120, 255)
    # Ratings of (refined, RPN, previous size) fixed by hand: the refined box is rated 0.150 above the previous size.
    model.box_quality = lambda rois: torch.tensor([2.0, 0.0, 1.0])
    q = torch.sigmoid(torch.tensor([2.0, 0.0, 1.0]))
    with torch.inference_mode():
        free, below, above = (tracker._search_step(x, torch.tensor([60.0, 50.0, 0.04, 0.44, m]))
                              for m in (0.0, 0.16, 0.14))
    refined, previous = free[6:10], torch.cat((free[6:8], torch.tensor([60.0, 50.0])))
    assert float(q[0] - q[2]) == pytest.approx(0.150, abs=1e-3)
    assert float(free[10]) == pytest.approx(float(q[0]), abs=1e-6)      # no margin: the best rated, the refined box
    assert torch.allclose(above[6:10], refined) and float(above[10]) == pytest.approx(float(q[0]), abs=1e-6)
    assert torch.allclose(below[6:10], previous)                        # margin above the gap: the previous size
    assert float(below[10]) == pytest.approx(float(q[2]), abs=1e-6)     # reported with its own, unshifted quality
    with pytest.raises(ValueError, match="quality_margin"):
        TrackerConfig(quality_margin=-0.1)
