"""The tracker node's ROS parameters: names, types, defaults, ranges, descriptions, and their validation.

The defaults here equal config/tracker.yaml (test_node_parts checks it), so the node behaves the same whether it is
started with or without the params file. Parameters marked `dynamic` may be changed while the node runs; the others
are declared read-only (rclpy then refuses run-time changes with a reason naming the parameter).

Each value is validated in one place: the node's own parameters by their descriptor (type, range, read-only:
enforced by rclpy) plus `check_value` for choices, which a descriptor cannot express; the parameters that are
tracker settings (TRACKER_FIELDS) by TrackerConfig.validate, through `tracker_config`, on the combination that
would result (so lost_threshold <= confidence_threshold is checked against the values in force).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:  # torch-free at import: the tracker config module is light, but keep the import lazy anyway
    from siamattn_ros.tracker.config import TrackerConfig

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
    ParamSpec("num_threads", 0, "CPU threads for torch. 0: auto = half the CPU cores, at most 4 (1 on a 2-core "
              "machine; torch's own default, all cores, collapses when other processes share them).",
              min_value=0, max_value=256),
    ParamSpec("warmup", True, "Run the network once at start so the first init does not stall the stream."),
    ParamSpec("image_transport", "raw",
              "'raw': sensor_msgs/Image on topic 'image'; 'compressed': sensor_msgs/CompressedImage on topic 'image' "
              "(remap it to .../compressed).", choices=("raw", "compressed")),
    ParamSpec("qos_reliability", "best_effort",
              "Reliability of the image subscription: 'best_effort' (receives from any camera) or 'reliable' "
              "(only from reliable publishers).", choices=("best_effort", "reliable")),
    ParamSpec("depth_enabled", False,
              "Also subscribe to an aligned depth image (topic depth/image: 16UC1 mm or 32FC1 m, registered to the "
              "colour image) and its camera_info (depth/camera_info), synchronised with the colour image by "
              "message_filters' ApproximateTimeSynchronizer; publishes the target's 3D position on track/position "
              "(geometry_msgs/PointStamped) and its distance in TrackResult.range. Needs message_filters."),
    ParamSpec("depth_sync_slop", 0.05, "Largest stamp difference (s) between a colour image and the depth image / "
              "camera_info paired with it.", min_value=0.001, max_value=1.0),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", min_value=0.1, max_value=60.0),
    # ---- run-time changeable
    ParamSpec("confidence_threshold", -1.0,
              "Confidence below this -> LOW_CONFIDENCE, in [0, 1]. -1: the tracker preset's calibrated value.",
              dynamic=True),
    ParamSpec("hysteresis", -1.0,
              "Back to TRACKING only when confidence >= confidence_threshold + hysteresis, in [0, 1]. -1: the "
              "preset's value.", dynamic=True),
    ParamSpec("lost_threshold", -1.0,
              "Confidence below this for lost_frames consecutive frames -> LOST, in [0, 1]. Must be <= "
              "confidence_threshold (lower lost_threshold first when lowering both, raise confidence_threshold first "
              "when raising both). -1: the preset's value.", dynamic=True),
    ParamSpec("lost_frames", 0, "Consecutive frames below lost_threshold before LOST, >= 1. 0: the preset's value.",
              dynamic=True),
    ParamSpec("long_term", True,
              "While LOST, keep the last confident box (a tracker_config with lost_follow: true moves its centre to a "
              "partly seen target) and widen the search region until the target is found again.",
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


def check_value(name: str, value: Any) -> Optional[str]:
    """None when `value` is acceptable for the node parameter `name`, else the reason (names parameter and value).

    Only what the rclpy descriptor cannot enforce: a known name and, for string parameters, one of the choices.
    Types, ranges and read-only are the descriptor's job (rclpy refuses those before the node sees them); tracker
    settings are checked by `tracker_config`.
    """
    spec = SPECS.get(name)
    if spec is None:
        return f"unknown parameter {name!r}"
    if spec.choices is not None and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"
    return None


def tracker_config(in_force: "TrackerConfig", preset: "TrackerConfig", changes: dict[str, Value]) -> "TrackerConfig":
    """The TrackerConfig that results from applying parameter `changes` to the config `in_force`.

    A "from the preset" default (-1 / 0) stands for the preset's value. Validation is TrackerConfig's own, on the
    resulting combination; a ValueError names the parameter and, for the lost_threshold <= confidence_threshold
    rule, says what to set instead.
    """
    values = {k: (getattr(preset, k) if uses_preset(k, v) else v) for k, v in changes.items() if k in TRACKER_FIELDS}
    for name, value in values.items():  # ROS gives 1 for a double when a params file says 1 instead of 1.0
        if isinstance(SPECS[name].default, float) and isinstance(value, int) and not isinstance(value, bool):
            values[name] = float(value)
    try:
        return in_force.replace(**values)
    except ValueError as exc:
        text = str(exc).replace("TrackerConfig.", "")
        conf = values.get("confidence_threshold", in_force.confidence_threshold)
        lost = values.get("lost_threshold", in_force.lost_threshold)
        if "lost_threshold" in text and "confidence_threshold" in text and lost > conf:
            if "confidence_threshold" in values and "lost_threshold" not in values:
                text += (f": set lost_threshold to {conf} or lower first (it is {lost} now), or set both in one "
                         f"call (ros2 param load with lost_threshold before confidence_threshold)")
            elif "lost_threshold" in values and "confidence_threshold" not in values:
                text += (f": set confidence_threshold to {lost} or higher first (it is {conf} now), or set both in "
                         f"one call")
            else:
                text += ": give lost_threshold a value <= confidence_threshold"
        raise ValueError(text) from None


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
        if isinstance(spec.default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(spec.min_value), to_value=float(spec.max_value), step=0.0)]
        elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
            desc.integer_range = [IntegerRange(
                from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)]
    return desc


class PresetSentinels:
    """Makes `ros2 param get` show the value in force after a parameter is set to its "from the preset" default.

    rclpy stores the value that was sent (-1), so something has to replace it by the preset's value. Where rclpy has
    pre-set callbacks (Iron and later) the sentinel is replaced before validation and storage, in the same call, so
    nothing runs afterwards. On Humble the value is written back by a short-lived thread once rclpy has stored the
    sentinel. (An executor timer reset from the parameter service's thread was used before: rclpy's
    MultiThreadedExecutor does not reliably wake for a timer re-armed from another thread, and in one CI run the
    node's parameter services stopped answering after such a write-back.)
    """

    def __init__(self, node: Any, preset_value: Any, deferred: Optional[bool] = None) -> None:
        """`preset_value(name)` gives the value in force for a sentinel; `deferred` forces the Humble path (tests)."""
        self._node = node
        self._preset_value = preset_value
        self.deferred = not hasattr(node, "add_pre_set_parameters_callback") if deferred is None else deferred
        if not self.deferred:
            node.add_pre_set_parameters_callback(self._substitute)

    def _substitute(self, parameters: list) -> list:
        from rclpy.parameter import Parameter

        return [Parameter(p.name, value=self._preset_value(p.name)) if uses_preset(p.name, p.value) else p
                for p in parameters]

    def after_set(self, values: dict[str, Value]) -> None:
        """Called by the set-parameters callback with the in-force values of the sentinels it accepted (only the
        Humble path sees sentinels there); stores them once rclpy has stored the sentinels."""
        if not values:
            return
        threading.Thread(target=self._write_back, args=(dict(values),), name="preset_sentinels", daemon=True).start()

    def _write_back(self, values: dict[str, Value], timeout: float = 2.0) -> None:
        from rclpy.parameter import Parameter

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            stored = {k: self._node.get_parameter(k).value for k in values}
            if all(uses_preset(k, v) for k, v in stored.items()):
                self._node.set_parameters([Parameter(k, value=v) for k, v in values.items()])
                return
            time.sleep(0.005)
        # Not stored within the timeout: another set replaced the sentinel meanwhile, and that value is in force.
