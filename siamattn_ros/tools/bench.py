"""Per-call timings of the SiamAttn network (random weights; speed does not depend on the values).

    python -m siamattn_ros.tools.bench [--model siamattn_r50|siamattn_mnv2|all] [--device cpu|cuda] [--half]
                                       [--iters N] [--threads T] [--no-fuse] [--check]

Prints median / min / max milliseconds of template(), track(), bbox_refine(), mask_refine() (+ sigmoid) and of the
whole per-frame network (track + both refinements, one RoI each, as in tracking). Inputs cycle over 3 random crops.
The process CPU time is printed too: on a shared machine, with --threads 1, it estimates the wall time the same
work takes on an idle core (wall-clock numbers there mostly measure the other processes).
--check also runs the unprepared reference model (torchvision deformable conv, BatchNorm kept, fp32) on the same
inputs and prints the largest output difference relative to the output's magnitude.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

from siamattn_ros.model import build_model, prepare_for_inference


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> Tuple[float, float]:
    """(wall ms, process CPU ms) of one call."""
    _sync(device)
    c = time.process_time()
    t = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - t) * 1000.0, (time.process_time() - c) * 1000.0


def _randomise(model: torch.nn.Module) -> None:
    """Non-zero attention scales and offset layers so the benchmark exercises the real data paths."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.1)
            elif ".offset_fc.4." in name or ".conv_offset." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 1e-3)


def _outputs(model, x, roi_box, roi_mask) -> Dict[str, torch.Tensor]:
    out = model.track(x)
    return {"cls": out["cls"].float(), "loc": out["loc"].float(), "box": model.bbox_refine(roi_box).float(),
            "mask": model.mask_refine(roi_mask).sigmoid().float()}


def bench(name: str, device: torch.device, half: bool, iters: int, warmup: int, fuse: bool, check: bool) -> None:
    torch.manual_seed(0)
    base = build_model(name, pretrained=False)
    _randomise(base)
    base.eval()
    ref = copy.deepcopy(base) if check else None
    if ref is not None:
        ref.set_deform_impl("torchvision")
    model = prepare_for_inference(base, device, half=half, fuse=fuse)
    dtype = torch.float16 if half else torch.float32
    g = torch.Generator().manual_seed(1)
    z = (torch.rand(1, 3, 127, 127, generator=g) * 255).to(device, dtype)
    xs = [(torch.rand(1, 3, 255, 255, generator=g) * 255).to(device, dtype) for _ in range(3)]
    roi_box = torch.tensor([[0, 80.0, 90.0, 175.0, 165.0]], device=device, dtype=dtype)
    roi_mask = torch.tensor([[0, 79.5, 89.5, 175.5, 165.5]], device=device, dtype=dtype)
    times: Dict[str, List[Tuple[float, float]]] = {k: [] for k in ("template", "track", "bbox_refine",
                                                                     "mask_refine", "frame")}
    with torch.inference_mode():
        for i in range(warmup + iters):
            t_z = _timed(lambda: model.template(z), device)
            x = xs[i % len(xs)]
            t_t = _timed(lambda: model.track(x), device)
            t_b = _timed(lambda: model.bbox_refine(roi_box), device)
            t_m = _timed(lambda: model.mask_refine(roi_mask).sigmoid(), device)
            if i >= warmup:
                frame = (t_t[0] + t_b[0] + t_m[0], t_t[1] + t_b[1] + t_m[1])
                for k, v in zip(times, (t_z, t_t, t_b, t_m, frame)):
                    times[k].append(v)
    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(f"{name}  device={device.type}  dtype={'fp16' if half else 'fp32'}  fused={fuse}  threads={threads}  "
          f"iters={iters}  params={sum(p.numel() for p in model.parameters()) / 1e6:.2f}M", flush=True)
    for k, v in times.items():
        wall = [w for w, _ in v]
        cpu = [c for _, c in v]
        print(f"  {k:12s} median {statistics.median(wall):9.2f} ms   min {min(wall):9.2f}   max {max(wall):9.2f}"
              f"   | process CPU median {statistics.median(cpu):9.2f} ms", flush=True)
    if ref is not None:
        ref.to(device)
        with torch.inference_mode():
            ref.template(z.float())
            model.template(z)
            diffs = []
            for x in xs:
                a = _outputs(ref, x.float(), roi_box.float(), roi_mask.float())
                b = _outputs(model, x, roi_box, roi_mask)
                diffs.append({k: ((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-6)).item() for k in a})
        worst = {k: max(d[k] for d in diffs) for k in diffs[0]}
        print("  max|prepared - reference| / max|reference|: " + "  ".join(f"{k} {v:.1e}" for k, v in worst.items()),
              flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="all", choices=["siamattn_r50", "siamattn_mnv2", "all"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--half", action="store_true", help="fp16 (CUDA only)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--no-fuse", action="store_true", help="keep BatchNorm layers")
    ap.add_argument("--check", action="store_true", help="compare outputs with the unprepared reference model")
    args = ap.parse_args(argv)
    if args.iters < 1:
        ap.error(f"--iters must be >= 1, got {args.iters}")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda requested but torch.cuda.is_available() is False")
    if args.half and args.device != "cuda":
        ap.error("--half needs --device cuda")
    torch.set_num_threads(args.threads)
    names = ["siamattn_mnv2", "siamattn_r50"] if args.model == "all" else [args.model]
    for name in names:
        bench(name, torch.device(args.device), args.half, args.iters, args.warmup, not args.no_fuse, args.check)


if __name__ == "__main__":
    main()
