"""Frame delivery from a best-effort camera in another process to tracker_node, with and without the Fast DDS profile.

    python -m siamattn_ros.tools.bench_delivery                       # 640x480 and 1280x720 bgr8, 30 Hz, 10 s each
    python -m siamattn_ros.tools.bench_delivery --sizes 640x480 --seconds 20 --profiles none,shipped

For each profile ("none": Fast DDS defaults; "shipped": config/fastdds_large_images.xml given to the camera process
and the node through FASTDDS_DEFAULT_PROFILES_FILE / FASTRTPS_DEFAULT_PROFILES_FILE, as docs/ROS_NODE.md says) it
starts tracker_node in a child process, and for each size a separate camera process that publishes bgr8 frames with
the sensor-data QoS (best effort) at --rate Hz; the node is initialised on the stream so it tracks. It prints, per
profile and size: frames published, frames received by the node (its image callback; diagnostics
`frames_received`), frames processed (tracked; `frames_processed`), and the received share. The node keeps only the
newest frame for its worker, so "processed" is bounded by the tracker's speed, "received" by the transport.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "config" / "fastdds_large_images.xml"
PROFILE_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def profile_vars(distro: Optional[str] = None) -> tuple[str, ...]:
    """The variable(s) naming a Fast DDS XML profile: FASTDDS_... (Fast DDS 3, Kilted and later; it warns about the
    old name) plus FASTRTPS_... on Humble / Jazzy (Fast DDS 2.x reads only that one)."""
    distro = os.environ.get("ROS_DISTRO", "") if distro is None else distro
    return PROFILE_VARS if distro in ("humble", "iron", "jazzy") else PROFILE_VARS[:1]


def profile_env(profile: Optional[Path]) -> dict[str, str]:
    """os.environ with the Fast DDS profile set or removed."""
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARS}
    if profile is not None:
        env.update({k: str(profile) for k in profile_vars()})
    return env


def publish(width: int, height: int, frames: int, rate: float, topic: str, wait_s: float = 30.0) -> int:
    """The camera: publish `frames` bgr8 frames (a textured square moving over a textured background) best effort
    at `rate` Hz, stamps 1/rate apart; returns how many were published."""
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from siamattn_ros.ros.image_conv import to_image_msg
    from siamattn_ros.testing.frames import synthetic_frame
    from siamattn_ros.testing.ros_client import make_header

    rclpy.init()
    node = Node(f"bench_camera_{uuid.uuid4().hex[:6]}")
    pub = node.create_publisher(Image, topic, qos_profile_sensor_data)
    end = time.monotonic() + wait_s
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.5)  # let discovery finish on both sides
    target = max(16, min(width, height) // 6)
    cycle = [synthetic_frame(i, width, height, target=target, step=4.0)[0] for i in range(30)]
    period_ns = int(1e9 / rate)
    t0 = time.monotonic()
    for i in range(frames):
        image = cycle[i % 30] if (i // 30) % 2 == 0 else cycle[29 - i % 30]  # back and forth: no jump
        pub.publish(to_image_msg(image, make_header(1_000_000_000 + i * period_ns, "bench_camera_optical"), "bgr8"))
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
    time.sleep(0.5)
    node.destroy_node()
    rclpy.try_shutdown()
    return frames


def node_diagnostics(driver) -> dict[str, str]:
    values = {}
    for d in driver.diagnostics:
        for s in d.status:
            if s.name == "tracker_node: tracking":
                values = {kv.key: kv.value for kv in s.values}
    return values


def measure(profile: Optional[Path], sizes: list[tuple[int, int]], seconds: float, rate: float, model: str,
            log_dir: Path) -> list[dict]:
    """One node (with `profile` or without), one camera process per size; returns one row per size."""
    from siamattn_ros.ros.messages import xywh_to_box
    from siamattn_ros.testing.node_session import connected_node
    from siamattn_ros.testing.ros_client import make_header

    topic = f"/bench_{uuid.uuid4().hex[:8]}/image_raw"
    env = profile_env(profile)
    params = {"model": model, "device": "cpu", "num_threads": 1, "diagnostics_period": 0.5,
              "publish_overlay": False, "publish_mask": False}
    name = "shipped" if profile else "none"
    rows = []
    # The profile variables exactly as the camera gets them: set for "shipped", removed for "none".
    with connected_node(params, topic, env={k: env.get(k) for k in PROFILE_VARS}, log_to=log_dir / f"node_{name}.log",
                        driver_args={"collect_images": False}) as (_, driver):
        for width, height in sizes:
            before = _counters(driver, wait=True)
            frames = int(round(seconds * rate))
            cam = subprocess.Popen(
                [sys.executable, "-m", "siamattn_ros.tools.bench_delivery", "--publish", f"{width}x{height}",
                 "--frames", str(frames), "--rate", str(rate), "--topic", topic],
                env={**env, "PYTHONPATH": os.pathsep.join([str(REPO)] + [env.get("PYTHONPATH", "")])},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # Initialise on this stream once the node has its frames (zero stamp: the latest frame), so it tracks.
            t_init = time.monotonic() + 120.0
            while time.monotonic() < t_init and cam.poll() is None and _counters(driver, False)[0] < before[0] + 5:
                time.sleep(0.2)
            side = max(16, min(width, height) // 6)
            driver.publish_init(make_header(0), xywh_to_box((10.0, 10.0, float(side), float(side))))
            out, _ = cam.communicate(timeout=seconds * 4 + 120)
            (log_dir / f"camera_{width}x{height}.log").write_text(out)
            published = _published(out)
            time.sleep(2.0)  # the last diagnostics (every 0.5 s) after the stream ended
            after = _counters(driver, wait=True)
            rows.append({"profile": name, "size": f"{width}x{height}", "published": published,
                         "received": after[0] - before[0], "processed": after[1] - before[1]})
            driver.reset()
    return rows


def _counters(driver, wait: bool) -> tuple[int, int]:
    """(frames_received, frames_processed) from the node's newest diagnostics."""
    n = len(driver.diagnostics)
    if wait:
        driver.wait_until(lambda: len(driver.diagnostics) >= n + 2, 10)
    values = node_diagnostics(driver)
    return int(values.get("frames_received", 0)), int(values.get("frames_processed", 0))


