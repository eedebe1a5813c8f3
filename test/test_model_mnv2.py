"""The embedded model, plus behaviour shared by both variants that is cheap to check on the small one:
batching, DSA semantics, template caching, deformable-conv implementations, BN folding, configs."""
import copy
from pathlib import Path

import pytest
import torch
from torchvision.ops import deform_conv2d

from siamattn_ros.model import ModelConfig, build_model, embedded_config, paper_config, prepare_for_inference
from siamattn_ros.model.inference import FrozenGraph
from siamattn_ros.model.deform_conv import DeformConvPack, deform_conv2d_conv_first, deform_conv2d_grid_sample
from siamattn_ros.model.dsa import FeatureEnhance
from siamattn_ros.model.mobilenet import imagenet_weights_path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config" / "models"


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model("siamattn_mnv2")
    return m


def _inputs(b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, 127, 127, generator=g) * 255, torch.rand(b, 3, 255, 255, generator=g) * 255


def _randomise(model, seed):
    """Non-trivial BN statistics and non-zero attention scales / offset layers, so equivalence tests can fail."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.3)
            elif ".offset_fc.4." in name:
                p.normal_(0.0, 1e-2, generator=g)
            elif ".conv_offset." in name:
                p.normal_(0.0, 1e-3, generator=g)


def test_imagenet_weights_loaded_into_backbone(model):
    from torchvision.models import mobilenet_v2

    ref = mobilenet_v2()
    ref.load_state_dict(torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True), strict=True)
    ours = model.backbone.features.state_dict()
    theirs = ref.features.state_dict()
    assert len(ours) > 100 and all(torch.equal(v, theirs[k]) for k, v in ours.items())


def test_size_and_geometry(model):
    n = sum(p.numel() for p in model.parameters())
    assert n < 5_000_000  # < 10 MB as fp16
    with torch.no_grad():
        zf = model.extract(torch.zeros(1, 3, 127, 127))
        xf = model.extract(torch.zeros(1, 3, 255, 255))
    assert [tuple(f.shape[2:]) for f in xf] == [(127, 127), (63, 63), (31, 31), (31, 31), (31, 31)]
    assert [tuple(f.shape[2:]) for f in zf[2:]] == [(7, 7)] * 3
    assert model.cfg.score_size == 25 and model.cfg.anchor_num == 5


def test_every_parameter_gets_gradient_batched(model):
    m = copy.deepcopy(model)
    _randomise(m, 0)
    m.train()
    z, x = _inputs(2)
    rois = torch.tensor([[0, 60.0, 70.0, 190.0, 200.0], [1, -20.0, 30.0, 120.0, 280.0], [1, 100, 100, 140, 150]])
    out = m(z, x, rois)  # forward() = template + track + both refinements (the form DDP training uses)
    box, mask = out["bbox"], out["mask"]
    assert out["cls"].shape == (2, 10, 25, 25) and out["loc"].shape == (2, 20, 25, 25)
    assert box.shape == (3, 4) and mask.shape == (3, 1, 64, 64) and out["iou"].shape == (3,)
    g = torch.Generator().manual_seed(1)
    loss = sum((t * torch.randn(t.shape, generator=g)).mean()
               for t in (out["cls"], out["loc"], box, mask, out["iou"]))
    loss.backward()
    no_grad = [n for n, p in m.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert no_grad == []


def test_batched_equals_one_by_one_and_outputs_are_sane(model):
    m = copy.deepcopy(model).eval()
    _randomise(m, 1)
    z, x = _inputs(2, seed=3)
    rois = torch.tensor([[1, 30.0, 40.0, 200.0, 180.0], [0, 90.0, 80.0, 170.0, 190.0]])
    with torch.inference_mode():
        m.template(z)
        out = m.track(x)
        box, mask = m.bbox_refine(rois), m.mask_refine(rois)
        for i, r in enumerate(rois):
            b = int(r[0])
            m.template(z[b:b + 1])
            one = m.track(x[b:b + 1])
            for k in ("cls", "loc"):
                torch.testing.assert_close(one[k][0], out[k][b], rtol=1e-4, atol=1e-4)
            r1 = r.clone().unsqueeze(0)
            r1[0, 0] = 0
            torch.testing.assert_close(m.bbox_refine(r1)[0], box[i], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(m.mask_refine(r1)[0], mask[i], rtol=1e-4, atol=1e-4)
    for t in (out["cls"], out["loc"], box, mask):
        assert torch.isfinite(t).all() and t.std() > 0
    probs = torch.sigmoid(mask)
    assert probs.min() >= 0 and probs.max() <= 1


def test_input_is_bgr_0_255_normalised_inside(model):
    """Swapping B and R must change the output (BGR->RGB happens inside), and the normalisation is ImageNet's."""
    bb = model.backbone
    x = torch.rand(1, 3, 31, 31) * 255
    rgb01 = x.flip(1) / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(bb._normalise(x), (rgb01 - mean) / std)


