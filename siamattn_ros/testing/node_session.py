"""tracker_node in a child process with a TrackerDriver connected to it: what node tests and benchmarks start with."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from siamattn_ros.testing.node_process import NodeProcess
from siamattn_ros.testing.ros_client import TrackerDriver


@contextmanager
def connected_node(params: Mapping[str, Any], image_topic: str, *, namespace: str = "",
                   remaps: Optional[Mapping[str, str]] = None, env: Optional[Mapping[str, Optional[str]]] = None,
                   driver_args: Optional[Mapping[str, Any]] = None, startup_s: float = 300.0,
                   log_to: Optional[Path] = None, show_log: bool = False
                   ) -> Iterator[tuple[NodeProcess, TrackerDriver]]:
    """Start tracker_node and connect a driver publishing on `image_topic`; yields (node, driver).

    `remaps` default: the node's `image` to `image_topic`. `env` goes over the child's environment (None removes a
    variable); `driver_args` go to TrackerDriver (ns, compressed, ...). Raises RuntimeError with the node's log tail
    when it does not start or connect. On exit the driver is closed and the node stopped; its log is written to
    `log_to` and, with `show_log`, printed (pytest shows it for a failed test)."""
    node = NodeProcess(params=params, remaps={"image": image_topic} if remaps is None else remaps,
                       namespace=namespace)
    for key, value in (env or {}).items():
        if value is None:
            node.env.pop(key, None)
        else:
            node.env[key] = value
    node.start()
    driver = None
    try:
        if not node.wait_for_log("ready:", startup_s):
            raise RuntimeError(f"tracker_node did not start:\n{node.log_tail()}")
        driver = TrackerDriver(image_topic=image_topic, **(driver_args or {}))
        if not driver.wait_for_connection(60):
            raise RuntimeError(f"no connection to tracker_node:\n{node.log_tail()}")
        yield node, driver
    finally:
        if driver is not None:
            driver.close()
        code = node.stop()
        if log_to is not None:
            Path(log_to).write_text(node.log())
        if show_log:
            print(f"---- node log (exit {code}) ----\n{node.log_tail(4000)}")
        node.cleanup()
