"""The tracker node's parts in isolation: frame hand-over, stamp-keyed buffer, parameters, QoS, message building."""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSReliabilityPolicy  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from siamattn_ros.msg import BoundingBox2D, TrackResult as TrackResultMsg  # noqa: E402
from siamattn_ros.ros import messages, params, qos  # noqa: E402
from siamattn_ros.interface.convert import box_msg_to_xywh, stamp_to_ns  # noqa: E402
from siamattn_ros.ros.frames import Frame, FrameRing, LatestSlot, pick_fast_forward  # noqa: E402
from siamattn_ros.tracker.result import TrackResult, TrackState  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def header(sec: int, nanosec: int = 0, frame_id: str = "cam") -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


def frame(seq: int, stamp_ns: int | None = None) -> Frame:
    return Frame(msg=None, stamp_ns=seq * 1000 if stamp_ns is None else stamp_ns, seq=seq)


# ---------------------------------------------------------------- frames
def test_stamp_to_ns_is_exact_for_large_stamps():
    assert stamp_to_ns(header(1_700_000_123, 999_999_999).stamp) == 1_700_000_123_999_999_999


def test_latest_slot_keeps_only_the_newest_and_counts_drops():
    slot = LatestSlot()
    for i in range(1, 6):
        slot.put(frame(i))
    assert slot.take(timeout=0).seq == 5
    assert (slot.received, slot.dropped) == (5, 4)
    assert slot.take(timeout=0) is None
    slot.put(frame(6))
    slot.discard_older_than(6)
    assert slot.take(timeout=0) is None


def test_latest_slot_wakes_a_waiting_consumer():
    slot = LatestSlot()
    got = []
    t = threading.Thread(target=lambda: got.append(slot.take(timeout=30)))
    t.start()
    slot.put(frame(1))
    t.join(timeout=30)
    assert not t.is_alive() and got[0].seq == 1


def test_frame_ring_lookup_and_eviction():
    ring = FrameRing(3)
    for i in range(1, 6):
        ring.push(frame(i))
    assert len(ring) == 3 and ring.latest().seq == 5
    assert ring.find(4000).seq == 4
    assert ring.find(2000) is None  # evicted
    assert [f.seq for f in ring.newer_than(ring.find(3000))] == [4, 5]
    assert ring.stamp_range() == (3000, 5000)
    ring.resize(2)
    assert [ring.find(s) is not None for s in (3000, 4000, 5000)] == [False, True, True]
    with pytest.raises(ValueError, match="got 0"):
        FrameRing(0)


def test_frame_ring_duplicate_stamps_resolve_to_the_most_recent():
    ring = FrameRing(5)
    ring.push(frame(1, 42))
    ring.push(frame(2, 42))
    assert ring.find(42).seq == 2


@pytest.mark.parametrize("n,limit", [(0, 5), (3, 5), (10, 0), (10, 4), (31, 30), (100, 7)])
def test_pick_fast_forward_is_bounded_ordered_and_ends_with_the_newest(n, limit):
    frames = [frame(i) for i in range(1, n + 1)]
    picked = pick_fast_forward(frames, limit)
    expect = n if limit == 0 else min(n, limit)
    assert len(picked) == expect
    seqs = [f.seq for f in picked]
    assert seqs == sorted(set(seqs))
    if n:
        assert seqs[-1] == n


# ---------------------------------------------------------------- parameters
def test_params_yaml_matches_the_declared_defaults():
    data = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())
    values = data["/**"]["ros__parameters"]
    assert set(values) == set(params.SPECS)
    for name, value in values.items():
        default = params.SPECS[name].default
        assert type(value) is type(default) and value == default, name


def test_tracker_parameters_match_the_tracker_config():
    from siamattn_ros.tracker.config import RUNTIME_FIELDS, TrackerConfig

    cfg = TrackerConfig()
    for name in params.TRACKER_FIELDS:
        assert name in RUNTIME_FIELDS
        assert params.SPECS[name].dynamic
        if name in params.FROM_PRESET:  # the default stands for the preset's value and is not itself valid there
            assert params.uses_preset(name, params.SPECS[name].default)
            with pytest.raises(ValueError):
                cfg.replace(**{name: params.SPECS[name].default}).validate()
        else:
            assert getattr(cfg, name) == params.SPECS[name].default, name


