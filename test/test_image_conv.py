"""Image message conversion: every supported encoding, row padding, byte order, and clear refusals.

`decode_image` is tested twice: with ROS 2 cv_bridge doing the unpacking (where it is installed: a ROS 2 install or
../shared/ros-overlay) and with the own converter alone (always), so both paths a user can get are checked."""
from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (run `make test`, which installs it)")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from siamattn_ros.ros import image_conv  # noqa: E402
from siamattn_ros.ros.image_conv import (ImageConversionError, decode_compressed, decode_image,  # noqa: E402
                                         decode_raw, to_compressed_msg, to_image_msg)

RNG = np.random.default_rng(7)


@pytest.fixture(params=["own", "cv_bridge"])
def decode(request, monkeypatch):
    """decode_image as a user without cv_bridge ("own") or with it ("cv_bridge") gets it."""
    if request.param == "own":
        monkeypatch.setattr(image_conv, "_CvBridge", None)
    elif not image_conv.has_cv_bridge():
        reason = "cv_bridge not installed here (a ROS 2 install or ../shared/ros-overlay has it): own converter only"
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    return decode_image
BGR = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)  # odd width: catches stride / padding mistakes


def make_msg(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """Build an Image by hand from an (H, W[, C]) array, with `pad` junk bytes at the end of every row."""
    h, w = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if bigendian else "<u2")
    rows = pixels.reshape(h, -1).view(np.uint8).reshape(h, -1)
    junk = np.full((h, pad), 0xAB, np.uint8)
    data = np.concatenate([rows, junk], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=int(data.shape[1]))
    msg.data = array.array("B", data.tobytes())
    return msg


@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("encoding,pixels", [
    ("bgr8", BGR),
    ("8UC3", BGR),
    ("rgb8", BGR[:, :, ::-1]),
    ("bgra8", np.dstack([BGR, np.full(BGR.shape[:2], 17, np.uint8)])),
    ("rgba8", np.dstack([BGR[:, :, ::-1], np.full(BGR.shape[:2], 99, np.uint8)])),
])
def test_colour_encodings_give_the_same_bgr(encoding, pixels, pad, decode):
    msg = make_msg(np.ascontiguousarray(pixels), encoding, pad)
    for fn in (decode_raw, decode):
        out = fn(msg)
        assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags.c_contiguous
        np.testing.assert_array_equal(out, BGR)


@pytest.mark.parametrize("pad", [0, 1, 8])
@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(encoding, pad, decode):
    gray = BGR[:, :, 1].copy()
    out = decode(make_msg(gray, encoding, pad=pad))
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


@pytest.mark.parametrize("pad", [0, 4, 5])
def test_8uc4_is_read_as_bgra(pad, decode):
    out = decode(make_msg(np.dstack([BGR, np.full(BGR.shape[:2], 200, np.uint8)]), "8UC4", pad))
    np.testing.assert_array_equal(out, BGR)


@pytest.mark.parametrize("encoding,pixels", [("bgr8", BGR), ("8UC3", BGR), ("rgb8", BGR[:, :, ::-1]),
                                             ("bgra8", np.dstack([BGR, BGR[:, :, :1]]))])
@pytest.mark.parametrize("pad", [1, 2, 7])
def test_row_step_not_a_multiple_of_the_pixel_size(encoding, pixels, pad, decode):
    # e.g. bgr8 rows padded to a 4-byte boundary: 7 * 3 = 21 bytes + 3 -> pad 3 is a multiple, 1 / 2 / 7 are not
    msg = make_msg(np.ascontiguousarray(pixels), encoding, pad)
    np.testing.assert_array_equal(decode(msg), BGR)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_mono16_keeps_the_high_byte_in_either_byte_order(encoding, bigendian, decode):
    values = RNG.integers(0, 65536, size=(4, 6), dtype=np.uint16)
    out = decode(make_msg(values, encoding, pad=2, bigendian=bigendian))
    np.testing.assert_array_equal(out[:, :, 0], (values >> 8).astype(np.uint8))
    np.testing.assert_array_equal(out[:, :, 2], (values >> 8).astype(np.uint8))


def test_rgb16_big_endian():
    values = RNG.integers(0, 65536, size=(3, 4, 3), dtype=np.uint16)
    out = decode_raw(make_msg(values, "rgb16", bigendian=True))
    np.testing.assert_array_equal(out, (values[:, :, ::-1] >> 8).astype(np.uint8))


@pytest.mark.parametrize("encoding,order", [("yuv422", "UYVY"), ("yuv422_yuy2", "YUYV")])
def test_packed_yuv422_grey_level(encoding, order):
    # A uniform grey: Y = 120 everywhere, U = V = 128 (no colour); every BGR channel must come out ~120.
    h, w = 2, 4
    pair = {"UYVY": [128, 120, 128, 120], "YUYV": [120, 128, 120, 128]}[order]
    packed = np.tile(np.array(pair, np.uint8), (h, w // 2)).reshape(h, w, 2)
    out = decode_raw(make_msg(packed, encoding))
    assert out.shape == (h, w, 3)
    assert np.all(np.abs(out.astype(int) - 120) <= 2), out


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "32FC1", "nv12", ""])
def test_unsupported_encoding_is_named(encoding, decode):
    msg = make_msg(BGR[:, :, 0].copy(), encoding)
    with pytest.raises(ImageConversionError, match="unsupported image encoding") as err:
        decode(msg)
    assert repr(encoding) in str(err.value)


