"""The tracker node's ROS parameters: names, types, defaults, ranges, descriptions, and their validation.

The defaults here equal config/tracker.yaml (test_node_parts checks it), so the node behaves the same whether it is
started with or without the params file. Parameters marked `dynamic` may be changed while the node runs; the others
are declared read-only (rclpy then refuses run-time changes with a reason naming the parameter).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

Value = Union[bool, int, float, str]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Value
    description: str
    dynamic: bool = False
    min_value: Optional[float] = None
    max_value: Optional[float] = None
    choices: Optional[tuple[str, ...]] = None


PARAMS: tuple[ParamSpec, ...] = (
    # ---- read-only: what to run and how to receive images
    ParamSpec("model", "embedded",
              "Network: 'embedded' (shipped siamattn_mnv2 model), 'siamattn_r50' (the paper's network; needs "
              "checkpoint), or a path to a checkpoint written by siamattn_ros."),
    ParamSpec("checkpoint", "", "Weights file for model 'siamattn_r50' (empty: none)."),
    ParamSpec("device", "auto", "Torch device: 'auto' (cuda when available, else cpu), 'cpu', 'cuda', 'cuda:N'."),
    ParamSpec("half", False, "Run the network in float16 (CUDA only)."),
    ParamSpec("tracker_config", "",
              "Tracker preset ('embedded', 'vot2018', 'otb100') or a TrackerConfig YAML path; empty: the model's "
              "own preset (embedded for the embedded model, vot2018 for siamattn_r50). The threshold parameters "
              "below override its values."),
    ParamSpec("num_threads", 0, "CPU threads for torch (0: torch's default).", min_value=0, max_value=256),
    ParamSpec("warmup", True, "Run the network once at start so the first init does not stall the stream."),
    ParamSpec("image_transport", "raw",
              "'raw': sensor_msgs/Image on topic 'image'; 'compressed': sensor_msgs/CompressedImage on topic 'image' "
              "(remap it to .../compressed).", choices=("raw", "compressed")),
    ParamSpec("qos_reliability", "best_effort",
              "Reliability of the image subscription: 'best_effort' (receives from any camera) or 'reliable' "
              "(only from reliable publishers).", choices=("best_effort", "reliable")),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", min_value=0.1, max_value=60.0),
    # ---- run-time changeable
    ParamSpec("confidence_threshold", -1.0,
              "Confidence below this -> LOW_CONFIDENCE. -1: the tracker preset's calibrated value.",
              dynamic=True, min_value=0.0, max_value=1.0),
    ParamSpec("hysteresis", -1.0,
              "Back to TRACKING only when confidence >= confidence_threshold + hysteresis. -1: the preset's value.",
              dynamic=True, min_value=0.0, max_value=1.0),
    ParamSpec("lost_threshold", -1.0,
              "Confidence below this for lost_frames consecutive frames -> LOST. Must be <= confidence_threshold. "
              "-1: the preset's value.", dynamic=True, min_value=0.0, max_value=1.0),
    ParamSpec("lost_frames", 0, "Consecutive frames below lost_threshold before LOST. 0: the preset's value.",
              dynamic=True, min_value=1, max_value=1000),
    ParamSpec("long_term", True,
              "While LOST, keep the last confident box and widen the search region until the target is found again.",
              dynamic=True),
    ParamSpec("frame_buffer_length", 60,
              "How many recently received frames are kept for init requests stamped with an older frame.",
              dynamic=True, min_value=1, max_value=1000),
    ParamSpec("fast_forward_max_frames", 30,
              "After an init on a buffered frame, track at most this many of the newer buffered frames (evenly "
              "spaced, newest included) to catch up; 0 = all.", dynamic=True, min_value=0, max_value=1000),
    ParamSpec("publish_mask", True, "Publish the mono8 mask on track/mask.", dynamic=True),
    ParamSpec("publish_overlay", True, "Publish the bgr8 overlay image on track/overlay.", dynamic=True),
    ParamSpec("publish_detection", True, "Publish vision_msgs/Detection2D on track/detection (when installed).",
              dynamic=True),
)
SPECS: dict[str, ParamSpec] = {p.name: p for p in PARAMS}
# Parameters that are fields of the tracker's TrackerConfig (same name), applied to the running tracker.
TRACKER_FIELDS: tuple[str, ...] = ("confidence_threshold", "hysteresis", "lost_threshold", "lost_frames", "long_term")
# Parameters whose default means "the tracker preset's value" (config/trackers/<preset>.yaml): a Siamese score is not a
# probability, so useful thresholds differ per model and are calibrated with the model. The node replaces the
# default by the effective value at start, so `ros2 param get` shows what is in force.
FROM_PRESET: tuple[str, ...] = ("confidence_threshold", "hysteresis", "lost_threshold", "lost_frames")


def uses_preset(name: str, value: Value) -> bool:
    """True when `value` is the "take it from the tracker preset" default of parameter `name`."""
    return name in FROM_PRESET and value == SPECS[name].default


def _type_name(value: Value) -> str:
    return {bool: "bool", int: "integer", float: "double", str: "string"}[type(value)]


def check_value(name: str, value: Any) -> Optional[str]:
    """None when `value` is acceptable for parameter `name`, else the reason (names the parameter and value)."""
    spec = SPECS.get(name)
    if spec is None:
        return f"unknown parameter {name!r}"
    want = type(spec.default)
    # ROS integer parameters may be given where a double is expected (a YAML "1" for a double is an integer).
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not want:
        return f"{name} must be a {_type_name(spec.default)}, got {value!r}"
    if uses_preset(name, value):
        return None
    if spec.choices is not None and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"
    if spec.min_value is not None and value < spec.min_value:
        return f"{name} must be >= {spec.min_value}, got {value!r}"
    if spec.max_value is not None and value > spec.max_value:
        return f"{name} must be <= {spec.max_value}, got {value!r}"
    return None


def check_update(current: dict[str, Value], changes: dict[str, Value]) -> Optional[str]:
    """Validate a set of changes against the current values: per-value checks, then cross-parameter rules."""
    for name, value in changes.items():
        reason = check_value(name, value)
        if reason:
            return reason
    merged = {**current, **changes}
    conf, lost = merged.get("confidence_threshold"), merged.get("lost_threshold")
    if conf is None or lost is None or uses_preset("confidence_threshold", conf) or uses_preset("lost_threshold", lost):
        return None
    if float(lost) > float(conf):
        return (f"lost_threshold ({float(lost)}) must be <= confidence_threshold ({float(conf)})")
    return None


def descriptor(spec: ParamSpec) -> Any:
    """rcl_interfaces/ParameterDescriptor for `spec` (description, read_only, range; choices listed in the text)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    text = spec.description
    if spec.choices:
        text += f" One of: {', '.join(spec.choices)}."
    if not spec.dynamic:
        text += " Read-only (set at start)."
    desc = ParameterDescriptor(description=text, read_only=not spec.dynamic)
    if spec.min_value is not None and spec.max_value is not None:
        # rclpy enforces the range, so it must admit the "from the preset" default as well.
        low = min(spec.min_value, spec.default) if spec.name in FROM_PRESET else spec.min_value
        if isinstance(spec.default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(low), to_value=float(spec.max_value), step=0.0)]
        elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
            desc.integer_range = [IntegerRange(
                from_value=int(low), to_value=int(spec.max_value), step=1)]
    return desc
