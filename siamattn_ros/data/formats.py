"""Loaders for the dataset formats users bring, producing records for the pair sources in `pairs.py`.

- GOT-10k / LaSOT: folders with groundtruth.txt ("x,y,w,h" per line) and frames (GOT-10k: in the folder,
  LaSOT: in img/). -> TrackRecord per sequence.
- COCO-style JSON: images + annotations with bbox [x, y, w, h] and polygon segmentation. -> InstanceRecord.
- YouTube-VOS / DAVIS style: JPEGImages/<video>/<frame>.jpg and Annotations/<video>/<frame>.png palette masks
  (pixel value = object id). -> TrackRecord per (video, object) with masks; boxes from the masks.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from siamattn_ros.data.pairs import InstanceRecord, TrackRecord, read_track_mask
from siamattn_ros.data.seqio import frame_paths, list_sequences, read_groundtruth
from siamattn_ros.data.shapes import mask_box_xywh


def load_got10k(root: Path | str) -> list[TrackRecord]:
    """Every sequence folder (holding groundtruth.txt) under root; works for GOT-10k and LaSOT layouts."""
    out = []
    for folder in list_sequences(root):
        boxes = read_groundtruth(folder / "groundtruth.txt")
        frames = frame_paths(folder)
        if len(frames) < len(boxes):
            raise ValueError(f"{folder}: {len(boxes)} boxes but {len(frames)} frames")
        boxes = boxes.copy()
        boxes[(np.nan_to_num(boxes[:, 2:]) <= 0).any(axis=1)] = np.nan
        for flag in ("absence.label", "full_occlusion.txt", "out_of_view.txt"):
            p = folder / flag
            if p.is_file():
                f = np.array([int(float(v)) for v in p.read_text().replace(",", "\n").split()], dtype=bool)
                if f.size == len(boxes):
                    boxes[f] = np.nan
        masks = None
        if (folder / "masks").is_dir():
            mp = sorted((folder / "masks").glob("*.png"))
            if len(mp) >= len(boxes):
                masks = [str(p) for p in mp[:len(boxes)]]
        out.append(TrackRecord([str(p) for p in frames[:len(boxes)]], boxes, masks, object_id=0, name=folder.name))
    if not out:
        raise FileNotFoundError(f"no sequence folder with groundtruth.txt under {root}")
    return out


def load_coco(annotation_json: Path | str, image_root: Path | str, min_area: float = 64.0) -> list[InstanceRecord]:
    """Instances (non-crowd, with polygon segmentation or at least a bbox) of a COCO-style JSON file."""
    data = json.loads(Path(annotation_json).read_text())
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(f"{annotation_json}: not a COCO instances file, missing {key!r}")
    files = {im["id"]: Path(image_root) / im["file_name"] for im in data["images"]}
    out = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or ann.get("area", 1e9) < min_area:
            continue
        if ann["image_id"] not in files:
            raise ValueError(f"annotation {ann.get('id')} refers to unknown image_id {ann['image_id']}")
        polys = []
        seg = ann.get("segmentation")
        if isinstance(seg, list):  # polygons: [[x1, y1, x2, y2, ...], ...]; RLE dicts are not decoded here
            polys = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in seg if len(p) >= 6]
        out.append(InstanceRecord(str(files[ann["image_id"]]), np.asarray(ann["bbox"], dtype=np.float64), polys))
    return out


def load_youtube_vos(root: Path | str) -> list[TrackRecord]:
    """One track per (video, object id) with palette masks; frames without an annotation PNG get NaN boxes."""
    root = Path(root)
    img_root, ann_root = root / "JPEGImages", root / "Annotations"
    if not img_root.is_dir() or not ann_root.is_dir():
        raise FileNotFoundError(f"{root}: expected JPEGImages/ and Annotations/ folders")
    out = []
    for vdir in sorted(p for p in ann_root.iterdir() if p.is_dir()):
        frames = sorted((img_root / vdir.name).glob("*.jpg"))
        if not frames:
            continue
        ann = {p.stem: p for p in vdir.glob("*.png")}
        ids: set[int] = set()
        per_frame: list = []
        for f in frames:
            p = ann.get(f.stem)
            per_frame.append(p)
            if p is not None:
                ids |= set(int(v) for v in np.unique(_indices(p)))
        ids.discard(0)
        for oid in sorted(ids):
            boxes = np.full((len(frames), 4), np.nan)
            for i, p in enumerate(per_frame):
                if p is not None:
                    boxes[i] = mask_box_xywh(read_track_mask(str(p), oid))
            out.append(TrackRecord([str(f) for f in frames], boxes,
                                   [str(p) if p is not None else None for p in per_frame], oid, f"{vdir.name}/{oid}"))
    if not out:
        raise FileNotFoundError(f"no annotated video under {ann_root}")
    return out


def _indices(path: Path) -> np.ndarray:
    from PIL import Image

    arr = np.asarray(Image.open(path))
    return arr[..., 0] if arr.ndim == 3 else arr
