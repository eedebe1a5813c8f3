"""Play a rosbag2 bag into the ROS graph (no rosbag2 needed), optionally recording topics back into a bag.

    python -m siamattn_ros.tools.replay recordings/vtest_woman                     # recorded rate
    python -m siamattn_ros.tools.replay recordings/vtest_woman --rate 0.5 --decode /camera/image_raw/compressed
    python -m siamattn_ros.tools.replay recordings/vtest_woman --record out_bag --record-topics /track/result

Messages are published as the CDR bytes stored in the bag, so header stamps and frame ids arrive unchanged.
--decode publishes a CompressedImage topic as sensor_msgs/Image (bgr8, same header) on the topic without
'/compressed'. Recording uses raw subscriptions and writes a rosbag2 folder with mcap storage.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from siamattn_ros.interface.names import TOPIC_RESULT, resolve



def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bag", type=Path, help="rosbag2 folder, or a single .mcap/.db3 file")
    ap.add_argument("--rate", type=float, default=1.0,
                    help="playback speed factor (1 = recorded rate, 2 = twice as fast, 0 = as fast as possible)")
    ap.add_argument("--topics", nargs="+", default=None, help="bag topics to play (default: all)")
    ap.add_argument("--decode", nargs="+", default=[], metavar="TOPIC",
                    help="CompressedImage topics to publish decoded as sensor_msgs/Image")
    ap.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO", help="publish bag topic FROM on TO")
    ap.add_argument("--depth", type=int, default=100,
                    help="publisher history depth (reliable subscribers that lag further behind lose messages)")
    ap.add_argument("--loop", action="store_true", help="play again and again until Ctrl-C")
    ap.add_argument("--wait", type=float, default=5.0,
                    help="seconds to wait for a subscriber on the image topics before playing (default 5)")
    ap.add_argument("--record", type=Path, default=None, help="write received topics to this new bag (a rosbag2 folder; a path ending in .mcap: one mcap file)")
    ap.add_argument("--record-topics", nargs="+", default=[resolve(TOPIC_RESULT)], metavar="TOPIC[:TYPE]",
                    help="topics to record (type discovered from the graph unless given as TOPIC:pkg/msg/Type); "
                         "default /track/result")
    ap.add_argument("--linger", type=float, default=2.0,
                    help="seconds to keep recording after the last message was played (default 2)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from siamattn_ros.replay.player import IMAGE_TYPES, BagPlayer
    from siamattn_ros.replay.recorder import KNOWN_TYPES, TopicRecorder, resolve_types
    from siamattn_ros.testing.ros_client import RosHost

    remap = {}
    for r in args.remap:
        if ":=" not in r:
            print(f"--remap expects FROM:=TO, got {r!r}", file=sys.stderr)
            return 2
        a, b = r.split(":=", 1)
        remap[a] = b
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    host = RosHost("bag_replay")
    node = host.node
    recorder = None
    try:
        player = BagPlayer(node, args.bag, topics=args.topics, decode=args.decode, remap=remap, depth=args.depth)
        if args.record is not None:
            topics = [t if (":" in t or t not in KNOWN_TYPES) else f"{t}:{KNOWN_TYPES[t]}"
                      for t in args.record_topics]
            recorder = TopicRecorder(node, args.record, resolve_types(node, topics), depth=max(100, args.depth))
        image_topics = sorted({m.topic for m in player.messages if m.msgtype in IMAGE_TYPES})
        try:
            player.wait_for_subscribers(image_topics, timeout_s=args.wait)
        except TimeoutError as exc:
            print(f"note: {exc}; playing anyway", file=sys.stderr)
        print(f"playing {len(player.messages)} messages from {args.bag} at rate {args.rate:g} on "
              f"{sorted(set(player.out_topic.values()))}", flush=True)
        rounds = 0
        while not stop.is_set():
            n = player.play(rate=args.rate, stop=stop)
            rounds += 1
            print(f"round {rounds}: published {n} messages", flush=True)
            if not args.loop:
                break
        if recorder is not None and not stop.is_set():
            stop.wait(args.linger)
    finally:
        if recorder is not None:
            recorder.close()
            counts = ", ".join(f"{t}: {c}" for t, c in recorder.counts.items())
            print(f"recorded {args.record} ({counts})")
        host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
