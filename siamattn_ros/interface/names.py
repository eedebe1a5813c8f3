"""Names of the node and of its topics and services.

Topic names are relative: they resolve to /track/... in the root namespace and to /<ns>/track/... when the node runs
in a namespace. `/diagnostics` is absolute by convention (diagnostic_aggregator listens there).
"""
from __future__ import annotations

NODE_NAME = "tracker_node"

TOPIC_IMAGE = "image"
TOPIC_INIT = "track/init"
TOPIC_RESULT = "track/result"
TOPIC_MASK = "track/mask"
TOPIC_OVERLAY = "track/overlay"
TOPIC_DETECTION = "track/detection"
TOPIC_DIAGNOSTICS = "/diagnostics"
# Optional depth input (parameter depth_enabled): an aligned depth image and its camera_info, and the 3D output.
TOPIC_DEPTH = "depth/image"
TOPIC_DEPTH_INFO = "depth/camera_info"
TOPIC_POSITION = "track/position"

# Private services (~/name): /<ns>/<node name>/reset and .../init.
SERVICE_RESET = "~/reset"
SERVICE_INIT = "~/init"


def resolve(name: str, namespace: str = "", node_name: str = NODE_NAME) -> str:
    """The absolute name a node `node_name` in `namespace` gives to the relative or private `name` (as rclpy
    resolves it); for clients outside the node. An absolute name is returned unchanged."""
    if name.startswith("/"):
        return name
    prefix = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
    if name.startswith("~/"):
        return f"{prefix}/{node_name}/{name[2:]}"
    return f"{prefix}/{name}"
