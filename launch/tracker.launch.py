"""Launch siamattn_ros tracker_node (and optionally rviz2 showing its overlay image).

    ros2 launch siamattn_ros tracker.launch.py image_topic:=/camera/color/image_raw
    ros2 launch siamattn_ros tracker.launch.py image_topic:=/cam1/image_raw namespace:=cam1 rviz:=true
    ros2 launch siamattn_ros tracker.launch.py model:=siamattn_r50 checkpoint:=/path/checkpoint_vot2018.pth device:=cuda

Arguments model / checkpoint / device override the params file only when given (empty = keep the file's value).
Only the public launch / launch_ros API is used (the same on Humble, Jazzy and Kilted). The launch imports are inside
the functions so that the module constants below can be read (by the tests) where launch is not installed.
"""
from __future__ import annotations

import os

PACKAGE = "siamattn_ros"
EXECUTABLE = "tracker_node"
NODE_NAME = "tracker_node"
PARAMS_FILE = ("config", "tracker.yaml")  # under share/siamattn_ros
RVIZ_CONFIG = ("config", "tracker.rviz")
RVIZ_PACKAGE = "rviz2"
RVIZ_EXECUTABLE = "rviz2"
RVIZ_TOPICS = ("track/overlay", "track/mask")  # the rviz config names them in the root namespace
ARGUMENTS = {
    "image_topic": ("", "Camera image topic (a .../compressed topic when params image_transport is compressed); "
                        "empty: 'image' in the node's namespace (/image, or /cam1/image with namespace:=cam1)"),
    "model": ("", "Override the params file's model: embedded, siamattn_r50 or a checkpoint path (empty: keep)"),
    "checkpoint": ("", "Override the params file's checkpoint (weights for siamattn_r50; empty: keep)"),
    "device": ("", "Override the params file's device: auto, cpu, cuda, cuda:N (empty: keep)"),
    "params_file": (None, "ROS parameters file (default: the installed config/tracker.yaml)"),
    "namespace": ("", "Namespace of the node and its topics (e.g. cam1 -> /cam1/track/result)"),
    "rviz": ("false", "Also start rviz2 showing the overlay image (a warning, and no rviz2, when it is not installed)"),
}


def _launch_setup(context, *args, **kwargs):
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context).strip()

    overrides = {name: arg(name) for name in ("model", "checkpoint", "device") if arg(name)}
    namespace = arg("namespace").strip("/")
    image_topic = arg("image_topic")
    actions = [Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=NODE_NAME,
        namespace=namespace or None,
        parameters=[arg("params_file")] + ([overrides] if overrides else []),
        # No remap by default: the relative name 'image' then follows the namespace.
        remappings=[("image", image_topic)] if image_topic else [],
        output="screen",
        emulate_tty=True,
    )]
    if arg("rviz").lower() in ("true", "1", "yes", "on"):
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
        from launch.actions import LogInfo

        try:  # checked here, before anything starts: a missing executable would end the whole launch
            get_package_prefix(RVIZ_PACKAGE)
        except PackageNotFoundError:
            return actions + [LogInfo(msg=f"WARNING: rviz:=true but {RVIZ_PACKAGE} is not installed (apt install "
                                          f"ros-$ROS_DISTRO-rviz2); starting the tracker without it")]
        rviz_file = os.path.join(get_package_share_directory(PACKAGE), *RVIZ_CONFIG)
        actions.append(Node(
            package=RVIZ_PACKAGE,
            executable=RVIZ_EXECUTABLE,
            name="siamattn_rviz",
            arguments=["-d", rviz_file],
            # The rviz config subscribes to /track/overlay and /track/mask; follow the tracker into its namespace.
            remappings=[(f"/{t}", f"/{namespace}/{t}") for t in RVIZ_TOPICS] if namespace else [],
            output="screen",
        ))
    return actions


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.substitutions import FindPackageShare

    declared = []
    for name, (default, description) in ARGUMENTS.items():
        if default is None:  # params_file: resolved from the installed package share
            default = PathJoinSubstitution([FindPackageShare(PACKAGE), *PARAMS_FILE])
        declared.append(DeclareLaunchArgument(name, default_value=default, description=description))
    return LaunchDescription(declared + [OpaqueFunction(function=_launch_setup)])
