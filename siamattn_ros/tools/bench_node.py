"""Node overhead: tracker_node's processing_time next to the tracker's own per-frame time, same frames, one run.

    python -m siamattn_ros.tools.bench_node                 # 640x480, 40 frames, 1 torch thread, shipped model
    python -m siamattn_ros.tools.bench_node --size 1280x720 --threads 2 --frames 60

First times `Tracker.track(frame, want_mask=True)` in this process on a sequence of frames (the same textured
object over a textured background as bench_tracker), then starts tracker_node in a child process with the same
model, device and thread count, initialises it on the first frame through ~/init and sends the frames one at a time
(each waits for its result, so none is dropped), reading `processing_time` from every TrackResult (the node's time
from taking the frame to the result: image conversion, tracking with the mask, result message). Prints both
medians and their difference, the node's overhead per frame. Both processes get config/fastdds_large_images.xml
(large best-effort images, see bench_delivery).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Optional

from siamattn_ros.tools.bench_delivery import PROFILE, profile_env


def _ms(duration) -> float:
    return duration.sec * 1e3 + duration.nanosec * 1e-6


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_node", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="640x480", help="frame size WxH (default %(default)s)")
    parser.add_argument("--frames", type=int, default=40, help="frames tracked (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides (default %(default)s)")
    parser.add_argument("--model", default="embedded", help="tracker model (default: the shipped embedded model)")
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

    torch.set_num_threads(args.threads)
    frames, box = make_frames(width, height, args.frames)
    cfg = load_preset(resolve_preset(args.model, "", ""))
    tracker = build_tracker(model=args.model, device="cpu", config=cfg)
    tracker.init(frames[0], box)
    own = []
    for f in frames[1:]:
        t = time.perf_counter()
        tracker.track(f, want_mask=True)
        own.append((time.perf_counter() - t) * 1e3)
    del tracker

    from siamattn_ros.ros.messages import xywh_to_box
    from siamattn_ros.testing.node_process import NodeProcess
    from siamattn_ros.testing.ros_client import TrackerDriver

    topic = f"/bench_node_{os.getpid()}/image_raw"
    node = NodeProcess(params={"model": args.model, "device": "cpu", "num_threads": args.threads},
                       remaps={"image": topic}).start()
    driver = None
    try:
        if not node.wait_for_log("ready:", 300):
            raise RuntimeError(f"tracker_node did not start:\n{node.log()[-3000:]}")
        driver = TrackerDriver(image_topic=topic, collect_images=False)
        if not driver.wait_for_connection(60):
            raise RuntimeError("no connection to tracker_node")
        first = driver.image_msg(frames[0], 1_000_000_000)
        response = driver.init_service(first, xywh_to_box(box), timeout=120)
        if not response.success:
            raise RuntimeError(f"init refused: {response.message}")
        in_node = []
        for i, f in enumerate(frames[1:], start=1):
            result = driver.publish_and_wait(driver.image_msg(f, 1_000_000_000 + i * 33_333_333), timeout=60)
            in_node.append(_ms(result.processing_time))
    finally:
        if driver is not None:
            driver.close()
        node.stop()
        node.cleanup()
    a, b = statistics.median(own), statistics.median(in_node)
    print(f"\n{args.size}, {len(own)} frames, {args.threads} torch thread(s), model {args.model}, mask on:")
    print(f"  tracker alone (Tracker.track in this process), median ms: {a:8.1f}")
    print(f"  tracker_node processing_time (TrackResult), median ms:   {b:8.1f}")
    print(f"  node overhead per frame, ms:                            {b - a:+8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