@pytest.mark.parametrize("name,value,fragment", [
    ("qos_reliability", "sometimes", "one of best_effort, reliable"),
    ("image_transport", "theora", "one of raw, compressed"),
    ("no_such_param", 1, "unknown parameter"),
])
def test_invalid_choices_are_rejected_with_a_reason(name, value, fragment):
    assert fragment in params.check_value(name, value)


@pytest.mark.parametrize("changes,fragment", [
    ({"confidence_threshold": 1.5}, "confidence_threshold must be a number in [0.0, 1.0], got 1.5"),
    ({"confidence_threshold": -0.5}, "confidence_threshold must be a number in [0.0, 1.0], got -0.5"),
    ({"hysteresis": 2.0}, "hysteresis must be a number in [0.0, 1.0], got 2.0"),
    ({"lost_frames": -3}, "lost_frames must be an integer >= 1, got -3"),
])
def test_tracker_settings_are_validated_by_the_tracker_config(changes, fragment):
    """One place: the node's parameter layer reuses TrackerConfig.validate (no ranges of its own)."""
    from siamattn_ros.tracker.config import TrackerConfig

    cfg = TrackerConfig()
    with pytest.raises(ValueError) as err:
        cfg.replace(**changes)
    with pytest.raises(ValueError) as via_params:
        params.tracker_config(cfg, cfg, changes)
    assert fragment in str(via_params.value)
    assert str(via_params.value) == str(err.value).replace("TrackerConfig.", "")
    for name in changes:
        d = params.descriptor(params.SPECS[name])
        assert not d.floating_point_range and not d.integer_range  # rclpy does not check a second range


def test_thresholds_are_checked_as_the_resulting_combination_and_the_reason_says_what_to_set():
    from siamattn_ros.tracker.config import load_preset

    # A preset with thresholds far apart (the rule, not the shipped values, is under test).
    preset = load_preset("embedded").replace(confidence_threshold=0.95, lost_threshold=0.9)
    in_force = preset
    # Lowering confidence below the lost threshold in force: refused, and the reason names what to lower first.
    with pytest.raises(ValueError) as err:
        params.tracker_config(in_force, preset, {"confidence_threshold": 0.7})
    assert f"lost_threshold ({preset.lost_threshold}) must not exceed confidence_threshold (0.7)" in str(err.value)
    assert "set lost_threshold to 0.7 or lower first" in str(err.value)
    # One set each, in that order, works; so does one call with both.
    in_force = params.tracker_config(in_force, preset, {"lost_threshold": 0.5})
    in_force = params.tracker_config(in_force, preset, {"confidence_threshold": 0.7})
    assert (in_force.confidence_threshold, in_force.lost_threshold) == (0.7, 0.5)
    both = params.tracker_config(preset, preset, {"confidence_threshold": 0.6, "lost_threshold": 0.3})
    assert (both.confidence_threshold, both.lost_threshold) == (0.6, 0.3)
    # Raising lost above confidence: the reason says to raise confidence first.
    with pytest.raises(ValueError, match="set confidence_threshold to 0.8 or higher first"):
        params.tracker_config(in_force, preset, {"lost_threshold": 0.8})
    # The "from the preset" defaults restore the preset's values; an integer for a double is accepted.
    back = params.tracker_config(in_force, preset, {"confidence_threshold": -1.0, "lost_threshold": -1.0,
                                                    "lost_frames": 0})
    assert (back.confidence_threshold, back.lost_threshold, back.lost_frames) == (
        preset.confidence_threshold, preset.lost_threshold, preset.lost_frames)
    assert params.tracker_config(preset, preset, {"confidence_threshold": 1}).confidence_threshold == 1.0


