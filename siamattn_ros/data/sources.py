"""Real imagery available offline from Debian packages, split into a training pool and a held-out pool.

`opencv-doc` provides ~100 still images and three videos; `visp-images-data` provides real image sequences.
The split is by file, so held-out sequences never share source pixels with training pairs:
- every video (vtest.avi, Megamind.avi, tree.avi, ViSP sequences) is held out, because the real-footage ground truth
  (data/annotations/) is made from the opencv-doc videos;
- still images are split by a stable hash of their file name (1 in 4 held out).
"""
from __future__ import annotations

import functools
import os
import zlib
from pathlib import Path

import cv2
import numpy as np

OPENCV_DATA = Path(os.environ.get("SIAMATTN_OPENCV_DATA", "/usr/share/doc/opencv-doc/examples/data"))
VISP_DATA = Path(os.environ.get("SIAMATTN_VISP_DATA", "/usr/share/visp-images-data/ViSP-images"))

OPENCV_VIDEOS = ("vtest.avi", "Megamind.avi", "tree.avi")
# ViSP folders that hold real camera image sequences (numbered frames).
VISP_SEQUENCES = ("cube", "mire-2", "mbt/cube", "ellipse-1", "line")
# Still images that are unusable as texture or background (tiny, synthetic drawings, calibration patterns, text).
_STILL_EXCLUDE = {
    "LinuxLogo.jpg", "WindowsLogo.jpg", "opencv-logo.png", "opencv-logo-white.png", "chessboard.png", "digits.png",
    "gradient.png", "ellipses.jpg", "detect_blob.png", "imageTextN.png", "imageTextR.png", "notes.png", "templ.png",
    "tmpl.png", "box.png", "pic1.png", "pic2.png", "pic3.png", "pic4.png", "pic5.png", "pic6.png", "mask.png",
    "alphabet_36.txt", "ml.png", "sudoku.png", "cards.png", "aloeGT.png",
}
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp"}
SPLITS = ("train", "heldout")


class SourceUnavailable(RuntimeError):
    """Raised when the Debian data packages are not installed."""


def available() -> bool:
    """True when opencv-doc's example data is installed (visp-images-data is optional)."""
    return OPENCV_DATA.is_dir() and any(OPENCV_DATA.glob("*.jpg"))


def require() -> None:
    if not available():
        raise SourceUnavailable(
            f"real imagery not found at {OPENCV_DATA}; install it with `apt-get install -y opencv-doc visp-images-data` "
            "(or set SIAMATTN_OPENCV_DATA)")


def _is_heldout(name: str) -> bool:
    return zlib.crc32(name.encode()) % 4 == 0


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


ANNOTATIONS = Path(__file__).resolve().parents[2] / "data" / "annotations"


@functools.lru_cache(maxsize=1)
def evaluation_footage() -> tuple[Path, ...]:
    """Footage of the real evaluation set: every `source:` named by a data/annotations/*/meta_info.ini. Training
    never reads these files (nor anything under a named folder)."""
    from siamattn_ros.data.seqio import footage_source, resolve_footage

    out = []
    for ini in sorted(ANNOTATIONS.glob("*/meta_info.ini")):
        named = footage_source(ini.parent)
        if named is not None:
            try:
                out.append(resolve_footage(named[0]))
            except FileNotFoundError:   # footage package not installed: nothing of it can be read either
                pass
    return tuple(out)


def is_evaluation_footage(path: Path | str) -> bool:
    p = Path(path)
    return any(p == f or f in p.parents for f in evaluation_footage())


@functools.lru_cache(maxsize=4)
def still_paths(split: str) -> tuple[Path, ...]:
    """Still images of a split (opencv-doc, plus a few ViSP stills in the training pool), sorted."""
    _check_split(split)
    require()
    out = []
    for p in sorted(OPENCV_DATA.iterdir()):
        if p.suffix.lower() not in _IMAGE_EXT or p.name in _STILL_EXCLUDE:
            continue
        if _is_heldout(p.name) == (split == "heldout"):
            out.append(p)
    extra = {"train": ["Klimt/Klimt.ppm", "Solvay/Solvay_conference_1927_Version2_640x440.jpg"],
             "heldout": []}[split]
    out += [VISP_DATA / e for e in extra if (VISP_DATA / e).is_file()]
    return tuple(p for p in out if not is_evaluation_footage(p))


@functools.lru_cache(maxsize=64)
def _load(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return img


def load_image(path: Path | str) -> np.ndarray:
    """BGR uint8 image (cached; callers must not modify it in place)."""
    return _load(str(path))


def video_paths() -> tuple[Path, ...]:
    """Held-out real videos (opencv-doc files, then ViSP sequence folders)."""
    require()
    vids = [OPENCV_DATA / v for v in OPENCV_VIDEOS if (OPENCV_DATA / v).is_file()]
    vids += [VISP_DATA / s for s in VISP_SEQUENCES if (VISP_DATA / s).is_dir()]
    return tuple(vids)


def _frame_files(p: Path) -> list[Path]:
    return sorted(q for q in p.iterdir() if q.suffix.lower() in _IMAGE_EXT)


@functools.lru_cache(maxsize=16)
def video_length(path: Path | str) -> int:
    """Number of frames (counted by decoding once: AVI headers are not always right)."""
    p = Path(path)
    if p.is_dir():
        return len(_frame_files(p))
    cap = cv2.VideoCapture(str(p))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    if n == 0:
        raise FileNotFoundError(f"no frames could be read from {path}")
    return n


def video_frames(path: Path | str, start: int, count: int) -> list[np.ndarray]:
    """`count` consecutive frames from `start`; plays back and forth (ping-pong) when the video is shorter.

    Only the needed frames are kept in memory (a whole decoded video can be ~1 GB).
    """
    p = Path(path)
    n = video_length(p)
    period = max(2 * n - 2, 1)
    wanted = []
    for i in range(start, start + count):
        k = i % period
        wanted.append(k if k < n else period - k)
    need = set(wanted)
    got: dict[int, np.ndarray] = {}
    if p.is_dir():
        files = _frame_files(p)
        for k in need:
            img = cv2.imread(str(files[k]), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read frame {files[k]}")
            got[k] = img
    else:
        cap = cv2.VideoCapture(str(p))
        lo, hi = min(need), max(need)
        k = 0
        while k <= hi:
            if k < lo:
                ok = cap.grab()
            else:
                ok, frame = cap.read()
                if ok and k in need:
                    got[k] = frame
            if not ok:
                break
            k += 1
        cap.release()
    missing = need - set(got)
    if missing:
        raise FileNotFoundError(f"could not decode frames {sorted(missing)[:5]} of {path}")
    return [got[k] for k in wanted]
