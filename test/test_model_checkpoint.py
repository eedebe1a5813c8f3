"""Checkpoint I/O: every accepted layout, dtype conversions, and the error cases (never executing code)."""
import pickle

import pytest
import torch

from siamattn_ros.model import CheckpointError, ModelConfig, build_model, embedded_config, load_checkpoint, \
    load_model, save_checkpoint


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    src = build_model("siamattn_mnv2", pretrained=False)
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    dst_cfg = src.cfg
    return src, dst_cfg


def _same_weights(a, b, tol=0.0):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if tol:
            torch.testing.assert_close(sa[k].float(), sb[k].float(), rtol=tol, atol=tol)
        else:
            assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("layout", ["raw", "wrapped", "module_prefix", "wrapped_module_prefix"])
def test_accepted_layouts(pair, tmp_path, layout):
    src, cfg = pair
    sd = src.state_dict()
    if "module" in layout:
        sd = {"module." + k: v for k, v in sd.items()}
    obj = {"epoch": 3, "state_dict": sd} if "wrapped" in layout else sd
    path = tmp_path / "ck.pth"
    torch.save(obj, path)
    dst = build_model(cfg)
    extra = load_checkpoint(dst, path)
    _same_weights(src, dst)
    if "wrapped" in layout:
        assert extra == {"epoch": 3}


def test_own_format_roundtrip_and_load_model(pair, tmp_path):
    src, _ = pair
    path = tmp_path / "own.pth"
    save_checkpoint(src, path, extra={"epoch": 7, "note": "x"})
    model = load_model(path)
    assert not model.training
    assert model.cfg.name == "siamattn_mnv2" and model.cfg.neck_channels == src.cfg.neck_channels
    _same_weights(src, model)
    raw = torch.load(path, weights_only=True)
    assert raw["epoch"] == 7 and raw["model_config"]["backbone"] == "mobilenet_v2"


def test_half_checkpoint_loads_into_float_and_half_models(pair, tmp_path):
    src, cfg = pair
    path = tmp_path / "half.pth"
    save_checkpoint(src, path, half=True)
    raw = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    fp32 = load_model(path)
    assert next(fp32.parameters()).dtype == torch.float32
    _same_weights(src, fp32, tol=2e-3)
    fp16 = build_model(cfg).half()
    load_checkpoint(fp16, path)
    assert next(fp16.parameters()).dtype == torch.float16
    # an fp32 file into an fp16 model as well
    path32 = tmp_path / "full.pth"
    save_checkpoint(src, path32)
    load_checkpoint(fp16, path32)
    _same_weights(src, fp16, tol=2e-3)


def test_missing_num_batches_tracked_is_tolerated(pair, tmp_path):
    src, cfg = pair
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "nbt.pth")
    dst = build_model(cfg)
    load_checkpoint(dst, tmp_path / "nbt.pth")
    _same_weights(src, dst)


def test_mismatch_lists_missing_unexpected_and_wrong_shapes(pair, tmp_path):
    src, cfg = pair
    sd = dict(src.state_dict())
    del sd["rpn_head.cls_weight"]
    sd["rpn_head.extra_thing"] = torch.zeros(2)
    sd["bbox_head.tail_det_box.bias"] = torch.zeros(5)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    dst = build_model(cfg)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(dst, path)
    msg = str(e.value)
    assert str(path) in msg
    assert "rpn_head.cls_weight" in msg and "rpn_head.extra_thing" in msg and "bbox_head.tail_det_box.bias" in msg
    assert "(5,)" in msg and "(4,)" in msg
    assert all(torch.equal(v, before[k]) for k, v in dst.state_dict().items())  # nothing half-loaded


def test_wrong_architecture(pair, tmp_path):
    src, _ = pair
    path = tmp_path / "wide.pth"
    wide = ModelConfig.from_dict({**embedded_config().to_dict(), "neck_channels": 32, "backbone_pretrained": False})
    save_checkpoint(build_model(wide), path)
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_checkpoint(src, path)
    # our checkpoint loaded into the paper model: everything missing / unexpected
    r50_keys_only = tmp_path / "r50.pth"
    torch.save({"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}, r50_keys_only)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(src, r50_keys_only)


def test_truncated_file(pair, tmp_path):
    src, _ = pair
    path = tmp_path / "trunc.pth"
    save_checkpoint(src, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(src, path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_model(path)


class _Exploit:
    """Unpickling this would create a file: proves whether code runs during loading."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_is_refused_without_running_it(pair, tmp_path):
    src, _ = pair
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": src.state_dict(), "payload": _Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(src, path)
    assert not marker.exists()
    plain = tmp_path / "evil.pkl"
    with open(plain, "wb") as f:
        pickle.dump(_Exploit(marker), f)
    with pytest.raises(CheckpointError, match=str(plain)):
        load_model(plain)
    assert not marker.exists()


def test_other_errors(pair, tmp_path):
    src, _ = pair
    with pytest.raises(CheckpointError, match="no such"):
        load_checkpoint(src, tmp_path / "absent.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="state_dict"):
        load_checkpoint(src, tmp_path / "list.pth")
    torch.save(src.state_dict(), tmp_path / "noconfig.pth")
    with pytest.raises(CheckpointError, match="model_config"):
        load_model(tmp_path / "noconfig.pth")
    assert load_model(tmp_path / "noconfig.pth", name="siamattn_mnv2").cfg.name == "siamattn_mnv2"
    assert issubclass(CheckpointError, ValueError)
