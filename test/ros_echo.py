"""Child process for the cross-process message tests: republishes every message of one type from one topic to another.

Usage: python ros_echo.py <package/msg/Type> <in_topic> <out_topic>
"""
from __future__ import annotations

import importlib
import sys

import rclpy
import rclpy.executors
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy


def main() -> None:
    type_name, in_topic, out_topic = sys.argv[1:4]
    pkg, _, name = type_name.split("/")
    msg_type = getattr(importlib.import_module(f"{pkg}.msg"), name)
    qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                     durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
    rclpy.init()
    node = Node("ros_echo")
    pub = node.create_publisher(msg_type, out_topic, qos)
    node.create_subscription(msg_type, in_topic, pub.publish, qos)
    print("ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
