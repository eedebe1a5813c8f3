"""The real training loop on a tiny model: every parameter is optimised, resume continues, 2-process DDP (gloo)."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from siamattn_ros.data import sources
from siamattn_ros.model import build_model, load_model
from siamattn_ros.testing.checkpoints import TINY_MODEL
from siamattn_ros.train.config import TrainConfig
from siamattn_ros.train.loop import build_optimizer, train

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sources.available(),
                                reason=f"opencv-doc data not installed at {sources.OPENCV_DATA} (apt-get install opencv-doc)")


def tiny_config(tmp_path: Path, **kw) -> TrainConfig:
    model_yaml = tmp_path / "tiny_model.yaml"
    model_yaml.write_text(yaml.safe_dump(TINY_MODEL))
    base = dict(model=str(model_yaml), out_dir=str(tmp_path / "run"), steps=2, batch_size=2, threads=1,
                optimizer="adamw", base_lr=1e-3, end_lr=1e-4, warmup_steps=0, backbone_unfreeze_at=0.0,
                neg_prob=0.0, log_every=1, save_every=1, progress=False, seed=3,
                sources=[{"type": "synthetic", "split": "train", "frame_size": [192, 192]}],
                targets={"roi_per_img": 2})
    base.update(kw)
    return TrainConfig(**base)


def test_every_parameter_optimised_and_resume(tmp_path):
    cfg = tiny_config(tmp_path)
    torch.manual_seed(cfg.seed)
    initial = build_model(cfg.model)
    opt = build_optimizer(initial, cfg)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in initial.parameters()}
    # Step 1, stop, then resume for step 2.
    train(cfg, max_steps_this_run=1)
    state = torch.load(Path(cfg.out_dir) / "checkpoint_last.pth", weights_only=False)
    assert state["step"] == 1
    train(cfg, resume=True)
    state = torch.load(Path(cfg.out_dir) / "checkpoint_last.pth", weights_only=False)
    assert state["step"] == 2
    rows = (Path(cfg.out_dir) / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,lr,total") and [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    assert (Path(cfg.out_dir) / "losses.png").stat().st_size > 0
    trained = load_model(Path(cfg.out_dir) / "model_last.pth")
    before = dict(initial.named_parameters())
    unchanged = [n for n, p in trained.named_parameters() if torch.equal(p.detach(), before[n].detach())]
    assert not unchanged, f"parameters never updated: {unchanged}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_gloo(tmp_path):
    cfg = tiny_config(tmp_path, steps=1, batch_size=1)
    path = tmp_path / "train.yaml"
    d = cfg.to_dict()
    path.write_text(yaml.safe_dump(d))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "siamattn_ros.tools.train", "--config", str(path), "--no-progress", "--device", "cpu"]
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "world_size 2 (gloo)" in p.stdout + p.stderr
    rows = (Path(cfg.out_dir) / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1"]
    assert (Path(cfg.out_dir) / "model_last.pth").is_file()


def test_fine_tuning_start_keeps_the_files_weights_and_names_what_started_fresh(tmp_path, capsys):
    """init_checkpoint: a file with the quality head keeps it (fine-tuning the shipped model); a file without it (an
    older model) starts that head fresh, and the log says which."""
    head = dict(TINY_MODEL, iou_head=True)
    from siamattn_ros.model import ModelConfig, save_checkpoint
    with_head = build_model(ModelConfig(**head))
    torch.manual_seed(11)
    for p in with_head.parameters():
        p.data.normal_(0, 0.05)
    save_checkpoint(with_head, tmp_path / "with_head.pth")
    older = build_model(ModelConfig(**TINY_MODEL))
    older.load_state_dict({k: v for k, v in with_head.state_dict().items() if not k.startswith("iou_head.")})
    save_checkpoint(older, tmp_path / "older.pth")
    for name, fresh in (("with_head", "none"), ("older", "iou_head")):
        model_yaml = tmp_path / "head_model.yaml"
        model_yaml.write_text(yaml.safe_dump(head))
        cfg = tiny_config(tmp_path, model=str(model_yaml), out_dir=str(tmp_path / f"run_{name}"), steps=1,
                          base_lr=1e-12, end_lr=1e-12, init_checkpoint=str(tmp_path / f"{name}.pth"))
        train(cfg)
        assert f"initialised from {cfg.init_checkpoint} (started fresh: {fresh})" in capsys.readouterr().out
        trained = load_model(Path(cfg.out_dir) / "model_last.pth").state_dict()
        src = with_head.state_dict()
        w = next(k for k in src if k.startswith("iou_head.") and k.endswith("weight"))
        same_head = torch.allclose(trained[w].float(), src[w].float(), atol=1e-4)
        assert same_head == (fresh == "none")
