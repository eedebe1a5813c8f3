"""Soak / load test of tracker_node: stream frames at a fixed rate for a long time and watch the node's memory.

    python -m siamattn_ros.tools.soak --seconds 600
    python -m siamattn_ros.tools.soak --seconds 60 --rate 60 --width 640 --height 480 --model models/x.pth

Starts tracker_node in a child process (real rclpy + DDS), publishes synthetic frames (a textured square moving over
a textured background) at --rate Hz with the wall clock as stamp, initialises on the first frame and re-initialises
every --reinit seconds on a frame from one second earlier (exercising the frame buffer and the fast-forward), and
samples the node's resident memory (RSS, /proc) every --sample seconds. Prints a table and a summary: RSS after
warm-up, at the end and at most, the RSS growth rate (least-squares slope after warm-up), frames published,
results received, processing rate, frames dropped by the node, and median latency. With --max-growth-mib-per-min the
exit code is 1 when the slope exceeds it. Without --model it uses the shipped embedded model when present, else a
seeded random siamattn_mnv2 (timing and memory are the same; tracks are meaningless).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np


def _default_model(tmp: Path) -> tuple[str, str]:
    try:
        from siamattn_ros.tracker import find_embedded_checkpoint

        return str(find_embedded_checkpoint()), "shipped embedded model"
    except FileNotFoundError:
        from siamattn_ros.testing.checkpoints import random_checkpoint

        path = random_checkpoint(tmp / "siamattn_mnv2_random.pth", seed=0)
        return str(path), "random siamattn_mnv2 (embedded checkpoint not found)"


def _slope_per_min(times: list[float], values: list[float]) -> float:
    if len(times) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(times), np.asarray(values), 1)[0]) * 60.0


def run(seconds: float, rate: float, width: int, height: int, model: Optional[str], device: str, threads: int,
        sample: float, reinit: float, warmup_fraction: float) -> dict:
    from siamattn_ros.interface.convert import NS_PER_S, duration_to_s, stamp_to_ns
    from siamattn_ros.interface.names import TOPIC_IMAGE
    from siamattn_ros.interface.states import TrackState
    from siamattn_ros.ros.messages import xywh_to_box
    from siamattn_ros.testing.frames import synthetic_frame
    from siamattn_ros.testing.node_process import NodeProcess
    from siamattn_ros.testing.ros_client import TrackerDriver, make_header

    tmp = Path(tempfile.mkdtemp(prefix="siamattn_soak_"))
    model_path, model_note = (model, "given") if model else _default_model(tmp)
    params = {"model": model_path, "device": device, "num_threads": threads, "diagnostics_period": 1.0}
    print(f"soak: {seconds:.0f} s at {rate:g} Hz, {width}x{height}, model {model_path} ({model_note}), "
          f"device {device}, ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}", flush=True)
    frames = [synthetic_frame(i, width, height, target=max(16, min(width, height) // 5), step=3.0)
              for i in range(60)]
    node = NodeProcess(params=params, remaps={TOPIC_IMAGE: "/soak/image_raw"}).start()
    driver = None
    try:
        if not node.wait_for_log("ready", 120):
            raise RuntimeError(f"tracker_node did not start:\n{node.log()}")
        driver = TrackerDriver(image_topic="/soak/image_raw", collect_images=False)
        if not driver.wait_for_connection(60):
            raise RuntimeError("no DDS connection to tracker_node")
        msgs = [driver.image_msg(img, 0) for img, _ in frames]
        history: list[tuple[int, object]] = []  # (index in frames, header) of the last ~2 s
        index_of: dict[int, int] = {}  # stamp -> index in frames, of the frames published lately
        processed_headers: list = []
        first_init_sent = False
        samples: list[tuple[float, float]] = []
        published = results = initialized = 0
        latencies: list[float] = []
        processing: list[float] = []
        start = time.monotonic()
        next_sample, next_reinit = start, start + reinit
        print(f"{'t_s':>7} {'rss_MiB':>8} {'published':>9} {'results':>8} {'dropped':>8}", flush=True)
        i = 0
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            k = i % len(msgs)
            msg = msgs[k]
            msg.header = make_header(time.time_ns(), "soak_camera")
            driver.publish_image(msg)
            history.append((k, msg.header))
            history = history[-int(2 * rate) - 1:]
            if len(index_of) > 4 * rate:
                for stamp in sorted(index_of)[: len(index_of) - int(3 * rate)]:
                    del index_of[stamp]
            published += 1
            if not first_init_sent and processed_headers:  # a frame the node is known to have received
                driver.publish_init(processed_headers[-1],
                                    xywh_to_box(frames[index_of[stamp_to_ns(processed_headers[-1].stamp)]][1]))
                first_init_sent = True
            elif now >= next_reinit and len(history) > rate:
                # A frame from about one second ago that the node received (it has a result), so that the init
                # exercises the stamp lookup and the fast-forward.
                old_enough = [h for h in processed_headers
                              if stamp_to_ns(h.stamp) <= stamp_to_ns(msg.header.stamp) - NS_PER_S]
                if old_enough:
                    past_header = old_enough[-1]
                    past_box = frames[index_of[stamp_to_ns(past_header.stamp)]][1]
                    driver.publish_init(past_header, xywh_to_box(past_box))
                    next_reinit = now + reinit
            index_of[stamp_to_ns(msg.header.stamp)] = k
            got = driver.take_results()
            processed_headers = (processed_headers + [r.header for r in got if stamp_to_ns(r.header.stamp) in index_of])[-100:]
            results += len(got)
            initialized += sum(r.state == TrackState.INITIALIZING for r in got)
            latencies += [duration_to_s(r.latency) for r in got]
            processing += [duration_to_s(r.processing_time) for r in got
                           if r.state not in (TrackState.STOPPED, TrackState.INITIALIZING)]
            if now >= next_sample:
                rss = node.rss_kib() / 1024.0
                samples.append((now - start, rss))
                dropped = _dropped(driver)
                print(f"{now - start:7.1f} {rss:8.1f} {published:9d} {results:8d} {dropped:8d}", flush=True)
                next_sample += sample
            i += 1
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(1.5)
        got = driver.take_results()
        results += len(got)
        latencies += [duration_to_s(r.latency) for r in got]
        samples.append((time.monotonic() - start, node.rss_kib() / 1024.0))
        dropped = _dropped(driver)
        alive = node.alive()
    finally:
        if driver is not None:
            driver.close()
        code = node.stop()
        log = node.log()
        node.cleanup()
    if os.environ.get("SOAK_PRINT_LOG"):
        print(log[-5000:])
    warm = [s for s in samples if s[0] >= warmup_fraction * seconds] or samples[-2:]
    summary = {
        "seconds": seconds, "rate_hz": rate, "size": f"{width}x{height}", "published": published,
        "results": results, "inits_seen": initialized, "processed_hz": results / seconds,
        "dropped_by_node": dropped,
        # Median: the catch-up results after each re-init are for frames ~1 s old by design and would dominate a mean.
        "median_latency_ms": 1e3 * float(np.median(latencies)) if latencies else float("nan"),
        "median_processing_ms": 1e3 * float(np.median(processing)) if processing else float("nan"),
        "rss_start_mib": samples[0][1], "rss_after_warmup_mib": warm[0][1], "rss_end_mib": samples[-1][1],
        "rss_max_mib": max(s[1] for s in samples),
        "rss_growth_mib_per_min": _slope_per_min([s[0] for s in warm], [s[1] for s in warm]),
        "node_alive_at_end": alive, "node_exit_code": code,
        "node_errors": sum("[ERROR]" in line for line in log.splitlines()),
    }
    print("summary:")
    for key, value in summary.items():
        print(f"  {key}: {value:.2f}" if isinstance(value, float) else f"  {key}: {value}")
    return summary


def _dropped(driver) -> int:
    for d in reversed(driver.diagnostics):
        for status in d.status:
            values = {kv.key: kv.value for kv in status.values}
            if "frames_dropped" in values:
                return int(values["frames_dropped"])
    return -1


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m siamattn_ros.tools.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="run length (default 300)")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second published (default 30)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--model", default=None, help="model parameter for the node (default: embedded or random)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="node num_threads parameter (0: torch default)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    parser.add_argument("--reinit", type=float, default=20.0, help="re-initialise every N seconds (default 20)")
    parser.add_argument("--warmup-fraction", type=float, default=0.2,
                        help="ignore RSS samples in this first fraction of the run for the growth rate (default 0.2)")
    parser.add_argument("--max-growth-mib-per-min", type=float, default=None,
                        help="exit 1 if RSS grows faster than this after warm-up")
    opts = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(101 + os.getpid() % 100))
    summary = run(opts.seconds, opts.rate, opts.width, opts.height, opts.model, opts.device, opts.threads,
                  opts.sample, opts.reinit, opts.warmup_fraction)
    if not summary["node_alive_at_end"]:
        print("soak: FAILED: the node died", file=sys.stderr)
        return 1
    if opts.max_growth_mib_per_min is not None and summary["rss_growth_mib_per_min"] > opts.max_growth_mib_per_min:
        print(f"soak: FAILED: RSS grows {summary['rss_growth_mib_per_min']:.2f} MiB/min > "
              f"{opts.max_growth_mib_per_min}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
