"""Regenerate the bundled recordings (recordings/<name>/, rosbag2 + mcap) from their sources.

    python -m siamattn_ros.tools.make_recordings                 # all recordings
    python -m siamattn_ros.tools.make_recordings vtest_woman     # one
    python -m siamattn_ros.tools.make_recordings --annotations-only   # data/annotations/*/groundtruth.txt from key frames

Sources (Debian package opencv-doc, Apache-2.0 AND BSD-3-Clause; nothing from visp-images-data, which is GPL-2):
- vtest_woman: real footage, vtest.avi frames 540-739, hand-annotated (data/annotations/vtest_woman), halved to 384x288.
- synth_butterfly: semi-synthetic (siamattn_ros.data.sequence, exact truth): a real texture cut-out moving over a
  panning real photo, with scale change, rotation, a similar distractor, a partial occluder, and leaving/re-entering.
- synth_reenter: the same without the distractor (re-acquisition after leaving the frame, measured on its own).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from siamattn_ros.interface.convert import ns_to_sec_nanosec
from siamattn_ros.replay.bag import BagWriter
from siamattn_ros.interface.paths import SOURCE_ROOT
from siamattn_ros.replay.recording import (BASE_STAMP_NS, COMPRESSED_FORMAT, FRAME_ID, IMAGE_TOPIC, INFO_TOPIC,
                                           RECORDINGS_DIR, TRUTH_TOPIC, box_corners)
from siamattn_ros.replay.typestore import typestore

ANNOTATIONS = SOURCE_ROOT / "data" / "annotations"
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
JPEG_QUALITY = 80
LICENCE = ("derived from Debian package opencv-doc (OpenCV sample data), Apache-2.0 AND BSD-3-Clause as declared "
           "in /usr/share/doc/opencv-doc/copyright")


@dataclass
class Source:
    frames: list[np.ndarray]      # BGR
    truth: np.ndarray             # (N, 4) x, y, w, h, NaN when not visible
    fps: float
    info: dict


def interpolate_keyframes(keyframes: np.ndarray, first: int, last: int) -> np.ndarray:
    """Linear interpolation of key-frame boxes (rows frame, x, y, w, h) to every frame first..last (inclusive).

    A key frame whose box is NaN marks the target absent (out of view / fully hidden): that frame, and every frame
    between it and its neighbouring key frames, get a NaN row."""
    k = np.asarray(keyframes, np.float64)
    if k[0, 0] > first or k[-1, 0] < last:
        raise ValueError(f"key frames {k[0, 0]:.0f}..{k[-1, 0]:.0f} do not cover frames {first}..{last}")
    frames = np.arange(first, last + 1)
    out = np.stack([np.interp(frames, k[:, 0], k[:, j]) for j in range(1, 5)], axis=1)
    absent = np.isnan(k[:, 1:]).any(axis=1)
    for i, f in enumerate(frames):
        j = int(np.searchsorted(k[:, 0], f, side="right")) - 1  # key frame at or before f
        exact = k[j, 0] == f
        if absent[j] or (not exact and j + 1 < len(k) and absent[j + 1]):
            out[i] = np.nan
    return out


def read_keyframes(path: Path) -> np.ndarray:
    """Rows frame, x, y, w, h; a line "frame,absent" gives a NaN box (target not in view)."""
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        vals = [v.strip() for v in line.split(",")]
        rows.append([float(vals[0])] + ([np.nan] * 4 if vals[1:] == ["absent"] else [float(v) for v in vals[1:]]))
    return np.array(rows)


def write_groundtruth(path: Path, boxes: np.ndarray) -> None:
    path.write_text("".join(",".join("%.1f" % v for v in row) + "\n" for row in boxes))


def regenerate_annotations() -> list[Path]:
    """data/annotations/<seq>/groundtruth.txt from keyframes.txt (frame range from meta_info.ini's 'frames:')."""
    out = []
    for d in sorted(ANNOTATIONS.iterdir()):
        kf = d / "keyframes.txt"
        if not kf.is_file():
            continue
        first, last = _frame_range(d)
        boxes = interpolate_keyframes(read_keyframes(kf), first, last)
        write_groundtruth(d / "groundtruth.txt", boxes)
        (d / "absence.label").write_text("".join(f"{int(v)}\n" for v in np.isnan(boxes).any(axis=1)))
        out.append(d / "groundtruth.txt")
    return out


def _frame_range(d: Path) -> tuple[int, int]:
    for line in (d / "meta_info.ini").read_text().splitlines():
        if line.startswith("frames:"):
            a, b = line.split(":", 1)[1].split("(")[0].strip().split("-")
            return int(a), int(b)
    raise ValueError(f"{d / 'meta_info.ini'} has no 'frames: first-last' line")


def _read_video(path: Path, first: int, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while len(frames) < count:
        ok, img = cap.read()
        if not ok:
            raise ValueError(f"{path} ended at frame {i}, wanted frames {first}..{first + count - 1}")
        if i >= first:
            frames.append(img)
        i += 1
    cap.release()
    return frames


def source_vtest_woman() -> Source:
    video = OPENCV_DATA / "vtest.avi"
    if not video.is_file():
        raise FileNotFoundError(f"{video} not found: install it with `apt-get install opencv-doc`")
    ann = ANNOTATIONS / "vtest_woman"
    first, last = _frame_range(ann)
    truth = np.loadtxt(ann / "groundtruth.txt", delimiter=",")
    scale = 0.5  # 768x576 -> 384x288 keeps the bag at a few MB; the person stays ~25x70 px
    frames = [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
              for f in _read_video(video, first, last - first + 1)]
    return Source(frames, truth * scale, 10.0, {
        "source": f"vtest.avi frames {first}-{last}, resized by {scale} (INTER_AREA)",
        "licence": LICENCE,
        "truth": "hand-annotated key frames every 5 frames + linear interpolation (data/annotations/vtest_woman); "
                 "edges within about +-2-3 px at this resolution; target visible in every frame",
        "target": "woman with blond hair and a long black coat; a man in a dark red/black jacket walks beside her "
                  "and crosses her (frames 0-45)"})


SYNTH_SEED = 1


def _synthetic_source(distractor: bool, target: str) -> Source:
    from siamattn_ros.data.sequence import SequenceSpec, make_sequence

    # Still background + held-out split: only opencv-doc images are used (the 'video' background pool and the
    # training split include GPL-2 visp-images-data material, which must not end up in this Apache-2.0 repository).
    spec = SequenceSpec(num_frames=150, width=400, height=300, background="still", split="heldout",
                        leave_reenter=True, distractor=distractor, occlusion=True)
    seq = make_sequence(spec, SYNTH_SEED)
    out = np.nonzero(~seq.visible)[0]
    return Source(seq.frames, seq.boxes_xywh, 10.0, {
        "source": f"siamattn_ros.data.sequence.make_sequence(SequenceSpec(**spec), seed={SYNTH_SEED}); "
                  f"texture {seq.meta['texture']}, background {seq.meta['background']}",
        "spec": spec.to_dict(),
        "licence": LICENCE,
        "truth": "exact: tight box of the visible target mask; no points while fewer than 20 target pixels are visible",
        "out_of_view_frames": [int(out.min()), int(out.max())] if out.size else [],
        "target": target})


def source_synth_butterfly() -> Source:
    return _synthetic_source(True, "a butterfly-texture cut-out; a similar cut-out circles it; an occluder crosses "
                                   "it; it leaves the frame and comes back")


def source_synth_reenter() -> Source:
    # The same sequence without the distractor: leaving and re-entering (and the occluder) on their own, so that
    # re-acquisition after the target returns is measured without a look-alike competing for it.
    return _synthetic_source(False, "a butterfly-texture cut-out; an occluder crosses it; it leaves the frame and "
                                    "comes back (no distractor)")


RECIPES: dict[str, Callable[[], Source]] = {
    "vtest_woman": source_vtest_woman,
    "synth_butterfly": source_synth_butterfly,
    "synth_reenter": source_synth_reenter,
}
DEMO_RECORDING = "vtest_woman"


def write_recording(name: str, src: Source, out_dir: Path = RECORDINGS_DIR) -> Path:
    """Write recordings/<name>/ (rosbag2) and recordings/<name>.groundtruth.txt; replaces existing ones."""
    ts = typestore()
    T = ts.types
    bag = out_dir / name
    if bag.exists():
        shutil.rmtree(bag)
    out_dir.mkdir(parents=True, exist_ok=True)
    period_ns = int(round(1e9 / src.fps))
    h, w = src.frames[0].shape[:2]
    info = dict(src.info, name=name, frames=len(src.frames), width=w, height=h, fps=src.fps,
                image_topic=IMAGE_TOPIC, truth_topic=TRUTH_TOPIC,
                regenerate=f"python -m siamattn_ros.tools.make_recordings {name}")
    with BagWriter(bag) as writer:
        for topic, msgtype in ((INFO_TOPIC, "std_msgs/msg/String"),
                               (IMAGE_TOPIC, "sensor_msgs/msg/CompressedImage"),
                               (TRUTH_TOPIC, "geometry_msgs/msg/PolygonStamped")):
            writer.add_topic(topic, msgtype)
        writer.write_obj(INFO_TOPIC, "std_msgs/msg/String", BASE_STAMP_NS - 1,
                         T["std_msgs/msg/String"](data=json.dumps(info, sort_keys=True)))
        for i, (frame, box) in enumerate(zip(src.frames, src.truth)):
            t = BASE_STAMP_NS + i * period_ns
            header = T["std_msgs/msg/Header"](
                stamp=T["builtin_interfaces/msg/Time"](*ns_to_sec_nanosec(t)),
                frame_id=FRAME_ID)
            ok, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for frame {i} of {name}")
            writer.write_obj(IMAGE_TOPIC, "sensor_msgs/msg/CompressedImage", t, T["sensor_msgs/msg/CompressedImage"](
                header=header, format=COMPRESSED_FORMAT, data=np.asarray(jpg, np.uint8).reshape(-1)))
            points = [T["geometry_msgs/msg/Point32"](x=float(x), y=float(y), z=0.0) for x, y in box_corners(box)]
            writer.write_obj(TRUTH_TOPIC, "geometry_msgs/msg/PolygonStamped", t, T["geometry_msgs/msg/PolygonStamped"](
                header=header, polygon=T["geometry_msgs/msg/Polygon"](points=points)))
    write_groundtruth(out_dir / f"{name}.groundtruth.txt", np.asarray(src.truth, np.float64))
    return bag


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"recordings to make (default: all of {sorted(RECIPES)})")
    ap.add_argument("--out", type=Path, default=RECORDINGS_DIR, help="output folder (default: recordings/)")
    ap.add_argument("--annotations-only", action="store_true",
                    help="only regenerate data/annotations/*/groundtruth.txt from their keyframes.txt")
    args = ap.parse_args(argv)
    if args.annotations_only:
        for p in regenerate_annotations():
            print(f"wrote {p}")
        return 0
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        print(f"unknown recording(s) {unknown}; known: {sorted(RECIPES)}", file=sys.stderr)
        return 2
    for name in args.names or sorted(RECIPES):
        src = RECIPES[name]()
        bag = write_recording(name, src, args.out)
        size = sum(f.stat().st_size for f in bag.iterdir())
        vis = np.isfinite(src.truth).all(axis=1)
        print(f"wrote {bag}: {len(src.frames)} frames {src.frames[0].shape[1]}x{src.frames[0].shape[0]}, "
              f"{size / 1e6:.2f} MB, target visible in {int(vis.sum())} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
