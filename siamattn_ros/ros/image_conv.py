"""sensor_msgs/Image and CompressedImage <-> NumPy BGR, without ROS dependencies beyond the message classes.

`cv_bridge` unpacks raw images when it is importable (a user's ROS 2 install) and can do so correctly; otherwise
`decode_raw` here does the same job (see `decode_image`). Both give an 8-bit, 3-channel BGR array, which is what the tracker takes. Encodings that are not listed in
`SUPPORTED_ENCODINGS` are refused with an ImageConversionError naming them: a wrong guess at a pixel layout would give
the tracker garbage that looks like a valid image.
"""
from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any, Optional

import cv2
import numpy as np

try:  # Optional: present on a ROS 2 install, absent from the PyPI wheels used in development.
    from cv_bridge import CvBridge as _CvBridge
except ImportError:  # pragma: no cover - depends on the environment
    _CvBridge = None

# encoding -> (channels per pixel, element type u1 / u2, OpenCV conversion to BGR or None when already BGR)
_LAYOUTS: dict[str, tuple[int, str, Optional[int]]] = {
    "bgr8": (3, "u1", None),
    "rgb8": (3, "u1", cv2.COLOR_RGB2BGR),
    "bgra8": (4, "u1", cv2.COLOR_BGRA2BGR),
    "rgba8": (4, "u1", cv2.COLOR_RGBA2BGR),
    "mono8": (1, "u1", cv2.COLOR_GRAY2BGR),
    "8UC1": (1, "u1", cv2.COLOR_GRAY2BGR),
    "8UC3": (3, "u1", None),
    "8UC4": (4, "u1", cv2.COLOR_BGRA2BGR),
    "mono16": (1, "u2", cv2.COLOR_GRAY2BGR),
    "16UC1": (1, "u2", cv2.COLOR_GRAY2BGR),
    "bgr16": (3, "u2", None),
    "rgb16": (3, "u2", cv2.COLOR_RGB2BGR),
    "bgra16": (4, "u2", cv2.COLOR_BGRA2BGR),
    "rgba16": (4, "u2", cv2.COLOR_RGBA2BGR),
    # Packed 4:2:2 (2 bytes per pixel): ROS "yuv422" is UYVY, "yuv422_yuy2" is YUYV.
    "yuv422": (2, "u1", cv2.COLOR_YUV2BGR_UYVY),
    "uyvy": (2, "u1", cv2.COLOR_YUV2BGR_UYVY),
    "yuv422_yuy2": (2, "u1", cv2.COLOR_YUV2BGR_YUY2),
    "yuyv": (2, "u1", cv2.COLOR_YUV2BGR_YUY2),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)
# Above this many pixels a message is refused rather than allocated (a corrupt width/height can claim terabytes).
MAX_PIXELS = 100_000_000


class ImageConversionError(ValueError):
    """An image message that cannot be turned into a BGR image; the message says which value is wrong."""


def has_cv_bridge() -> bool:
    """True when ROS 2 cv_bridge is importable (it is then used for raw images)."""
    return _CvBridge is not None


