"""Convert a training snapshot into the shipped fp16 checkpoint (carries its ModelConfig).

    python -m siamattn_ros.train.export runs/embedded/model_last.pth models/siamattn_mnv2_embedded.pth
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from siamattn_ros.model import load_model, save_checkpoint


def export_half(src: str | Path, dst: str | Path, note: str = "") -> Path:
    src, dst = Path(src), Path(dst)
    raw = torch.load(src, map_location="cpu", weights_only=True)
    model = load_model(src)
    extra = {k: raw[k] for k in ("train_step", "train_elapsed_s", "train_model") if k in raw}
    if note:
        extra["note"] = note
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, dst, half=True, extra=extra)
    return dst


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit("usage: python -m siamattn_ros.train.export SNAPSHOT.pth OUT.pth [NOTE]")
    out = export_half(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
