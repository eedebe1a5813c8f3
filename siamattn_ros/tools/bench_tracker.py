"""End-to-end tracker timing: image in -> TrackResult out (mask included), per frame, at 640×480 and 1280×720,
broken into crop / network / decode / size check / mask head / mask paste.

    python -m siamattn_ros.tools.bench_tracker [--model embedded|siamattn_r50|siamattn_mnv2|<ckpt>] [--device cpu]
        [--half] [--threads N] [--frames 30] [--no-mask] [--tracker-config PRESET|YAML]
        [--vs-checkpoint OTHER.pth] [--vs-tracker-config PRESET|YAML] [--rounds 3]

With --vs-checkpoint and/or --vs-tracker-config the same measurement runs for a second tracker B (another checkpoint,
another tracker config, or both; the rest as A) in the same process, alternating A, B, A, B (the machine's speed
drifts), and prints the per-frame ratio B / A (wall and process CPU time).

Frames are a textured object moving over a textured background (content does not change the cost). If the shipped
embedded checkpoint (or a siamattn_r50 --checkpoint) is missing, the same architecture runs with random weights:
speed does not depend on the weight values, and the output says so.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

SIZES: Tuple[Tuple[int, int], ...] = ((640, 480), (1280, 720))
STAGES = ("crop", "network", "decode", "size_check", "template_search", "mask_head", "paste")


def make_frames(width: int, height: int, n: int, seed: int = 0) -> Tuple[List[np.ndarray], Tuple[float, ...]]:
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8), (width, height),
                    interpolation=cv2.INTER_LINEAR)
    side = max(40, min(width, height) // 6)
    obj = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (side, side), interpolation=cv2.INTER_NEAREST)
    frames = []
    for i in range(n + 1):
        img = bg.copy()
        x = int(width * 0.3 + 3 * i) % (width - side)
        y = int(height * 0.4 + 2 * i) % (height - side)
        img[y:y + side, x:x + side] = obj
        frames.append(img)
    x0, y0 = int(width * 0.3), int(height * 0.4)
    return frames, (float(x0), float(y0), float(side), float(side))


def bench(tracker, width: int, height: int, n: int, want_mask: bool, profile: bool) -> Dict[str, float]:
    frames, box = make_frames(width, height, n)
    tracker.profile = profile
    tracker.init(frames[0], box)
    for f in frames[1:4]:  # warm-up at this resolution
        tracker.track(f, want_mask=want_mask)
    tracker.init(frames[0], box)
    totals: List[float] = []
    cpu: List[float] = []
    stages: Dict[str, List[float]] = {k: [] for k in STAGES}
    for f in frames[1:]:
        t, c = time.perf_counter(), time.process_time()
        tracker.track(f, want_mask=want_mask)
        totals.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
        for k in STAGES:
            stages[k].append(tracker.last_timings.get(k, 0.0))
    # process CPU time: on a shared machine it shows the cost without the waiting for a core (with 1 thread it
    # equals the wall time of an idle machine).
    out = {"total_ms": statistics.median(totals), "cpu_ms": statistics.median(cpu)}
    out.update({f"{k}_ms": statistics.median(v) for k, v in stages.items()})
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m siamattn_ros.tools.bench_tracker",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--half", action="store_true", help="fp16 autocast (CUDA only)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    ap.add_argument("--frames", type=int, default=30, help="timed frames per resolution")
    ap.add_argument("--no-mask", action="store_true")
    ap.add_argument("--no-cuda-graph", action="store_true")
    ap.add_argument("--vs-checkpoint", default=None, metavar="OTHER",
                    help="also time this checkpoint (B), alternating with A, and print B / A")
    ap.add_argument("--tracker-config", default=None, metavar="PRESET|YAML",
                    help="tracker preset or TrackerConfig YAML of A (default: the model's preset)")
    ap.add_argument("--vs-tracker-config", default=None, metavar="PRESET|YAML",
                    help="time A's model (or --vs-checkpoint) with this tracker config as B")
    ap.add_argument("--rounds", type=int, default=3,
                    help="A/B alternations per size with --vs-checkpoint / --vs-tracker-config")
    args = ap.parse_args(argv)

    import torch

    from siamattn_ros.tracker import build_tracker
    from siamattn_ros.tracker.build import find_embedded_checkpoint

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    weights = "trained"
    if args.model == "embedded" and args.checkpoint is None:
        try:
            find_embedded_checkpoint()
        except FileNotFoundError:
            weights = "RANDOM (embedded checkpoint not found; speed does not depend on weights)"
    elif args.model in ("siamattn_r50", "siamattn_mnv2") and args.checkpoint is None:
        weights = "RANDOM (no --checkpoint; speed does not depend on weights)"
    overrides = {"cuda_graph": not args.no_cuda_graph}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from siamattn_ros.interface.presets import resolve_preset
        from siamattn_ros.tracker.config import load_preset

        cfg = load_preset(args.tracker_config or resolve_preset(args.model, args.checkpoint)).replace(**overrides)
        tracker = build_tracker(args.model, checkpoint=args.checkpoint, device=args.device, half=args.half,
                                config=cfg, random_weights=True)
    build_s = time.perf_counter() - t0
    print(f"model={args.model} weights={weights} device={args.device} half={args.half} "
          f"threads={torch.get_num_threads()} torch={torch.__version__} mask={not args.no_mask} "
          f"cuda_graph={overrides['cuda_graph'] and tracker.device.type == 'cuda'} build+warmup={build_s:.1f}s")
    print(f"{'size':>10} {'end-to-end ms':>14} {'FPS':>6} {'CPU ms':>7} | stage medians, synced (ms): "
          + " ".join(f"{k:>9}" for k in STAGES))
    if args.vs_checkpoint or args.vs_tracker_config:
        b_model = args.vs_checkpoint or args.model
        b_checkpoint = None if args.vs_checkpoint else args.checkpoint
        b_cfg = args.vs_tracker_config or resolve_preset(b_model, b_checkpoint)
        other = build_tracker(b_model, checkpoint=b_checkpoint, device=args.device, half=args.half,
                              config=load_preset(b_cfg).replace(**overrides),
                              random_weights=not args.vs_checkpoint)  # B's own checkpoint must exist, as before
        a_name = f"{args.checkpoint or args.model} ({args.tracker_config or 'its preset'})"
        print(f"A = {a_name}, B = {b_checkpoint or b_model} ({b_cfg}); {args.rounds} alternations of "
              f"{args.frames} frames per size; medians over the rounds")
        print(f"{'size':>10} {'A ms':>8} {'B ms':>8} {'B/A':>6} | {'A CPU ms':>9} {'B CPU ms':>9} {'B/A CPU':>8}")
        for w, h in SIZES:
            runs: Dict[str, List[Dict[str, float]]] = {"a": [], "b": []}
            for _ in range(args.rounds):
                runs["a"].append(bench(tracker, w, h, args.frames, not args.no_mask, profile=False))
                runs["b"].append(bench(other, w, h, args.frames, not args.no_mask, profile=False))
            med = {k: {m: statistics.median(r[m] for r in v) for m in ("total_ms", "cpu_ms")} for k, v in runs.items()}
            ratios = [rb["cpu_ms"] / ra["cpu_ms"] for ra, rb in zip(runs["a"], runs["b"])]
            wall = [rb["total_ms"] / ra["total_ms"] for ra, rb in zip(runs["a"], runs["b"])]
            print(f"{w}x{h:<6} {med['a']['total_ms']:8.1f} {med['b']['total_ms']:8.1f} {statistics.median(wall):6.2f} | "
                  f"{med['a']['cpu_ms']:9.1f} {med['b']['cpu_ms']:9.1f} {statistics.median(ratios):8.2f}")
        return 0
    for w, h in SIZES:
        plain = bench(tracker, w, h, args.frames, not args.no_mask, profile=False)
        prof = bench(tracker, w, h, max(5, args.frames // 2), not args.no_mask, profile=True)
        fps = 1e3 / plain["total_ms"]
        print(f"{w}x{h:<6} {plain['total_ms']:14.1f} {fps:6.1f} {plain['cpu_ms']:7.1f} | {'':28}"
              + " ".join(f"{prof[k + '_ms']:9.2f}" for k in STAGES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
