"""The layout of siamattn_ros recordings, and reading one back as frames + ground truth.

A recording is a rosbag2 folder (mcap storage) with
- IMAGE_TOPIC  (sensor_msgs/msg/CompressedImage, JPEG, format "bgr8; jpeg compressed bgr8"): the camera frames;
- TRUTH_TOPIC  (geometry_msgs/msg/PolygonStamped): one message per frame with the SAME header (stamp and frame_id)
  as the frame; the 4 corners of the axis-aligned ground-truth box (top-left, top-right, bottom-right,
  bottom-left, pixels, z = 0), or NO points when the target is not visible in that frame. rviz2 can show it.
- INFO_TOPIC   (std_msgs/msg/String, one message at the start): JSON with the recording's name, source, licence,
  frame rate, and how it was made.
Beside the folder, `<name>.groundtruth.txt` repeats the truth in GOT-10k form (one "x,y,w,h" line per frame,
"nan,nan,nan,nan" when not visible) for tools that do not read bags.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from siamattn_ros.interface.convert import NS_PER_S, stamp_to_ns
from siamattn_ros.interface.paths import SOURCE_ROOT, package_dirs
from siamattn_ros.replay.bag import BagMessage, deserialize, read_messages

IMAGE_TOPIC = "/camera/image_raw/compressed"
RAW_IMAGE_TOPIC = "/camera/image_raw"
TRUTH_TOPIC = "/ground_truth/box"
INFO_TOPIC = "/recording/info"
FRAME_ID = "camera_optical_frame"
COMPRESSED_FORMAT = "bgr8; jpeg compressed bgr8"
# First frame's stamp: a fixed, obviously synthetic time (2023-11-14T22:13:20Z) so replays are reproducible.
BASE_STAMP_NS = 1_700_000_000 * NS_PER_S
RECORDINGS_DIR = SOURCE_ROOT / "recordings"


def box_corners(box_xywh: np.ndarray) -> list[tuple[float, float]]:
    """Corners of an axis-aligned x, y, w, h box in the truth topic's order; [] for a NaN (not visible) box."""
    x, y, w, h = (float(v) for v in box_xywh)
    if not np.isfinite([x, y, w, h]).all():
        return []
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def corners_box(points: list) -> np.ndarray:
    """x, y, w, h of the truth polygon's points (NaNs when it has none)."""
    if len(points) == 0:
        return np.full(4, np.nan)
    xs = np.array([p.x for p in points], dtype=np.float64)
    ys = np.array([p.y for p in points], dtype=np.float64)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()])


@dataclass
class Frame:
    index: int
    stamp_ns: int
    frame_id: str
    message: BagMessage          # the stored CompressedImage (CDR bytes)

    def decode(self) -> np.ndarray:
        """BGR uint8 image."""
        msg = deserialize(self.message)
        img = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"frame {self.index} (stamp {self.stamp_ns}) does not decode as an image")
        return img


@dataclass
class Recording:
    path: Path
    frames: list[Frame]
    truth: np.ndarray                     # (N, 4) x, y, w, h; NaN rows where the target is not visible
    info: dict = field(default_factory=dict)

    @property
    def visible(self) -> np.ndarray:
        return np.isfinite(self.truth).all(axis=1)

    def index_of_stamp(self, stamp: int) -> Optional[int]:
        return self._by_stamp().get(int(stamp))

    def _by_stamp(self) -> dict[int, int]:
        if not hasattr(self, "_stamp_index"):
            self._stamp_index = {f.stamp_ns: f.index for f in self.frames}
        return self._stamp_index

    def __len__(self) -> int:
        return len(self.frames)


def recording_dirs() -> list[Path]:
    """Where bundled recordings may be: recordings/ of the source tree, then share/siamattn_ros/recordings of an
    ament (colcon) install when ament_index_python is importable."""
    return [d for d in package_dirs("recordings") if d.is_dir()]


def recording_path(name_or_path: str | Path) -> Path:
    """A bundled recording's folder by name ('vtest_woman'), or the given path. Raises FileNotFoundError."""
    p = Path(name_or_path)
    if p.exists():
        return p
    for d in recording_dirs():
        if (d / str(name_or_path)).exists():
            return d / str(name_or_path)
    have = [b.name for b in bundled_recordings()]
    raise FileNotFoundError(f"no recording {name_or_path!r} (bundled: {have}; looked in "
                            f"{[str(d) for d in recording_dirs()] or str(RECORDINGS_DIR)})")


def bundled_recordings() -> list[Path]:
    """The bundled recordings (first location of recording_dirs() that has any)."""
    for d in recording_dirs():
        found = sorted(b for b in d.iterdir() if (b / "metadata.yaml").is_file())
        if found:
            return found
    return []


def load_recording(path: str | Path) -> Recording:
    """Frames (still compressed) and per-frame truth of a recording. Truth is matched to frames by header stamp;
    a frame without a truth message, or a truth message for no frame, is an error naming the stamp."""
    path = recording_path(path)
    frames: list[Frame] = []
    truth_by_stamp: dict[int, np.ndarray] = {}
    info: dict = {}
    for m in read_messages(path):
        if m.topic == IMAGE_TOPIC:
            header = deserialize(m).header
            frames.append(Frame(len(frames), stamp_to_ns(header.stamp), header.frame_id, m))
        elif m.topic == TRUTH_TOPIC:
            msg = deserialize(m)
            truth_by_stamp[stamp_to_ns(msg.header.stamp)] = corners_box(
                msg.polygon.points)
        elif m.topic == INFO_TOPIC:
            info = json.loads(deserialize(m).data)
    if not frames:
        raise ValueError(f"recording {path} has no messages on {IMAGE_TOPIC}")
    truth = np.full((len(frames), 4), np.nan)
    for f in frames:
        if f.stamp_ns not in truth_by_stamp:
            raise ValueError(f"recording {path}: frame {f.index} (stamp {f.stamp_ns}) has no {TRUTH_TOPIC} message")
        truth[f.index] = truth_by_stamp.pop(f.stamp_ns)
    if truth_by_stamp:
        raise ValueError(f"recording {path}: truth for stamps with no frame: {sorted(truth_by_stamp)[:5]}")
    return Recording(path, frames, truth, info)