@pytest.mark.parametrize("encoding,pixels", [("bgr8", BGR), ("8UC3", BGR), ("mono8", BGR[:, :, 0].copy()),
                                             ("8UC1", BGR[:, :, 0].copy())])
def test_zero_size_and_short_data_are_refused(encoding, pixels, decode):
    msg = Image(height=0, width=10, encoding=encoding, step=30)
    with pytest.raises(ImageConversionError, match="zero-size"):
        decode(msg)
    for pad in (0, 3):
        short = make_msg(pixels, encoding, pad)
        short.data = short.data[:-1]
        with pytest.raises(ImageConversionError, match=f"has {5 * short.step - 1} bytes, expected step"):
            decode(short)
    bad_step = make_msg(pixels, encoding)
    bad_step.step = bad_step.step - 1
    with pytest.raises(ImageConversionError, match=f"step {bad_step.step} is smaller"):
        decode(bad_step)


def test_round_trip_through_output_messages(decode):
    header = Header(frame_id="cam_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = to_image_msg(BGR, header, "bgr8")
    assert (msg.width, msg.height, msg.step, msg.encoding) == (7, 5, 21, "bgr8")
    assert msg.header == header
    np.testing.assert_array_equal(decode(msg), BGR)
    mono = to_image_msg(BGR[:, :, 2].copy(), header, "mono8")
    np.testing.assert_array_equal(decode(mono)[:, :, 0], BGR[:, :, 2])
    with pytest.raises(ImageConversionError, match="float32"):
        to_image_msg(BGR.astype(np.float32), header, "bgr8")


def test_compressed_png_is_lossless_and_garbage_is_refused():
    header = Header(frame_id="cam")
    msg = to_compressed_msg(BGR, header, "png")
    assert isinstance(msg, CompressedImage) and msg.format == "png"
    np.testing.assert_array_equal(decode_compressed(msg), BGR)
    jpeg = decode_compressed(to_compressed_msg(cv2.resize(BGR, (64, 48)), header, "jpeg"))
    assert jpeg.shape == (48, 64, 3)
    broken = CompressedImage(format="jpeg")
    broken.data = array.array("B", b"not a jpeg at all")
    with pytest.raises(ImageConversionError, match="could not decode 17 bytes"):
        decode_compressed(broken)
    with pytest.raises(ImageConversionError, match="empty"):
        decode_compressed(CompressedImage(format="jpeg"))
    depth = to_compressed_msg(BGR, header, "png")
    depth.format = "16UC1; compressedDepth png"
    with pytest.raises(ImageConversionError, match="compressed depth"):
        decode_compressed(depth)


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono8", "bgra8", "rgba8", "8UC1", "8UC3", "8UC4"])
def test_own_converter_agrees_with_cv_bridge(encoding):
    if not image_conv.has_cv_bridge():
        reason = "cv_bridge not installed here (a ROS 2 install or ../shared/ros-overlay has it): own converter only"
        print(f"SKIP reason: {reason}")
        pytest.skip(reason)
    from cv_bridge import CvBridge

    src = {"bgr8": BGR, "rgb8": BGR[:, :, ::-1], "mono8": BGR[:, :, 0], "bgra8": np.dstack([BGR, BGR[:, :, :1]]),
           "rgba8": np.dstack([BGR[:, :, ::-1], BGR[:, :, :1]]), "8UC1": BGR[:, :, 0], "8UC3": BGR,
           "8UC4": np.dstack([BGR, BGR[:, :, :1]])}[encoding]
    src = np.ascontiguousarray(src)
    channels = 1 if src.ndim == 2 else src.shape[2]
    msg = make_msg(src, encoding, pad=2 * channels)  # cv_bridge needs a step that is a multiple of the pixel size
    if encoding.startswith("8UC"):  # cv_bridge has no colour meaning for these: compare the unpacked pixels
        raw = CvBridge().imgmsg_to_cv2(msg, desired_encoding="passthrough")
        np.testing.assert_array_equal(raw, src)
        np.testing.assert_array_equal(decode_raw(msg), BGR if channels > 1 else cv2.cvtColor(src, cv2.COLOR_GRAY2BGR))
    else:
        np.testing.assert_array_equal(decode_raw(msg), CvBridge().imgmsg_to_cv2(msg, desired_encoding="bgr8"))


def test_cv_bridge_does_the_unpacking_where_it_is_installed(decode):
    """With cv_bridge importable, decode_image hands it the standard 8-bit images (so a ROS install's converter is
    the one used); without it the own converter gives the same pixels."""
    image_conv._bridge = None
    np.testing.assert_array_equal(decode(make_msg(BGR, "8UC3", pad=3)), BGR)
    assert (image_conv._bridge is not None) == (image_conv._CvBridge is not None)
