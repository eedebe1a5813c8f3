"""The project's shared vocabulary: the one definition of each concept that the engine, the ROS node, replay, the
tools and the tests all use. Imports neither torch nor rclpy (test_interface checks it), so light code can use it.

    states   TrackState (values == msg/TrackResult constants), CLAIMING_STATES, state_name
    names    NODE_NAME, TOPIC_* (relative), SERVICE_*, resolve() to an absolute name for outside clients
    convert  stamp_to_ns / ns_to_sec_nanosec / set_stamp / duration_to_s / format_ns; xywh <-> centre + size
    presets  resolve_preset(model, checkpoint, tracker_config): the tracker preset for a model, by its backbone
    metrics  box_iou, centre_error, success_curve, auc, precision_curve, mask_iou, score_sequence (NaN / empty
             semantics in its docstring)
"""
from siamattn_ros.interface.convert import (NS_PER_S, box_msg_to_xywh, center_size_to_xywh, duration_to_s, format_ns,
                                            ns_to_sec_nanosec, set_stamp, stamp_to_ns, xywh_to_center_size)
from siamattn_ros.interface.names import (NODE_NAME, SERVICE_INIT, SERVICE_RESET, TOPIC_DETECTION, TOPIC_DIAGNOSTICS,
                                          TOPIC_IMAGE, TOPIC_INIT, TOPIC_MASK, TOPIC_OVERLAY, TOPIC_RESULT, resolve)
from siamattn_ros.interface.presets import BUILTIN_MODELS, resolve_preset
from siamattn_ros.interface.states import CLAIMING_STATES, TrackState, state_name

__all__ = [
    "NS_PER_S", "box_msg_to_xywh", "center_size_to_xywh", "duration_to_s", "format_ns", "ns_to_sec_nanosec",
    "set_stamp", "stamp_to_ns", "xywh_to_center_size",
    "NODE_NAME", "SERVICE_INIT", "SERVICE_RESET", "TOPIC_DETECTION", "TOPIC_DIAGNOSTICS", "TOPIC_IMAGE", "TOPIC_INIT",
    "TOPIC_MASK", "TOPIC_OVERLAY", "TOPIC_RESULT", "resolve",
    "BUILTIN_MODELS", "resolve_preset",
    "CLAIMING_STATES", "TrackState", "state_name",
]
