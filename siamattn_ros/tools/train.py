"""Train a SiamAttn model.

Single process (CPU or one GPU):
    python -m siamattn_ros.tools.train --config config/train/embedded.yaml
Several processes / GPUs / nodes (DDP; gloo on CPU, nccl on CUDA):
    torchrun --nproc_per_node 2 -m siamattn_ros.tools.train --config config/train/embedded.yaml
Resume after an interruption (same --config / --out-dir):
    python -m siamattn_ros.tools.train --config config/train/embedded.yaml --resume
Writes under out_dir: log.csv, losses.png, checkpoint_last.pth (resumable), model_stepNNNNNN.pth / model_last.pth
(model snapshots loadable with siamattn_ros.model.load_model).
"""
from __future__ import annotations

import argparse
import sys

from siamattn_ros.train.config import TrainConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="TrainConfig YAML (e.g. config/train/embedded.yaml)")
    ap.add_argument("--resume", action="store_true", help="continue from <out_dir>/checkpoint_last.pth if present")
    ap.add_argument("--out-dir", help="override out_dir")
    ap.add_argument("--steps", type=int, help="override steps")
    ap.add_argument("--batch-size", type=int, help="override batch_size (per process)")
    ap.add_argument("--time-budget-min", type=float, help="override time_budget_min (0 = off)")
    ap.add_argument("--max-steps-this-run", type=int, help="stop after this many steps (resume later)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override device")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    args = ap.parse_args(argv)
    cfg = TrainConfig.from_yaml(args.config)
    for key in ("out_dir", "steps", "batch_size", "time_budget_min", "device"):
        v = getattr(args, key)
        if v is not None:
            setattr(cfg, key, v)
    if args.no_progress:
        cfg.progress = False
    cfg.__post_init__()
    from siamattn_ros.train.loop import train

    path = train(cfg, resume=args.resume, max_steps_this_run=args.max_steps_this_run)
    print(f"last model snapshot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
