"""Launch siamattn_ros tracker_node (and optionally rviz2 showing its overlay image).

    ros2 launch siamattn_ros tracker.launch.py image_topic:=/camera/color/image_raw
    ros2 launch siamattn_ros tracker.launch.py image_topic:=/cam1/image_raw namespace:=cam1 rviz:=true
    ros2 launch siamattn_ros tracker.launch.py model:=siamattn_r50 checkpoint:=/path/checkpoint_vot2018.pth device:=cuda
    ros2 launch siamattn_ros tracker.launch.py image_topic:=/camera/color/image_raw depth:=true \
        depth_image_topic:=/camera/aligned_depth_to_color/image_raw \
        depth_info_topic:=/camera/aligned_depth_to_color/camera_info

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
DDS_PROFILE = ("config", "fastdds_large_images.xml")  # lets 640x480+ best-effort images through (docs/ROS_NODE.md)
DDS_PROFILE_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")  # Fast DDS 3 / Humble's 2.6
RVIZ_PACKAGE = "rviz2"
RVIZ_EXECUTABLE = "rviz2"
RVIZ_TOPICS = ("track/overlay", "track/mask")  # the rviz config names them in the root namespace
ARGUMENTS = {
    "image_topic": ("", "Camera image topic (a .../compressed topic when params image_transport is compressed); "
                        "empty: 'image' in the node's namespace (/image, or /cam1/image with namespace:=cam1)"),
    "model": ("", "Override the params file's model: embedded, siamattn_r50 or a checkpoint path (empty: keep)"),
    "checkpoint": ("", "Override the params file's checkpoint (weights for siamattn_r50; empty: keep)"),
    "device": ("", "Override the params file's device: auto, cpu, cuda, cuda:N (empty: keep)"),
    "depth": ("false", "true: also use an aligned depth image + camera_info (parameter depth_enabled) for "
                       "track/position and TrackResult.range (needs message_filters)"),
    "depth_image_topic": ("", "Aligned depth image topic (empty: 'depth/image' in the node's namespace)"),
    "depth_info_topic": ("", "camera_info of the aligned depth image (empty: 'depth/camera_info' in the namespace)"),
    "params_file": (None, "ROS parameters file (default: the installed config/tracker.yaml)"),
    "namespace": ("", "Namespace of the node and its topics (e.g. cam1 -> /cam1/track/result)"),
    "dds_profile": (None, "Fast DDS XML profile for the tracker process (default: the installed "
                          "config/fastdds_large_images.xml; empty: Fast DDS defaults; an already exported "
                          "FASTDDS_DEFAULT_PROFILES_FILE wins). The camera driver needs it too, see docs/ROS_NODE.md"),
    "rviz": ("false", "Also start rviz2 showing the overlay image (a warning, and no rviz2, when it is not installed)"),
}


def _launch_setup(context, *args, **kwargs):
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context).strip()

    overrides = {name: arg(name) for name in ("model", "checkpoint", "device") if arg(name)}
    if arg("depth").lower() in ("true", "1", "yes", "on"):
        overrides["depth_enabled"] = True
    namespace = arg("namespace").strip("/")
    image_topic = arg("image_topic")
    profile = arg("dds_profile")
    user_profile = next((os.environ[v] for v in DDS_PROFILE_VARS if os.environ.get(v)), "")
    # Fast DDS 3 (Kilted on) reads FASTDDS_... and warns about the old name; Fast DDS 2 (Humble, Jazzy) reads FASTRTPS_.
    names = DDS_PROFILE_VARS if os.environ.get("ROS_DISTRO", "") in ("humble", "iron", "jazzy") else DDS_PROFILE_VARS[:1]
    dds_env = {v: user_profile or profile for v in names} if (user_profile or profile) else {}
    actions = [Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=NODE_NAME,
        namespace=namespace or None,
        parameters=[arg("params_file")] + ([overrides] if overrides else []),
        # No remap by default: the relative name 'image' then follows the namespace.
        remappings=[(name, topic) for name, topic in (("image", image_topic),
                                                      ("depth/image", arg("depth_image_topic")),
                                                      ("depth/camera_info", arg("depth_info_topic"))) if topic],
        output="screen",
        emulate_tty=True,
        additional_env=dds_env,
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
        if default is None:  # params_file, dds_profile: resolved from the installed package share
            default = PathJoinSubstitution([FindPackageShare(PACKAGE), *(PARAMS_FILE if name == "params_file"
                                                                        else DDS_PROFILE)])
        declared.append(DeclareLaunchArgument(name, default_value=default, description=description))
    return LaunchDescription(declared + [OpaqueFunction(function=_launch_setup)])