def test_template_cache_and_literal_dsa_formula():
    """FeatureEnhance equals the spec's three-term formula, and the cached template path equals the direct one."""
    torch.manual_seed(0)
    fe = FeatureEnhance(channels=8, key_channels=4, levels=1).eval()
    with torch.no_grad():
        fe.pams[0].gamma.fill_(0.7)
        fe.cam_uses[0].gamma.fill_(-0.4)
        fe.deform_convs[0].conv_offset.weight.normal_(0, 0.05)
    t = torch.randn(2, 8, 7, 7)
    s = torch.randn(2, 8, 31, 31)

    def sa(x):
        pam = fe.pams[0]
        q, k, v = pam.query_conv(x).flatten(2), pam.key_conv(x).flatten(2), pam.value_conv(x).flatten(2)
        a = torch.softmax(q.transpose(1, 2) @ k, dim=-1)
        return (v @ a.transpose(1, 2)).view_as(x)

    def cmap(x):
        f = x.flatten(2)
        e = f @ f.transpose(1, 2)
        return torch.softmax(e.max(dim=-1, keepdim=True).values - e, dim=-1)

    gs, gc = 0.7, -0.4
    mt, ms = cmap(t), cmap(s)
    t1 = (gs * sa(t) + t) + (gc * (mt @ t.flatten(2)).view_as(t) + t) + (gc * (ms @ t.flatten(2)).view_as(t) + t)
    s1 = (gs * sa(s) + s) + (gc * (ms @ s.flatten(2)).view_as(s) + s) + (gc * (mt @ s.flatten(2)).view_as(s) + s)
    dc = fe.deform_convs[0]
    exp_t = deform_conv2d(t1, dc.conv_offset(t1), dc.weight, padding=1)
    exp_s = deform_conv2d(s1, dc.conv_offset(s1), dc.weight, padding=1)
    with torch.no_grad():
        zt, xs = fe([t], [s])
        zc, xc = fe.forward_cached(fe.cache_template([t]), [s])
    for got in (zt[0], zc[0]):
        torch.testing.assert_close(got, exp_t, rtol=1e-4, atol=1e-4)
    for got in (xs[0], xc[0]):
        torch.testing.assert_close(got, exp_s, rtol=1e-4, atol=1e-4)


def test_model_cached_track_equals_uncached(model):
    m = copy.deepcopy(model).eval()
    _randomise(m, 2)
    z, x = _inputs(1, seed=5)
    with torch.inference_mode():
        m.template(z)
        assert m._dsa_cache is not None
        cached = m.track(x)
        m._dsa_cache = None
        direct = m.track(x)
    for k in ("cls", "loc"):
        torch.testing.assert_close(cached[k], direct[k], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [(7, 7), (31, 31), (1, 5), (2, 3)])
