"""Training configuration (dataclass, loadable from YAML; no global config)."""
from __future__ import annotations

from dataclasses import dataclass, field

from siamattn_ros.data.pairs import AugmentConfig
from siamattn_ros.train.targets import TargetConfig
from siamattn_ros.yaml_config import YamlConfig


@dataclass
class TrainConfig(YamlConfig):
    model: str = "siamattn_mnv2"          # built-in model name or ModelConfig YAML
    out_dir: str = "runs/embedded"
    steps: int = 3000                     # optimiser steps (the CPU budget is counted in steps, not epochs)
    batch_size: int = 4                   # per process
    seed: int = 0
    threads: int = 2                      # torch CPU threads per process
    num_workers: int = 0                  # DataLoader workers (0: generate pairs in the training process)
    device: str = "auto"                  # auto | cpu | cuda
    deform_impl: str = "grid_sample"      # deformable-conv kernel used while training (much faster backward on CPU)
    # --- optimiser and schedule ---
    optimizer: str = "sgd"                # sgd (paper) | adamw
    base_lr: float = 0.005
    end_lr: float = 0.0005
    warmup_start_lr: float = 0.001
    warmup_steps: int = 500
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float = 10.0
    backbone_lr_mult: float = 0.1
    backbone_unfreeze_at: float = 0.5     # fraction of the run after which the backbone trains
    # Wall-clock budget in minutes (0 = off). When set, the run's progress (LR decay, unfreezing) is the larger of
    # steps done / steps and time spent / budget, and training stops when the budget is spent: on a shared CPU
    # the number of steps that fit is not known in advance.
    time_budget_min: float = 0.0
    backbone_bn_train: bool = False       # keep backbone BN statistics frozen (tiny batches)
    # --- losses ---
    cls_weight: float = 5.0
    loc_weight: float = 1.2
    bbox_weight: float = 1.0
    mask_weight: float = 0.5
    mask_ohem_keep: float = 0.7
    iou_weight: float = 1.0               # box-quality (IoU prediction) head, models with cfg.iou_head
    # Start from the weights of this checkpoint (fine-tuning); modules it lacks (e.g. a new iou_head) start fresh.
    init_checkpoint: str = ""
    # --- data ---
    neg_prob: float = 0.2
    sources: list = field(default_factory=lambda: [{"type": "synthetic", "weight": 1.0, "split": "train"}])
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    # --- bookkeeping ---
    log_every: int = 10
    save_every: int = 200                 # resumable checkpoint + model snapshot
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)
        if isinstance(self.targets, dict):
            self.targets = TargetConfig(**self.targets)
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if not 0.0 <= self.backbone_unfreeze_at <= 1.0:
            raise ValueError(f"backbone_unfreeze_at must be a fraction in [0, 1], got {self.backbone_unfreeze_at}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
