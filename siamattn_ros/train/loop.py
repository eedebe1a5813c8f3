"""Training loop: single CPU process or torchrun (DDP: gloo on CPU, nccl on CUDA), resumable, CSV + PNG logs."""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from siamattn_ros.model import build_model, save_checkpoint
from siamattn_ros.model.siamattn import SiamAttn
from siamattn_ros.train.config import TrainConfig
from siamattn_ros.train.dataset import PairDataset, ShardSampler, build_sources
from siamattn_ros.train.losses import (box_quality_loss, box_refine_loss, mask_refine_loss, rpn_cls_loss,
                                       rpn_loc_loss)
from siamattn_ros.train.schedule import lr_at_fraction
from siamattn_ros.train.targets import (AnchorTargets, box_refine_targets, decode_rpn, mask_refine_targets,
                                        sample_quality_rois, sample_rois)

LOSS_KEYS = ("total", "cls", "loc", "bbox", "mask", "iou")


class TrainStep(nn.Module):
    """Full training forward as one module (DDP hooks only forward()): returns the weighted losses."""

    def __init__(self, model: SiamAttn, cfg: TrainConfig, targets: AnchorTargets) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.register_buffer("anchors", torch.from_numpy(targets.anchors_cxcywh).float(), persistent=False)
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def forward(self, batch: dict) -> dict:
        m, c = self.model, self.cfg
        mc = m.cfg
        m.template(batch["template"])
        out = m.track(batch["search"])
        l_cls = rpn_cls_loss(out["cls"], batch["label_cls"])
        l_loc = rpn_loc_loss(out["loc"], batch["label_loc"], batch["label_loc_weight"])
        gt = batch["box"]
        valid = ~batch["negative"]
        with torch.no_grad():
            proposals = decode_rpn(out["loc"].detach().float(), self.anchors, mc.instance_size)
        rois, gts = sample_rois(proposals.cpu(), gt.float().cpu(), valid.cpu(), c.targets, self.generator)
        rois, gts = rois.to(gt.device), gts.to(gt.device)
        dummy = rois.size(0) == 0
        if dummy:  # all negative pairs: run the heads on one RoI with zero weight so every parameter is used
            rois = torch.tensor([[0.0, 64.0, 64.0, 191.0, 191.0]], device=gt.device)
            gts = rois[:, 1:].clone()
        pred_box = m.bbox_refine(rois)
        l_bbox = box_refine_loss(pred_box, box_refine_targets(rois, gts, mc.bbox_stds))
        logits = m.mask_refine(rois)
        bidx = rois[:, 0].long()
        has = batch["has_mask"][bidx]
        if has.any() and not dummy:
            tgt = mask_refine_targets(batch["mask"], rois, mc.mask_out_size)
            l_mask = mask_refine_loss(logits[has], tgt[has], c.mask_ohem_keep)
        else:
            l_mask = logits.sum() * 0.0
        if dummy:
            l_bbox = l_bbox * 0.0
        if m.iou_head is not None:
            fg = torch.softmax(out["cls"].detach().float().reshape(gt.size(0), 2, -1), dim=1)[:, 1]
            qrois, qiou = sample_quality_rois(proposals.cpu(), gt.float().cpu(), batch["negative"].cpu(), c.targets,
                                              self.generator, mc.instance_size, batch["image_box"].float().cpu(),
                                              fg.cpu())
            l_iou = box_quality_loss(m.box_quality(qrois.to(gt.device)), qiou.to(gt.device))
        else:
            l_iou = l_cls * 0.0
        total = (c.cls_weight * l_cls + c.loc_weight * l_loc + c.bbox_weight * l_bbox + c.mask_weight * l_mask
                 + c.iou_weight * l_iou)
        return {"total": total, "cls": l_cls, "loc": l_loc, "bbox": l_bbox, "mask": l_mask, "iou": l_iou}


def _backbone_trainable(model: SiamAttn, on: bool, bn_train: bool) -> None:
    for p in model.backbone.parameters():
        p.requires_grad_(on)
    for mod in model.backbone.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.train(on and bn_train)


