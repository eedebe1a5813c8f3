"""Node overhead: tracker_node's processing_time next to the tracker's own per-frame time, same frames, one run.

    python -m siamattn_ros.tools.bench_node                 # 640x480, 40 frames, 1 torch thread, shipped model
    python -m siamattn_ros.tools.bench_node --size 1280x720 --threads 2 --frames 60

Starts tracker_node in a child process and the same tracker (model, device, thread count) in another child process
without ROS, initialises both on the first frame (the node through ~/init), then, frame by frame in turn, has the
second time `Tracker.track(frame, want_mask=True)` and sends the frame to the node, waiting for its result (none is dropped)
and reading its `processing_time` (the node's time from taking the frame to the result: image conversion, tracking
with the mask, result message). Interleaving makes both sides see the same machine load. Frames: the textured
object over a textured background of bench_tracker. Prints both
medians and their difference, the node's overhead per frame, and the node's own split of the same frames
(diagnostics `tracker_time_ms` / `node_overhead_ms`: the tracker call timed inside the node, and the rest of
processing_time), which no load difference between two processes can blur. Both processes get
config/fastdds_large_images.xml (large best-effort images, see bench_delivery).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Optional

from siamattn_ros.tools.bench_delivery import PROFILE, node_diagnostics, profile_env


def _ms(duration) -> float:
    return duration.sec * 1e3 + duration.nanosec * 1e-6


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_node", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="640x480", help="frame size WxH (default %(default)s)")
    parser.add_argument("--frames", type=int, default=40, help="frames tracked (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default %(default)s)")
    parser.add_argument("--model", default="embedded", help="tracker model (default: the shipped embedded model)")
    parser.add_argument("--alone", action="store_true", help=argparse.SUPPRESS)  # the tracker-alone child process
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    os.environ.update({k: v for k, v in profile_env(PROFILE).items() if "PROFILES_FILE" in k})
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))

    import torch

    from siamattn_ros.interface.presets import resolve_preset
    from siamattn_ros.tools.bench_tracker import make_frames
    from siamattn_ros.tracker import build_tracker
    from siamattn_ros.tracker.config import load_preset

    if args.alone:  # the tracker alone, in a process without ROS: track frame i for each i read from stdin
        torch.set_num_threads(args.threads)
        frames, box = make_frames(width, height, args.frames)
        tracker = build_tracker(model=args.model, device="cpu", config=load_preset(resolve_preset(args.model, "", "")))
        tracker.init(frames[0], box)
        print("ready", flush=True)
        for line in sys.stdin:
            t = time.perf_counter()
            tracker.track(frames[int(line)], want_mask=True)
            print(f"{(time.perf_counter() - t) * 1e3:.3f}", flush=True)
        return 0
    frames, box = make_frames(width, height, args.frames)
    alone = subprocess.Popen([sys.executable, "-m", "siamattn_ros.tools.bench_node", "--alone", "--size", args.size,
                              "--frames", str(args.frames), "--threads", str(args.threads), "--model", args.model],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if alone.stdout.readline().strip() != "ready":
        raise RuntimeError("the tracker process did not start")

    from siamattn_ros.ros.messages import xywh_to_box
    from siamattn_ros.testing.node_session import connected_node

    topic = f"/bench_node_{os.getpid()}/image_raw"
    own, in_node, split = [], [], {}
    try:
        with connected_node({"model": args.model, "device": "cpu", "num_threads": args.threads}, topic,
                            driver_args={"collect_images": False}) as (_, driver):
            response = driver.init_service(driver.image_msg(frames[0], 1_000_000_000), xywh_to_box(box), timeout=120)
            if not response.success:
                raise RuntimeError(f"init refused: {response.message}")
            # Interleaved, one frame each in turn: both sides see the same machine load (the other side is idle then).
            for i, f in enumerate(frames[1:], start=1):
                alone.stdin.write(f"{i}\n")
                alone.stdin.flush()
                own.append(float(alone.stdout.readline()))
                result = driver.publish_and_wait(driver.image_msg(f, 1_000_000_000 + i * 33_333_333), timeout=60)
                in_node.append(_ms(result.processing_time))
            n = len(driver.diagnostics)
            driver.wait_until(lambda: len(driver.diagnostics) > n, 10)
            split = node_diagnostics(driver)   # the node's own split of its last 5 s: tracker call vs the rest
    finally:
        alone.stdin.close()
        alone.wait(60)
    a, b = statistics.median(own), statistics.median(in_node)
    print(f"\n{args.size}, {len(own)} frames, {args.threads} torch thread(s), model {args.model}, mask on:")
    print(f"  tracker alone (Tracker.track, process without ROS), median ms: {a:8.1f}")
    print(f"  tracker_node processing_time (TrackResult), median ms:   {b:8.1f}")
    print(f"  node overhead per frame, ms:                            {b - a:+8.1f}")
    print("  in the node, same frames (diagnostics, mean of the last 5 s):")
    print(f"    tracker call, ms:                                     {float(split.get('tracker_time_ms', 'nan')):8.1f}")
    print(f"    node overhead (conversion, messages), ms:             {float(split.get('node_overhead_ms', 'nan')):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