@pytest.mark.parametrize("deferred", [False, True], ids=["pre_set_callback", "humble_write_back"])
def test_preset_sentinel_is_replaced_by_the_value_in_force(deferred):
    """Setting -1 ("from the preset") leaves the preset's value stored, so `ros2 param get` shows what is in force;
    both the Iron+ path (pre-set callback) and Humble's (write-back thread) run here on a real rclpy node."""
    import time

    import rclpy
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Node("preset_sentinels_test", context=context)
        node.declare_parameter("confidence_threshold", 0.7)
        node.declare_parameter("lost_threshold", 0.4)
        in_force = {"confidence_threshold": 0.613, "lost_threshold": 0.447}
        sentinels = params.PresetSentinels(node, in_force.__getitem__, deferred=deferred)
        seen: list[dict] = []

        def on_set(parameters: list) -> SetParametersResult:
            changes = {p.name: p.value for p in parameters}
            seen.append(changes)
            sentinels.after_set({k: in_force[k] for k, v in changes.items() if params.uses_preset(k, v)})
            return SetParametersResult(successful=True)

        node.add_on_set_parameters_callback(on_set)
        assert all(r.successful for r in node.set_parameters([Parameter("confidence_threshold", value=-1.0),
                                                              Parameter("lost_threshold", value=0.3)]))
        end = time.monotonic() + 5.0
        while node.get_parameter("confidence_threshold").value != 0.613 and time.monotonic() < end:
            time.sleep(0.01)
        assert node.get_parameter("confidence_threshold").value == 0.613
        assert node.get_parameter("lost_threshold").value == 0.3
        # The validating callback sees the sentinel only on the deferred path, then the value in force.
        conf_seen = [c["confidence_threshold"] for c in seen if "confidence_threshold" in c]
        assert conf_seen == ([-1.0, 0.613] if deferred else [0.613])
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_descriptors_carry_ranges_and_read_only():
    d = params.descriptor(params.SPECS["frame_buffer_length"])
    assert not d.read_only and (d.integer_range[0].from_value, d.integer_range[0].to_value) == (1, 1000)
    d = params.descriptor(params.SPECS["diagnostics_period"])
    assert d.read_only and d.floating_point_range[0].from_value == pytest.approx(0.1)
    d = params.descriptor(params.SPECS["model"])
    assert d.read_only and "Read-only" in d.description


# ---------------------------------------------------------------- QoS
def test_image_qos_is_a_short_keep_last_with_selectable_reliability():
    # Short: a late callback loses no frame to the reader; the worker's one-slot mailbox (test_node's 60 Hz test)
    # is what keeps processing on the newest frame.
    for name, policy in (("best_effort", QoSReliabilityPolicy.BEST_EFFORT),
                         ("reliable", QoSReliabilityPolicy.RELIABLE)):
        p = qos.image_qos(name)
        assert (p.depth, p.history, p.reliability, p.durability) == (
            5, QoSHistoryPolicy.KEEP_LAST, policy, QoSDurabilityPolicy.VOLATILE)
    with pytest.raises(ValueError, match="'fast'"):
        qos.image_qos("fast")


# ---------------------------------------------------------------- messages
def test_box_convention_is_top_left_plus_half_size():
    box = messages.xywh_to_box([100.0, 50.0, 80.0, 60.0])
    assert (box.center_x, box.center_y, box.width, box.height, box.angle) == (140.0, 80.0, 80.0, 60.0, 0.0)
    assert box_msg_to_xywh(box) == (100.0, 50.0, 80.0, 60.0)


@pytest.mark.parametrize("box,fragment", [
    (BoundingBox2D(center_x=10.0, center_y=10.0, width=0.5, height=5.0), "must be >= 1 px"),
    (BoundingBox2D(center_x=10.0, center_y=10.0, width=5.0, height=5.0, angle=0.3), "angle must be 0"),
    (BoundingBox2D(center_x=float("nan"), center_y=10.0, width=5.0, height=5.0), "non-finite"),
    (BoundingBox2D(center_x=500.0, center_y=10.0, width=5.0, height=5.0), "does not overlap the 160x120 image"),
])
def test_bad_init_boxes_are_explained(box, fragment):
    assert fragment in messages.check_init_box(box, 160, 120)


def test_good_init_box_passes():
    assert messages.check_init_box(BoundingBox2D(center_x=0.0, center_y=0.0, width=4.0, height=4.0), 160, 120) is None


