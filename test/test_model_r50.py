"""The paper model: exact key/shape match with the authors' state_dict, output shapes, gradient flow, BN folding."""
import copy
from pathlib import Path

import pytest
import torch

from siamattn_ros.model import build_model, fuse_for_inference

TSV = Path(__file__).parent / "data" / "siamattn-state-dict.tsv"


pytestmark = pytest.mark.usefixtures("single_thread")


def _read_tsv():
    rows = {}
    with open(TSV, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        assert header == ["name", "shape", "numel"]
        for line in f:
            name, shape, numel = line.rstrip("\n").split("\t")
            dims = tuple(int(d) for d in shape.strip("()").split(",") if d)
            rows[name] = (dims, int(numel))
    return rows


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("siamattn_r50")


def test_state_dict_equals_authors_keys_and_shapes(model):
    ref = _read_tsv()
    assert len(ref) == 645
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(ref) - set(ours)) == []
    assert sorted(set(ours) - set(ref)) == []
    wrong = {k: (ours[k], ref[k][0]) for k in ref if ours[k] != ref[k][0]}
    assert wrong == {}
    assert sum(p.numel() for p in model.parameters()) == 140_242_881
    assert sum(v.numel() for v in model.state_dict().values()) == sum(n for _, n in ref.values())


def test_feature_sizes_match_the_paper(model):
    with torch.no_grad():
        zf = model.backbone(torch.zeros(1, 3, 127, 127))
        xf = model.backbone(torch.zeros(1, 3, 255, 255))
    assert [tuple(f.shape[1:]) for f in zf] == [(64, 61, 61), (256, 31, 31), (512, 15, 15), (1024, 15, 15),
                                                (2048, 15, 15)]
    assert [tuple(f.shape[1:]) for f in xf] == [(64, 125, 125), (256, 63, 63), (512, 31, 31), (1024, 31, 31),
                                                (2048, 31, 31)]


def _randomise_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def _perturb_zero_inits(model):
    """gamma (DSA scales) and the last offset Linear / offset convs start at 0, which blocks the gradient of the
    layers in front of them; give them small non-zero values so every parameter can be checked."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.5)
            elif ".offset_fc.4." in name or ".conv_offset." in name:
                p.normal_(0.0, 1e-3)


def test_every_parameter_gets_gradient_and_outputs_are_sane(model):
    _perturb_zero_inits(model)
    model.train()
    g = torch.Generator().manual_seed(0)
    z = torch.rand(1, 3, 127, 127, generator=g) * 255
    x = torch.rand(1, 3, 255, 255, generator=g) * 255
    rois = torch.tensor([[0, 60.0, 70.0, 190.0, 200.0]])
    model.zero_grad(set_to_none=True)
    model.template(z)
    out = model.track(x)
    box = model.bbox_refine(rois)
    mask = model.mask_refine(rois)
    assert out["cls"].shape == (1, 10, 25, 25) and out["loc"].shape == (1, 20, 25, 25)
    assert box.shape == (1, 4) and mask.shape == (1, 1, 64, 64)
    for t in (out["cls"], out["loc"], box, mask):
        assert torch.isfinite(t).all() and t.std() > 0
    loss = sum((t * torch.randn(t.shape, generator=g)).mean() for t in (out["cls"], out["loc"], box, mask))
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert no_grad == []
    model.zero_grad(set_to_none=True)


def test_bn_folding_keeps_outputs(model):
    """Folding on the paper model (Bottleneck / stem / neck pairs); the heads' folding is covered with the small
    model in test_model_mnv2.py. Compared on the template branch only to keep the test fast."""
    model.eval()
    _randomise_bn(model, 3)
    z = torch.rand(1, 3, 127, 127, generator=torch.Generator().manual_seed(1)) * 255
    with torch.inference_mode():
        ref = model.extract(z)
        fuse_for_inference(model)
        out = model.extract(z)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * max(b.abs().max().item(), 1.0))


def test_cpu_inference_path_keeps_backbone_outputs():
    """The paper backbone through the CPU inference rewrites (BN folding, Winograd 3×3 convs at dilations 1 / 2 / 4,
    oneDNN convs, the separable stem max pool) against the plain model, on a 191×191 crop (23×23 deep maps: large
    enough for the Winograd path, half the cost of a search crop)."""
    from siamattn_ros.model import prepare_for_inference
    from siamattn_ros.model.inference import SeparableMaxPool2d
    from siamattn_ros.model.resnet_atrous import ResNet50Atrous
    from siamattn_ros.model.winograd import WinogradConv2d

    torch.manual_seed(0)
    plain = ResNet50Atrous().eval()
    _randomise_bn(plain, 5)
    fast = prepare_for_inference(copy.deepcopy(plain), "cpu")
    kinds = [type(m) for m in fast.modules()]
    assert SeparableMaxPool2d in kinds and kinds.count(WinogradConv2d) >= 9
    x = torch.rand(1, 3, 191, 191, generator=torch.Generator().manual_seed(2)) * 255
    with torch.inference_mode():
        ref, out = plain(x), fast(x)
    assert [tuple(o.shape) for o in out] == [tuple(r.shape) for r in ref]
    for a, b in zip(out, ref):
        assert ((a - b).abs().max() / b.abs().max()).item() < 1e-4
