"""The exact CPU rewrites of the inference path (model/winograd.py, model/inference.py speed_up_cpu, the fusion
neck's lateral-before-resize) against the plain PyTorch ops they replace, and the side-by-side benchmark tool."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from siamattn_ros.model import ModelConfig, build_model, embedded_config, prepare_for_inference
from siamattn_ros.model.fusion import resize_bilinear_ac
from siamattn_ros.model.inference import (FrozenGraph, OneDnnConv2d, SeparableMaxPool2d, StrideKernelDeconv,
                                          speed_up_cpu)
from siamattn_ros.model.winograd import WinogradConv2d, transform_weight, winograd_conv3x3
from siamattn_ros.testing.checkpoints import activate_random_paths

pytestmark = pytest.mark.usefixtures("single_thread")


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("cin,cout,size,dilation,padding", [
    (8, 5, 31, 1, 1), (8, 5, 31, 2, 2), (6, 7, 31, 4, 4), (5, 4, 17, 1, 0), (4, 6, 12, 2, 2), (3, 3, 9, 4, 4),
    (4, 4, 2, 1, 1),  # smaller than one tile
])
def test_winograd_conv_equals_direct_conv(m, cin, cout, size, dilation, padding):
    """Float64 data: the transforms are exact algebra, so only rounding separates the two."""
    g = torch.Generator().manual_seed(cin * 100 + size)
    x = torch.randn(2, cin, size, size + 3, generator=g, dtype=torch.float64)
    w = torch.randn(cout, cin, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(cout, generator=g, dtype=torch.float64)
    ref = F.conv2d(x, w, b, padding=padding, dilation=dilation)
    u = transform_weight(w, m).double()
    out = winograd_conv3x3(x, u, b, dilation=dilation, padding=padding, m=m)
    assert out.shape == ref.shape
    assert _rel(out, ref) < 1e-6  # the float32 transformed weight limits it, not the algorithm


@pytest.mark.parametrize("dilation", [1, 2, 4])
def test_winograd_module_float32_close_and_falls_back(dilation):
    g = torch.Generator().manual_seed(dilation)
    conv = nn.Conv2d(256, 256, 3, padding=dilation, dilation=dilation)
    x = torch.rand(1, 256, 31, 31, generator=g)
    ref = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=dilation, dilation=dilation)
    wc = WinogradConv2d(conv)
    with torch.inference_mode():
        assert _rel(wc(x), ref) < 2e-5
        small = torch.rand(1, 256, 7, 7, generator=g)  # template-size map: the direct conv
        torch.testing.assert_close(wc(small), conv(small), rtol=1e-4, atol=1e-4)
    y = wc(x.requires_grad_())  # autograd: the original conv, gradients flow
    y.sum().backward()
    assert x.grad is not None and conv.weight.grad is not None


def test_winograd_rejects_unsupported_geometry():
    with pytest.raises(ValueError, match="not eligible"):
        WinogradConv2d(nn.Conv2d(4, 4, 3, stride=2, padding=1))
    with pytest.raises(ValueError, match="padding"):
        winograd_conv3x3(torch.zeros(1, 2, 8, 8), torch.zeros(16, 2, 2), padding=3, dilation=2)


def test_onednn_conv_and_stride_kernel_deconv_equal_pytorch():
    g = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(32, 48, 1)
    x = torch.rand(1, 32, 20, 20, generator=g)
    deconv = nn.ConvTranspose2d(16, 8, 4, stride=4)
    y = torch.rand(2, 16, 5, 6, generator=g)
    with torch.inference_mode():
        torch.testing.assert_close(OneDnnConv2d(conv)(x), conv(x), rtol=1e-5, atol=1e-5)
        out = StrideKernelDeconv(deconv)(y)
        assert out.shape == (2, 8, 20, 24)
        torch.testing.assert_close(out, deconv(y), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="stride == kernel"):
        StrideKernelDeconv(nn.ConvTranspose2d(4, 4, 4, stride=2))


@pytest.mark.parametrize("k,s,p,size", [(3, 2, 1, 125), (3, 2, 1, 10), (2, 2, 0, 9), (3, 1, 1, 7), (5, 3, 2, 17)])
def test_separable_max_pool_equals_max_pool(k, s, p, size):
    """Row-then-column maxima against nn.MaxPool2d: odd and even sizes, padding (negative inputs, so the -inf
    border matters), NaN propagation; autograd and integer inputs use the wrapped pool."""
    pool = nn.MaxPool2d(k, s, p)
    x = torch.randn(2, 3, size, size + 1, generator=torch.Generator().manual_seed(size)) - 1.0
    x[0, 1, size // 2, size // 3] = float("nan")
    fast = SeparableMaxPool2d(pool)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), pool(x), equal_nan=True, rtol=0, atol=0)
    xg = x.clone().requires_grad_()
    assert fast(xg).grad_fn is not None
    with pytest.raises(ValueError, match="dilation 1"):
        SeparableMaxPool2d(nn.MaxPool2d(3, 2, 1, ceil_mode=True))


@pytest.mark.parametrize("b,c,size", [(1, 64, 31), (2, 16, 17), (1, 8, 11)])
def test_blocked_spatial_attention_equals_the_whole_softmax(b, c, size):
    """The CPU inference path's attention over blocks of query positions (31×31 = 961 = 7 full blocks + 65; 17×17
    = 289 with a batch of 2; 11×11 = 121 below one block) against the whole-matrix softmax of the training path."""
    from siamattn_ros.model.dsa import SpatialSelfAttention

    att = SpatialSelfAttention(c, 8).eval()
    _randomise(att, size)
    x = torch.randn(b, c, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        ref = att.attend(x)
        att.blocked = True
        out = att.attend(x)
    assert out.shape == ref.shape and _rel(out, ref) < 1e-5
    att.blocked = True
    with torch.enable_grad():  # autograd: the whole-matrix path
        y = att.attend(x.requires_grad_())
    assert y.grad_fn is not None and _rel(y.detach(), ref) < 1e-6


def test_frozen_graph_equals_the_eager_backbone_per_shape_and_falls_back():
    """The MobileNetV2 backbone as a frozen oneDNN TorchScript graph: same outputs as eager, one graph per input
    shape (template and search crops), built under inference_mode too; eager wherever autograd or training is on."""
    bb = build_model("siamattn_mnv2", pretrained=False).backbone.eval()
    _randomise(bb, 5)
    frozen = FrozenGraph(copy.deepcopy(bb))
    assert not frozen.training
    g = torch.Generator().manual_seed(3)
    for size in (127, 255, 127):
        x = torch.rand(1, 3, size, size, generator=g) * 255
        with torch.inference_mode():
            ref, out = bb(x), frozen(x)
        assert len(out) == len(ref) == 5
        for a, b in zip(out, ref):
            assert a.shape == b.shape and _rel(a, b) < 1e-5
    assert sorted(k[0][2] for k in frozen._graphs) == [127, 255]
    assert all(isinstance(gr, torch.jit.ScriptModule) for gr in frozen._graphs.values())
    search_only = FrozenGraph(copy.deepcopy(bb), min_positions=200 * 200)  # what speed_up_cpu builds
    with torch.inference_mode():
        for size in (127, 255):
            x = torch.rand(1, 3, size, size, generator=g) * 255
            assert all(_rel(a, b) < 1e-5 for a, b in zip(search_only(x), bb(x)))
    assert [k[0][2] for k in search_only._graphs] == [255]  # the template crop ran eagerly
    x = torch.rand(1, 3, 127, 127, generator=g, requires_grad=True) * 255
    out = frozen(x)  # autograd on: the eager module, so gradients flow
    out[-1].sum().backward()
    assert out[-1].grad_fn is not None
    # Under a dispatch mode (FlopCounterMode: tools/gpu_check.py's cost section) it runs eagerly, so the mode sees
    # every op and no graph is traced through the mode.
    from torch.utils.flop_counter import FlopCounterMode

    frozen.clear()
    with torch.inference_mode():
        with FlopCounterMode(display=False) as eager_count:
            bb(x.detach())
        with FlopCounterMode(display=False) as frozen_count:
            frozen(x.detach())
    assert frozen_count.get_total_flops() == eager_count.get_total_flops() > 0
    assert not frozen._graphs


@pytest.mark.parametrize("src,dst", [((31, 31), (63, 63)), ((7, 12), (20, 5)), ((1, 4), (3, 9))])
def test_separable_resize_equals_interpolate(src, dst):
    x = torch.rand(2, 3, *src, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(x, size=dst, mode="bilinear", align_corners=True)
    torch.testing.assert_close(resize_bilinear_ac(x, dst), ref, rtol=1e-5, atol=1e-6)


def _randomise(model: nn.Module, seed: int) -> None:
    """Non-zero attention scales / offsets and non-trivial BN statistics, so every rewritten path matters."""
    activate_random_paths(model, seed)
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1, generator=g)
                mod.running_var.uniform_(0.5, 1.5, generator=g)
                mod.weight.data.uniform_(0.5, 1.5, generator=g)


def _outputs(net, z, xs, rois):
    with torch.inference_mode():
        net.template(z)
        res = []
        for x in xs:
            out = net.track(x)
            res.append([out["cls"], out["loc"], net.bbox_refine(rois), net.mask_refine(rois).sigmoid()])
    return res


# A reduced paper geometry (256-channel neck/fusion and a wide conv so the Winograd, merged-conv and lateral
# rewrites all run) that builds and runs in seconds.
WIDE = {**embedded_config().to_dict(), "neck_channels": 256, "fusion_channels": 256, "rpn_hidden": 256,
        "mask_head_channels": 64, "backbone_pretrained": False, "name": "wide_test"}


@pytest.mark.parametrize("cfg", ["siamattn_mnv2", "wide"])
def test_prepared_model_matches_plain_model(cfg):
    """prepare_for_inference on the CPU (BN folding + speed_up_cpu) against the unprepared model with
    torchvision's deformable conv: every output within 1e-4 relative, on two different search crops."""
    torch.manual_seed(0)
    net = build_model(ModelConfig.from_dict(WIDE) if cfg == "wide" else cfg, pretrained=False)
    _randomise(net, 1)
    net.eval()
    plain = copy.deepcopy(net)
    plain.set_deform_impl("torchvision")
    g = torch.Generator().manual_seed(5)
    z = torch.rand(1, 3, 127, 127, generator=g) * 255
    xs = [torch.rand(1, 3, 255, 255, generator=g) * 255 for _ in range(2)]
    rois = torch.tensor([[0, -15.0, 20.0, 140.0, 250.0]])
    ref = _outputs(plain, z, xs, rois)
    prepare_for_inference(net, "cpu")
    kinds = {type(m) for m in net.modules()}
    assert StrideKernelDeconv in kinds and FrozenGraph in kinds
    assert all(p.blocked for p in net.feature_enhance.pams)
    merged = [b.__dict__.get("merged_xcorr") for lvl in net.rpn_head.levels
              for b in (getattr(net.rpn_head, f"rpn{lvl}").cls, getattr(net.rpn_head, f"rpn{lvl}").loc)]
    assert all(m is not None for m in merged)  # one depth-wise conv per level for cls, loc and the fusion block
    if cfg == "wide":  # oneDNN convs only from ONEDNN_MIN_IN_CHANNELS input channels up
        assert WinogradConv2d in kinds and OneDnnConv2d in kinds and net.feature_fusion.lateral_before_resize
    else:
        assert OneDnnConv2d not in kinds
    out = _outputs(net, z, xs, rois)
    for frame_out, frame_ref in zip(out, ref):
        for a, b in zip(frame_out, frame_ref):
            assert a.shape == b.shape
            assert _rel(a, b) <= 1e-4
    # The merged RPN / fusion convs see a new search map each frame (no stale cached result).
    assert _rel(out[0][0], out[1][0]) > 1e-3


def test_speed_up_cpu_requires_folded_batchnorm():
    with pytest.raises(ValueError, match="BatchNorm"):
        speed_up_cpu(build_model("siamattn_mnv2", pretrained=False))


def test_bench_side_by_side_prints_ratio_and_parity(capsys):
    from siamattn_ros.tools import bench

    assert bench.main(["--model", "siamattn_mnv2", "--frames", "2", "--warmup", "0", "--profile"]) == 0
    text = capsys.readouterr().out
    assert "ratio ours / plain: median" in text and "-> PASS" in text
    for group in ("backbone", "DSA attention", "DSA deformable convs", "RPN", "mask RoI pooling", "mask head"):
        assert group in text