@pytest.mark.parametrize("start", [0, 1, 2, 3])
def test_rotated_box_of_an_axis_aligned_polygon_has_angle_zero(start):
    corners = np.array([[10, 20], [50, 20], [50, 30], [10, 30]], np.float32)
    rb = messages.polygon_to_rotated_box(np.roll(corners, -start, axis=0))
    assert (rb.center_x, rb.center_y, rb.width, rb.height, rb.angle) == (30.0, 25.0, 40.0, 10.0, 0.0)


def test_rotated_box_angle_is_counter_clockwise_in_the_image():
    # A 40 x 10 rectangle rotated by +30 degrees counter-clockwise as seen on screen (v grows downwards).
    a = math.radians(30)
    u = np.array([math.cos(a), -math.sin(a)])
    v = np.array([math.sin(a), math.cos(a)])
    c = np.array([100.0, 100.0])
    pts = np.array([c - 20 * u - 5 * v, c + 20 * u - 5 * v, c + 20 * u + 5 * v, c - 20 * u + 5 * v])
    rb = messages.polygon_to_rotated_box(pts)
    assert rb.angle == pytest.approx(a) and rb.width == pytest.approx(40) and rb.height == pytest.approx(10)
    assert (rb.center_x, rb.center_y) == pytest.approx((100.0, 100.0))


def test_build_result_copies_the_header_and_fills_every_field():
    h = header(1_700_000_000, 123_456_789, "camera_color_optical_frame")
    res = TrackResult(box_xywh=np.array([10.0, 20.0, 30.0, 40.0]),
                      polygon=np.array([[10, 20], [40, 20], [40, 60], [10, 60]], np.float32),
                      mask=None, confidence=0.75, state=TrackState.TRACKING, init_id=3, frames_since_init=9)
    now = 1_700_000_000_223_456_789
    msg = messages.build_result(h, res, (640, 480), (0.5, 0.2), 12_000_000, now)
    assert msg.header == h
    assert msg.state == TrackResultMsg.TRACKING and msg.init_id == 3 and msg.frames_since_init == 9
    assert (msg.box.center_x, msg.box.center_y, msg.box.width, msg.box.height) == (25.0, 40.0, 30.0, 40.0)
    assert (msg.rotated_box.center_x, msg.rotated_box.width, msg.rotated_box.angle) == (25.0, 30.0, 0.0)
    assert [(p.x, p.y) for p in msg.polygon.points] == [(10, 20), (40, 20), (40, 60), (10, 60)]
    assert msg.confidence == pytest.approx(0.75) and msg.confidence_threshold == pytest.approx(0.5)
    assert (msg.image_width, msg.image_height) == (640, 480)
    assert (msg.processing_time.sec, msg.processing_time.nanosec) == (0, 12_000_000)
    assert (msg.latency.sec, msg.latency.nanosec) == (0, 100_000_000)


def test_negative_latency_is_a_valid_duration():
    d = messages.duration_from_ns(-1)
    assert (d.sec, d.nanosec) == (-1, 999_999_999)


@pytest.mark.skipif(not messages.has_vision_msgs(), reason="vision_msgs is not installed here")
def test_detection2d_uses_the_installed_vision_msgs_layout():
    h = header(5, 6, "cam")
    res = TrackResult(box_xywh=np.array([10.0, 20.0, 30.0, 40.0]), polygon=np.zeros((4, 2), np.float32),
                      mask=None, confidence=0.5, state=TrackState.TRACKING, init_id=2, frames_since_init=1)
    det = messages.build_detection(messages.build_result(h, res, (100, 100), (0.5, 0.2), 0, 0))
    assert det.header == h
    assert (det.bbox.center.position.x, det.bbox.center.position.y) == (25.0, 40.0)
    assert (det.bbox.size_x, det.bbox.size_y) == (30.0, 40.0)
    assert det.results[0].hypothesis.score == pytest.approx(0.5)


def test_auto_torch_threads_leave_cores_for_the_camera_and_dds():
    from siamattn_ros.ros.tracker_node import torch_threads

    assert [torch_threads(0, n) for n in (1, 2, 4, 6, 8, 16, 64)] == [1, 1, 2, 3, 4, 4, 4]
    assert torch_threads(3, 2) == 3  # an explicit value is used as given
