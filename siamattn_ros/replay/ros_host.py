"""An rclpy node spinning in a background thread with its own Context, so library code (tests, tools) can publish
and wait on subscriptions from ordinary code, and several can coexist in one process."""
from __future__ import annotations

import threading
from typing import Any, Optional

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class RosHost:
    """Use as a context manager: `with RosHost("name") as node: ...`."""

    def __init__(self, name: str, args: Optional[list] = None) -> None:
        self.context = Context()
        rclpy.init(args=args, context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{name}_spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except Exception:  # shutdown while spinning (context invalidated): nothing left to do
            pass

    def __enter__(self) -> Node:
        return self.node

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if not self.context.ok():
            return
        self.context.try_shutdown()
        self._thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
