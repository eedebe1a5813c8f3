"""select_roi: draw a box on a camera frame and start the tracker on exactly that frame.

    ros2 run siamattn_ros select_roi --ros-args -r image:=/camera/color/image_raw
    ros2 run siamattn_ros select_roi --box 100 50 80 60 --ros-args -r image:=/camera/color/image_raw

The window shows the live stream. Press SPACE (or s) to freeze the current frame, drag a box, press ENTER/SPACE to
send it (c cancels); q or ESC quits. The InitBox carries the stamp of the frozen frame, so the tracker initialises on
the frame the box was drawn on even if the drag took seconds (within its frame_buffer_length). `--box X Y W H`
(top-left x, y, width, height, pixels) sends a box for the next received frame without a window.

Topics (relative, so `--ros-args -r __ns:=/cam1` follows a namespaced tracker): subscribes `image` (or a
CompressedImage with --compressed), publishes `track/init`.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Optional, Sequence

import cv2
import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from siamattn_ros.msg import InitBox
from siamattn_ros.ros.image_conv import ImageConversionError, decode_compressed, decode_image
from siamattn_ros.interface.convert import format_ns, stamp_to_ns
from siamattn_ros.interface.names import TOPIC_IMAGE, TOPIC_INIT
from siamattn_ros.ros.messages import check_init_box, init_box_msg, xywh_to_box
from siamattn_ros.ros.qos import image_qos, init_qos

WINDOW = "siamattn_ros select_roi"


class RoiSelector(Node):
    """Keeps the newest frame message and publishes InitBox boxes stamped with the frame they were drawn on."""

    def __init__(self, compressed: bool = False, reliability: str = "best_effort", **kwargs: Any) -> None:
        super().__init__("select_roi", **kwargs)
        self._lock = threading.Lock()
        self._latest: Optional[Any] = None
        self.frames_received = 0
        self._decode = decode_compressed if compressed else decode_image
        self.create_subscription(CompressedImage if compressed else Image, TOPIC_IMAGE, self._on_image,
                                 image_qos(reliability))
        self.publisher = self.create_publisher(InitBox, TOPIC_INIT, init_qos())

    def _on_image(self, msg: Any) -> None:
        with self._lock:
            self._latest = msg
            self.frames_received += 1

    def latest_message(self) -> Optional[Any]:
        with self._lock:
            return self._latest

    def snapshot(self) -> Optional[tuple[np.ndarray, Any]]:
        """(BGR image, its header) of the newest frame, or None before the first frame; both stay valid (frozen)."""
        msg = self.latest_message()
        if msg is None:
            return None
        return self._decode(msg), msg.header

    def publish_box(self, header: Any, box_xywh: Sequence[float], image_size: tuple[int, int]) -> InitBox:
        """Publish InitBox for a top-left x, y, w, h box drawn on the frame with `header`; ValueError if invalid."""
        box = xywh_to_box(box_xywh)
        reason = check_init_box(box, image_size[0], image_size[1])
        if reason:
            raise ValueError(reason)
        msg = init_box_msg(header, box)
        self.publisher.publish(msg)
        self.get_logger().info(
            f"sent box x={box_xywh[0]:.0f} y={box_xywh[1]:.0f} w={box_xywh[2]:.0f} h={box_xywh[3]:.0f} for frame "
            f"{format_ns(stamp_to_ns(header.stamp))} to {self.resolve_topic_name(TOPIC_INIT)}")
        return msg

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return bool(predicate())


def gui_available() -> tuple[bool, str]:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        return True, ""
    except cv2.error as exc:
        return False, str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.namedWindow failed"


def _run_gui(node: RoiSelector) -> int:
    print("SPACE/s: freeze and draw a box (ENTER/SPACE sends, c cancels); q/ESC: quit", flush=True)
    while rclpy.ok():
        try:
            snap = node.snapshot()
        except ImageConversionError as exc:
            node.get_logger().warning(f"cannot show frame: {exc}", throttle_duration_sec=5.0)
            snap = None
        if snap is None:
            canvas = np.zeros((240, 480, 3), np.uint8)
            cv2.putText(canvas, f"waiting for {node.resolve_topic_name('image')}", (10, 120),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.imshow(WINDOW, canvas)
        else:
            cv2.imshow(WINDOW, snap[0])
        key = cv2.waitKey(30) & 0xFF
        if key in (ord("q"), 27):
            return 0
        if key in (ord(" "), ord("s")) and snap is not None:
            image, header = snap  # frozen: this frame and its stamp, whatever arrives meanwhile
            x, y, w, h = cv2.selectROI(WINDOW, image, showCrosshair=True, fromCenter=False)
            if w > 0 and h > 0:
                try:
                    node.publish_box(header, (float(x), float(y), float(w), float(h)),
                                     (image.shape[1], image.shape[0]))
                except ValueError as exc:
                    print(f"box not sent: {exc}", file=sys.stderr)
    return 0


def main(args: Optional[list] = None) -> None:
    argv = sys.argv if args is None else args
    from rclpy.utilities import remove_ros_args

    parser = argparse.ArgumentParser(prog="select_roi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--box", nargs=4, type=float, metavar=("X", "Y", "W", "H"),
                        help="send this box (top-left x, y, width, height) for the next frame, without a window")
    parser.add_argument("--compressed", action="store_true", help="subscribe to sensor_msgs/CompressedImage")
    parser.add_argument("--reliable", action="store_true", help="reliable image subscription (default best effort)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a frame with --box")
    opts = parser.parse_args(remove_ros_args(argv)[1:])
    if opts.box is None:
        ok, why = gui_available()
        if not ok:
            print(f"select_roi: this OpenCV cannot open windows ({why}). Install an OpenCV with GUI support "
                  f"(apt python3-opencv, or pip opencv-python instead of opencv-python-headless), or send a box "
                  f"without a window: select_roi --box X Y W H", file=sys.stderr)
            sys.exit(2)
    rclpy.init(args=argv)
    node = RoiSelector(compressed=opts.compressed, reliability="reliable" if opts.reliable else "best_effort")
    stop = threading.Event()
    spinner = threading.Thread(target=_spin, args=(node, stop), daemon=True)
    spinner.start()
    code = 0
    try:
        if opts.box is None:
            code = _run_gui(node)
        else:
            code = _send_once(node, opts.box, opts.timeout)
    except KeyboardInterrupt:
        pass
    finally:
        if opts.box is None:
            cv2.destroyAllWindows()
        stop.set()
        spinner.join(timeout=5.0)  # the spinning thread must be gone before the node and context are
        node.destroy_node()
        rclpy.try_shutdown()
    sys.exit(code)


def _spin(node: Node, stop: threading.Event) -> None:
    """Spin until `stop` (or shutdown) without a traceback when Ctrl-C shuts the context down meanwhile."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while not stop.is_set() and node.context.ok():
            executor.spin_once(timeout_sec=0.1)
    except Exception:
        pass
    finally:
        executor.shutdown(timeout_sec=1.0)


def _send_once(node: RoiSelector, box: Sequence[float], timeout: float) -> int:
    topic = node.resolve_topic_name(TOPIC_IMAGE)
    if not node.wait_for(lambda: node.latest_message() is not None, timeout):
        print(f"select_roi: no frame on {topic} within {timeout} s", file=sys.stderr)
        return 1
    if not node.wait_for(lambda: node.publisher.get_subscription_count() > 0, timeout):
        print(f"select_roi: nobody subscribes to {node.resolve_topic_name(TOPIC_INIT)} "
              f"(is tracker_node running in this namespace?)", file=sys.stderr)
        return 1
    image, header = node.snapshot()
    try:
        node.publish_box(header, box, (image.shape[1], image.shape[0]))
    except ValueError as exc:
        print(f"select_roi: box not sent: {exc}", file=sys.stderr)
        return 1
    time.sleep(0.5)  # let the reliable sample reach the tracker before the process (and its writer) ends
    return 0


if __name__ == "__main__":
    main()