def build_optimizer(model: SiamAttn, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Every parameter of the model is in the optimiser: backbone group (lr x backbone_lr_mult) + everything else.

    (The authors' released optimiser builder left out feature_enhance, feature_fusion and bbox_head.)
    """
    bb = list(model.backbone.parameters())
    bb_ids = {id(p) for p in bb}
    rest = [p for p in model.parameters() if id(p) not in bb_ids]
    groups = [{"params": bb, "lr_mult": cfg.backbone_lr_mult}, {"params": rest, "lr_mult": 1.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.base_lr, weight_decay=cfg.weight_decay)


def _dist_info() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def plot_losses(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    steps = np.array([int(r["step"]) for r in rows])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k in LOSS_KEYS:
        v = np.array([float(r[k]) for r in rows])
        ax.plot(steps, v, label=k, lw=1.2 if k == "total" else 0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (running mean)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def train(cfg: TrainConfig, resume: bool = False, max_steps_this_run: Optional[int] = None) -> Path:
    """Train; returns the path of the last model snapshot (rank 0). Safe to call again with resume=True."""
    rank, world, local_rank = _dist_info()
    distributed = world > 1
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if distributed:
            print(f"DDP world_size {world} ({dist.get_backend()}) on {device}", flush=True)

    model = build_model(cfg.model)
    if cfg.init_checkpoint and not (resume and (out / "checkpoint_last.pth").is_file()):
        from siamattn_ros.model import load_checkpoint

        fresh = tuple(n for n in ("iou_head",) if getattr(model, n, None) is not None)
        before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(fresh)} if fresh else {}
        load_checkpoint(model, cfg.init_checkpoint, new_modules=fresh)
        # A module whose weights the file did not replace kept its initial ones: it starts fresh.
        unchanged = sorted({k.split(".")[0] for k, v in model.state_dict().items()
                            if k in before and v.is_floating_point() and v.numel() > 1 and torch.equal(v, before[k])})
        if rank == 0:
            print(f"initialised from {cfg.init_checkpoint} (started fresh: {', '.join(unchanged) or 'none'})")
    model.set_deform_impl(cfg.deform_impl)
    mc = model.cfg
    targets = AnchorTargets(mc.anchor_stride, mc.anchor_ratios, mc.anchor_scales, mc.score_size, mc.instance_size,
                            cfg.targets)
    step_module = TrainStep(model, cfg, targets).to(device)
    optimizer = build_optimizer(model, cfg)
    start = 0
    elapsed_before = 0.0
    last = out / "checkpoint_last.pth"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
        elapsed_before = float(state.get("elapsed_s", 0.0))
        step_module.generator.set_state(state["roi_rng"])
        if rank == 0:
            print(f"resumed from {last} at step {start}")

    sources, weights = build_sources(cfg.sources)
    data = PairDataset(sources, weights, targets, cfg.augment, mc.exemplar_size, mc.instance_size, cfg.neg_prob,
                       length=cfg.steps * cfg.batch_size * world, seed=cfg.seed)
    end = cfg.steps if max_steps_this_run is None else min(cfg.steps, start + max_steps_this_run)
    end_planned = end
    loader = DataLoader(data, batch_size=cfg.batch_size,
                        sampler=ShardSampler(start, end, cfg.batch_size, rank, world),
                        num_workers=cfg.num_workers, drop_last=True, persistent_workers=False)

    def wrap(phase_on: bool) -> nn.Module:
        _backbone_trainable(model, phase_on, cfg.backbone_bn_train)
        if not distributed:
            return step_module
        return nn.parallel.DistributedDataParallel(step_module, device_ids=[device.index] if use_cuda else None)

    model.train()
    phase = start / cfg.steps >= cfg.backbone_unfreeze_at or (
        cfg.time_budget_min > 0 and elapsed_before / (60.0 * cfg.time_budget_min) >= cfg.backbone_unfreeze_at)
    runner = wrap(phase)
    csv_path = out / "log.csv"
    new_csv = rank == 0 and (not resume or not csv_path.is_file())
    if rank == 0:
        fh = open(csv_path, "w" if new_csv else "a", newline="")
        writer = csv.writer(fh)
        if new_csv:
            writer.writerow(["step", "lr", *LOSS_KEYS, "sec_per_step", "wall_s"])
    bar = None
    if rank == 0 and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=end - start, initial=0, desc="train", dynamic_ncols=True)
    running = {k: 0.0 for k in LOSS_KEYS}
    n_run = 0
    t0 = time.time()
    t_last = t0
    step = start
    snapshot = out / "model_last.pth"
    for batch in loader:
        if step >= end:
            break
        frac = step / cfg.steps
        if cfg.time_budget_min > 0:
            spent = elapsed_before + time.time() - t0
            frac = max(frac, spent / (60.0 * cfg.time_budget_min))
            if distributed:  # every rank must take the same decisions
                f = torch.tensor([frac], device=device)
                dist.all_reduce(f, op=dist.ReduceOp.MAX)
                frac = float(f)
            if frac >= 1.0:
                if rank == 0:
                    print(f"time budget of {cfg.time_budget_min} min reached at step {step}")
                end = step
                break
        if (frac >= cfg.backbone_unfreeze_at) != phase:
            phase = frac >= cfg.backbone_unfreeze_at
            runner = wrap(phase)
            if rank == 0:
                print(f"step {step}: backbone {'trainable' if phase else 'frozen'}")
        lr = lr_at_fraction(frac, step, cfg.base_lr, cfg.end_lr, cfg.warmup_start_lr, cfg.warmup_steps)
        for g in optimizer.param_groups:
            g["lr"] = lr * g["lr_mult"]
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        losses = runner(batch)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if not torch.isfinite(losses["total"]):
            raise FloatingPointError(f"non-finite loss at step {step}: { {k: float(v) for k, v in losses.items()} }")
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.grad_clip)
        optimizer.step()
        step += 1
        for k in LOSS_KEYS:
            running[k] += float(losses[k].detach())
        n_run += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(losses['total']):.3f}", lr=f"{lr:.2e}")
        if rank == 0 and (step % cfg.log_every == 0 or step == end):
            now = time.time()
            writer.writerow([step, f"{lr:.6g}", *(f"{running[k] / n_run:.5f}" for k in LOSS_KEYS),
                             f"{(now - t_last) / n_run:.3f}", f"{now - t0:.1f}"])
            fh.flush()
            running = {k: 0.0 for k in LOSS_KEYS}
            n_run = 0
            t_last = now
        if rank == 0 and (step % cfg.save_every == 0 or step == end):
            _save(model, optimizer, step_module, cfg, step, out, elapsed_before + time.time() - t0)
            plot_losses(csv_path, out / "losses.png")
    if rank == 0 and step > start and step % cfg.save_every != 0 and step != end_planned:
        _save(model, optimizer, step_module, cfg, step, out, elapsed_before + time.time() - t0)
        plot_losses(csv_path, out / "losses.png")
    if bar is not None:
        bar.close()
    if rank == 0:
        fh.close()
    if distributed:
        dist.barrier()
    return snapshot


def _save(model: SiamAttn, optimizer: torch.optim.Optimizer, step_module: TrainStep, cfg: TrainConfig, step: int,
          out: Path, elapsed_s: float) -> None:
    tmp = out / "checkpoint_last.pth.tmp"
    torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "roi_rng": step_module.generator.get_state(), "train_config": cfg.to_dict(),
                "elapsed_s": elapsed_s}, tmp)
    os.replace(tmp, out / "checkpoint_last.pth")  # atomic: a kill mid-save never leaves a broken checkpoint
    extra = {"train_step": step, "train_elapsed_s": round(elapsed_s, 1), "train_model": cfg.model}
    save_checkpoint(model, out / f"model_step{step:06d}.pth", extra=extra)
    save_checkpoint(model, out / "model_last.pth", extra=extra)