def _check_geometry(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageConversionError(f"zero-size image: width={width}, height={height}")
    if width * height > MAX_PIXELS:
        raise ImageConversionError(f"image too large: {width}x{height} > {MAX_PIXELS} pixels")


_PACKED_YUV = ("yuv422", "uyvy", "yuv422_yuy2", "yuyv")


@dataclass(frozen=True)
class _Geometry:
    """A checked Image message's layout: bytes per row of pixels (without padding) and per pixel."""

    encoding: str
    width: int
    height: int
    step: int
    channels: int
    elem_size: int
    code: Optional[int]

    @property
    def row_bytes(self) -> int:
        return self.width * self.channels * self.elem_size

    @property
    def pixel_bytes(self) -> int:
        return self.channels * self.elem_size


def _check(msg: Any) -> _Geometry:
    """Encoding, size, step and data length of `msg`, checked once for both converters (so errors read the same)."""
    encoding = str(msg.encoding)
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    layout = _LAYOUTS.get(encoding)
    if layout is None:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    _check_geometry(width, height)
    channels, kind, code = layout
    if encoding in _PACKED_YUV and width % 2:
        raise ImageConversionError(f"{encoding} needs an even width, got {width}")
    geo = _Geometry(encoding, width, height, step, channels, 2 if kind == "u2" else 1, code)
    if step < geo.row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width * pixel size = {geo.row_bytes} for {width}x{height} {encoding}")
    size = len(msg.data)
    if size < step * height:
        raise ImageConversionError(
            f"image data has {size} bytes, expected step * height = {step} * {height} = {step * height}")
    return geo


def _to_bgr(image: np.ndarray, geo: _Geometry) -> np.ndarray:
    if geo.code is not None:
        return cv2.cvtColor(image, geo.code)
    return np.ascontiguousarray(image)


def decode_raw(msg: Any) -> np.ndarray:
    """Convert a sensor_msgs/Image to a contiguous uint8 BGR array (H, W, 3) with this module's own converter.

    Handles row padding (any step >= width * pixel size, also one that is not a multiple of the pixel size),
    is_bigendian for 16-bit encodings, and scales 16-bit values to 8 bits by dropping the low byte (value >> 8).
    Raises ImageConversionError for unsupported encodings, zero sizes and data shorter than height * step.
    """
    geo = _check(msg)
    height, width = geo.height, geo.width
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    # View the rows (dropping the padding at the end of each row) without copying.
    rows = buf[: geo.step * height].reshape(height, geo.step)[:, :geo.row_bytes]
    per_row = width * geo.channels
    if geo.elem_size == 2:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
        values = np.ascontiguousarray(rows).view(dtype).reshape(height, per_row)
        values = (values >> 8).astype(np.uint8)
    else:
        values = rows
    shape = (height, width, geo.channels) if geo.channels > 1 else (height, width)
    return _to_bgr(np.ascontiguousarray(values).reshape(shape), geo)


_bridge = None


def decode_image(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> uint8 BGR (H, W, 3): through cv_bridge when installed, `decode_raw` otherwise.

    Both paths check the message first (`_check`), so errors read the same everywhere. cv_bridge only unpacks the
    pixels ("passthrough"); the colour conversion is this module's table, because cv_bridge refuses 8UC1/8UC3/8UC4
    -> bgr8 ("not a color format"). The own converter is used where cv_bridge would be wrong: a row step that is
    not a multiple of the pixel size (cv_bridge derives the width from the step), 16-bit images (cv_bridge scales by
    255/65535 instead of >> 8) and packed YUV 4:2:2.
    """
    geo = _check(msg)
    if _CvBridge is None or geo.elem_size != 1 or geo.encoding in _PACKED_YUV or geo.step % geo.pixel_bytes:
        return decode_raw(msg)
    global _bridge
    if _bridge is None:
        _bridge = _CvBridge()
    try:
        image = _bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
    except Exception as exc:  # cv_bridge raises its own CvBridgeError / TypeError types
        raise ImageConversionError(
            f"cv_bridge could not convert {geo.width}x{geo.height} {geo.encoding}: {exc}") from exc
    return _to_bgr(image, geo)


def decode_compressed(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg / png, as published by image_transport's compressed plugin) -> BGR.

    The format field is informational for cv2.imdecode, which detects the codec from the bytes; a depth image
    ("compressedDepth" format, 16-bit PNG with a header) is refused because it is not a camera picture.
    """
    fmt = str(msg.format)
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise ImageConversionError(f"compressed depth images are not supported (format {fmt!r})")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageConversionError(f"empty compressed image (format {fmt!r})")
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageConversionError(f"cv2.imdecode could not decode {buf.size} bytes (format {fmt!r})")
    _check_geometry(image.shape[1], image.shape[0])
    return image


def to_image_msg(image: np.ndarray, header: Any, encoding: str) -> Any:
    """NumPy image -> sensor_msgs/Image with `header` copied (bgr8 for (H, W, 3) uint8, mono8 for (H, W) uint8)."""
    from sensor_msgs.msg import Image

    expected = {"bgr8": 3, "mono8": 2}
    if encoding not in expected:
        raise ImageConversionError(f"to_image_msg writes bgr8 or mono8, not {encoding!r}")
    if image.dtype != np.uint8 or image.ndim != expected[encoding] or (image.ndim == 3 and image.shape[2] != 3):
        raise ImageConversionError(
            f"{encoding} needs a uint8 array of {'(H, W, 3)' if encoding == 'bgr8' else '(H, W)'}, "
            f"got {image.dtype} {image.shape}")
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(image.shape[1] * (3 if encoding == "bgr8" else 1))
    # array.array from bytes is one memcpy; assigning bytes or a list makes rclpy check every element in Python.
    msg.data = array.array("B", np.ascontiguousarray(image).tobytes())
    return msg


def to_compressed_msg(image: np.ndarray, header: Any, fmt: str = "jpeg", quality: int = 90) -> Any:
    """BGR image -> sensor_msgs/CompressedImage (used by tests, tools and select_roi's compressed mode)."""
    from sensor_msgs.msg import CompressedImage

    ext = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}.get(fmt)
    if ext is None:
        raise ImageConversionError(f"compressed format must be jpeg or png, not {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, encoded = cv2.imencode(ext, image, params)
    if not ok:
        raise ImageConversionError(f"cv2.imencode failed for {image.dtype} {image.shape} as {fmt}")
    msg = CompressedImage()
    msg.header = header
    msg.format = "jpeg" if ext == ".jpg" else "png"
    msg.data = array.array("B", encoded.tobytes())
    return msg