def test_grid_sample_deform_conv_equals_torchvision(size):
    g = torch.Generator().manual_seed(0)
    h, w = size
    x = torch.randn(2, 6, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 6, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    # Large offsets push taps outside the map on every side.
    off = (torch.randn(2, 18, h, w, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    a = deform_conv2d(x, off, weight, padding=1)
    b = deform_conv2d_grid_sample(x, off, weight, padding=1)
    torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    with torch.no_grad():  # the inference path: GEMM first, then each position's 36 bilinear rows via embedding_bag
        torch.testing.assert_close(deform_conv2d_conv_first(x, off, weight, padding=1), a, rtol=1e-10, atol=1e-10)
    gout = torch.randn(a.shape, generator=g, dtype=torch.float64)
    ga = torch.autograd.grad(a, (x, weight, off), gout)
    gb = torch.autograd.grad(b, (x, weight, off), gout)
    for u, v in zip(ga, gb):
        torch.testing.assert_close(v, u, rtol=1e-8, atol=1e-8)


def test_conv_first_weights_follow_in_place_changes():
    """The deformable conv keeps its GEMM operand between frames: a changed weight (load_state_dict copies in
    place) must not leave a stale one behind."""
    m = DeformConvPack(4, 3)
    m.set_impl("conv_first")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 21, 21, generator=g)
    with torch.no_grad():
        torch.nn.init.normal_(m.conv_offset.weight, std=0.5, generator=g)
        first = m(x)
        m.load_state_dict({k: v * 2 if k == "weight" else v for k, v in m.state_dict().items()})
        second = m(x)
        m.set_impl("torchvision")
        reference = m(x)
    torch.testing.assert_close(second, 2 * first)
    torch.testing.assert_close(second, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_conv_first_in_half_precision_samples_at_float32_positions(dtype):
    """fp16 / bf16 maps (gpu_check's precision pass on the CPU): the sample positions stay float32 (fp16 cannot
    hold 30.2 + 0.37 to the 1/100 pixel), the result is the float32 one to the storage precision."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 8, 31, 31, generator=g)
    off = torch.randn(1, 18, 31, 31, generator=g) * 3
    weight = torch.randn(8, 8, 3, 3, generator=g) / 8
    with torch.no_grad():
        ref = deform_conv2d_conv_first(x, off, weight)
        low = deform_conv2d_conv_first(x.to(dtype), off.to(dtype), weight.to(dtype))
    assert low.dtype == dtype
    assert (low.float() - ref).abs().max() <= 0.03 * ref.abs().max()


def test_prepare_for_inference_keeps_outputs(model):
    """BN + input-normalisation folding, channels-last layout and the grid_sample kernels vs the plain model."""
    m = copy.deepcopy(model).eval()
    _randomise(m, 4)
    z, x = _inputs(1, seed=7)
    rois = torch.tensor([[0, -15.0, 20.0, 140.0, 250.0]])
    with torch.inference_mode():
        m.template(z)
        m.set_deform_impl("torchvision")
        ref = m.track(x)
        ref_box, ref_mask = m.bbox_refine(rois), m.mask_refine(rois)
        prepare_for_inference(m, "cpu")
        assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.modules())
        assert isinstance(m.backbone, FrozenGraph)  # run as a oneDNN-optimised TorchScript graph on the CPU
        assert m.backbone.module.normalize_input is False  # folded into the stem conv
        m.set_deform_impl("auto")
        m.template(z)
        out = m.track(x)
        box, mask = m.bbox_refine(rois), m.mask_refine(rois)
    for a, b in ((out["cls"], ref["cls"]), (out["loc"], ref["loc"]), (box, ref_box), (mask, ref_mask)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * max(b.abs().max().item(), 1.0))


def test_yaml_configs_equal_builtin_definitions(tmp_path):
    for name, cfg in (("siamattn_r50", paper_config()), ("siamattn_mnv2", embedded_config())):
        assert ModelConfig.from_yaml(CONFIG_DIR / f"{name}.yaml") == cfg
        cfg.to_yaml(tmp_path / "c.yaml")
        assert ModelConfig.from_yaml(tmp_path / "c.yaml") == cfg
    with pytest.raises(ValueError, match="bogus"):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="resnet18"):
        ModelConfig(backbone="resnet18")


def test_call_order_errors():
    m = build_model("siamattn_mnv2", pretrained=False)
    with pytest.raises(RuntimeError, match="template"):
        m.track(torch.zeros(1, 3, 255, 255))
    with pytest.raises(RuntimeError, match="track"):
        m.bbox_refine(torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        m.template(torch.zeros(3, 127, 127))


def test_reduced_precision_runs_close_to_fp32(model):
    """bf16 on the CPU stands in for the fp16 CUDA path: every op must accept the reduced dtype (the channel maps
    are computed in float32 internally), and results stay close to fp32."""
    m = copy.deepcopy(model).eval()
    _randomise(m, 5)
    z, x = _inputs(1, seed=9)
    rois = torch.tensor([[0, 60.0, 70.0, 190.0, 200.0]])
    with torch.inference_mode():
        m.template(z)
        ref = m.track(x)
        ref_mask = torch.sigmoid(m.mask_refine(rois))
        m.to(torch.bfloat16)
        m.template(z.bfloat16())
        out = m.track(x.bfloat16())
        box, mask = m.bbox_refine(rois), torch.sigmoid(m.mask_refine(rois))
    assert out["cls"].dtype == box.dtype == mask.dtype == torch.bfloat16
    scale = ref["cls"].abs().max().item()
    assert (out["cls"].float() - ref["cls"]).abs().max().item() < 0.05 * scale
    assert (mask.float() - ref_mask).abs().max().item() < 0.05


def test_model_names_and_yaml_paths_resolve_to_configs(tmp_path):
    from siamattn_ros.model import get_config

    assert get_config(str(CONFIG_DIR / "siamattn_mnv2.yaml")) == embedded_config()
    path = tmp_path / "custom.yaml"
    cfg = embedded_config()
    cfg.to_yaml(path)
    assert get_config(str(path)) == cfg
    with pytest.raises(ValueError, match="unknown model 'siamattn_r18'"):
        get_config("siamattn_r18")
    path.write_text("neck_channels: 64\nno_such_field: 1\n")
    with pytest.raises(ValueError, match=r"unknown ModelConfig keys \['no_such_field'\]"):
        get_config(str(path))