def _published(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("published "):
            return int(line.split()[1])
    raise RuntimeError(f"camera process failed:\n{text[-2000:]}")


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_delivery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="640x480,1280x720", help="comma-separated WxH (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="stream length per size (default %(default)s)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz (default %(default)s)")
    parser.add_argument("--profiles", default="none,shipped",
                        help="none (Fast DDS defaults), shipped (config/fastdds_large_images.xml) or an XML path")
    parser.add_argument("--model", default="embedded", help="tracker model (default: the shipped embedded model)")
    parser.add_argument("--publish", metavar="WxH", help=argparse.SUPPRESS)  # the camera child process
    parser.add_argument("--frames", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--topic", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publish:
        width, height = _size(args.publish)
        print(f"published {publish(width, height, args.frames, args.rate, args.topic)}", flush=True)
        return 0
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    sizes = [_size(s) for s in args.sizes.split(",") if s]
    log_dir = Path(tempfile.mkdtemp(prefix="bench_delivery_"))
    rows = []
    for name in args.profiles.split(","):
        profile = None if name == "none" else (PROFILE if name == "shipped" else Path(name))
        rows += measure(profile, sizes, args.seconds, args.rate, args.model, log_dir)
    print(f"\nbest-effort bgr8 camera at {args.rate:g} Hz in another process -> tracker_node "
          f"(sensor-data QoS; logs in {log_dir})")
    print(f"{'profile':<9} {'size':<10} {'published':>9} {'received':>9} {'processed':>9} {'received %':>10}")
    for r in rows:
        share = 100.0 * r["received"] / r["published"] if r["published"] else 0.0
        print(f"{r['profile']:<9} {r['size']:<10} {r['published']:>9} {r['received']:>9} {r['processed']:>9} "
              f"{share:>9.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
