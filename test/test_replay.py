"""The replay helper over real rclpy + Fast DDS: stored bytes and header stamps arrive unchanged, --decode gives
sensor_msgs/Image with the same header and pixels, and recording writes a bag that reads back (custom types too)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamattn_ros.replay.bag import BagWriter, bag_topics, deserialize, read_messages
from siamattn_ros.replay.player import BagPlayer, raw_topic_for
from siamattn_ros.replay.recorder import TopicRecorder
from siamattn_ros.replay.recording import IMAGE_TOPIC, RAW_IMAGE_TOPIC, RECORDINGS_DIR, TRUTH_TOPIC
from siamattn_ros.testing.ros_client import RosHost
from siamattn_ros.replay.typestore import typestore

REPO = Path(__file__).resolve().parents[1]
SYNTH = RECORDINGS_DIR / "synth_butterfly"


def _wait_for(pred, timeout_s=20.0):
    import time

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def _stamp(msg):
    return msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id


def test_replayed_bytes_and_stamps_are_as_stored(tmp_path):
    out = tmp_path / "echo"
    with RosHost("test_replay_player") as pnode, RosHost("test_replay_recorder") as rnode:
        # History for the whole bag: on a loaded machine the reliable reader may lag behind the playback.
        player = BagPlayer(pnode, SYNTH, topics=[IMAGE_TOPIC, TRUTH_TOPIC], depth=400)
        rec = TopicRecorder(rnode, out, {IMAGE_TOPIC: "sensor_msgs/msg/CompressedImage",
                                         TRUTH_TOPIC: "geometry_msgs/msg/PolygonStamped"}, depth=400)
        player.wait_for_subscribers([IMAGE_TOPIC, TRUTH_TOPIC])
        # Discovery completes per side: also wait until the recorder's readers have matched the writers.
        assert _wait_for(lambda: all(s.get_publisher_count() > 0 for s in rec._subs))
        # 20x the recorded rate: 150 frames in under a second, well within reliable delivery.
        n = player.play(rate=20.0)
        assert n == 300
        assert _wait_for(lambda: rec.counts == {IMAGE_TOPIC: 150, TRUTH_TOPIC: 150}), rec.counts
        rec.close()
    got = list(read_messages(out))
    got_images = [m.data for m in got if m.topic == IMAGE_TOPIC]
    want_images = [m.data for m in read_messages(SYNTH, [IMAGE_TOPIC])]
    assert got_images == want_images  # byte for byte, in order
    got_truth = [_stamp(deserialize(m)) for m in got if m.topic == TRUTH_TOPIC]
    assert got_truth == [_stamp(deserialize(m)) for m in read_messages(SYNTH, [TRUTH_TOPIC])]


def test_unknown_topic_and_bad_decode_are_refused():
    with RosHost("test_replay_refuse") as node:
        with pytest.raises(ValueError, match="/nope"):
            BagPlayer(node, SYNTH, topics=["/nope"])
        with pytest.raises(ValueError, match="not a sensor_msgs/CompressedImage"):
            BagPlayer(node, SYNTH, decode=[TRUTH_TOPIC])
        with pytest.raises(ValueError, match="rate"):
            BagPlayer(node, SYNTH, topics=[TRUTH_TOPIC]).play(rate=-1)
    assert raw_topic_for("/cam/image_raw/compressed") == "/cam/image_raw"


def test_cli_decodes_and_records(tmp_path):
    """The CLI as a user runs it: play with --decode, record the decoded topic back, compare with the bag."""
    out = tmp_path / "decoded"
    cmd = [sys.executable, "-m", "siamattn_ros.tools.replay", str(SYNTH), "--topics", IMAGE_TOPIC,
           "--decode", IMAGE_TOPIC, "--rate", "10", "--wait", "1", "--linger", "2",
           "--record", str(out), "--record-topics", f"{RAW_IMAGE_TOPIC}:sensor_msgs/msg/Image"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recorded" in proc.stdout
    assert bag_topics(out) == {RAW_IMAGE_TOPIC: "sensor_msgs/msg/Image"}
    want = {_stamp(deserialize(m)): m for m in read_messages(SYNTH, [IMAGE_TOPIC])}
    got = [deserialize(m) for m in read_messages(out)]
    assert len(got) == len(want) == 150
    for img in got[::37]:
        src = deserialize(want[_stamp(img)])  # same stamp and frame_id as a stored frame
        assert img.encoding == "bgr8" and img.step == img.width * 3
        pixels = np.asarray(img.data, np.uint8).reshape(img.height, img.width, 3)
        np.testing.assert_array_equal(pixels, cv2.imdecode(np.asarray(src.data, np.uint8), cv2.IMREAD_COLOR))


def test_bag_with_our_message_types_round_trips(tmp_path):
    """siamattn_ros/msg/TrackResult written by BagWriter carries its definition and reads back field by field."""
    T = typestore().types
    msg = T["siamattn_ros/msg/TrackResult"](
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=5, nanosec=7), frame_id="cam"),
        state=3, status_message="lost", box=T["siamattn_ros/msg/BoundingBox2D"](1.0, 2.0, 3.0, 4.0, 0.0),
        rotated_box=T["siamattn_ros/msg/BoundingBox2D"](1.0, 2.0, 3.0, 4.0, 0.5),
        polygon=T["geometry_msgs/msg/Polygon"](points=[]), confidence=0.25, confidence_threshold=0.5,
        lost_threshold=0.2, init_id=2, frames_since_init=9, image_width=640, image_height=480,
        processing_time=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=1000),
        latency=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=2000), range=1.5)
    with BagWriter(tmp_path / "b") as w:
        w.write_obj("/track/result", "siamattn_ros/msg/TrackResult", 1, msg)
    back = deserialize(next(read_messages(tmp_path / "b")))
    assert (back.state, back.init_id, back.frames_since_init, back.box.width, back.rotated_box.angle, back.range) == \
           (3, 2, 9, 3.0, 0.5, 1.5)
    # The definition travels in the mcap file: a fresh reader needs no siamattn_ros types to list it.
    from rosbags.rosbag2 import Reader

    with Reader(tmp_path / "b") as r:
        assert "float64 center_x" in r.connections[0].msgdef.data
    with pytest.raises(FileExistsError):
        BagWriter(tmp_path / "b")
    # A '.mcap' path gives one self-contained mcap file that reads back the same.
    with BagWriter(tmp_path / "one.mcap") as w:
        w.write_obj("/track/result", "siamattn_ros/msg/TrackResult", 1, msg)
    assert (tmp_path / "one.mcap").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["b", "one.mcap"]
    assert deserialize(next(read_messages(tmp_path / "one.mcap"))).frames_since_init == 9
