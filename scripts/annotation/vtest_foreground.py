"""Foreground-blob truth for one pedestrian of opencv-doc's vtest.avi (static camera), as used for
data/annotations/vtest_small (and the proposals of vtest_woman's key frames).

Background: per-pixel median of every 3rd frame of the whole video. Foreground: |frame - background| > 25 on any BGR
channel, 3x3 opening, 7x7 closing, connected components of >= 40 px. The target's box in each frame is the component
whose centre is nearest (< 15 px) to the previous frame's box centre, starting from a seed box; frames from
--absent-from on are written as absent (NaN row, absence.label 1).

    python scripts/annotation/vtest_foreground.py data/annotations/vtest_small --first 80 --last 199 \
        --seed 272,53,15,32 --absent-from 174
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

VIDEO = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"


def foreground_boxes(frames: np.ndarray, background: np.ndarray) -> list[list[np.ndarray]]:
    out = []
    for f in frames:
        d = (np.abs(f.astype(np.int16) - background.astype(np.int16)).max(2) > 25).astype(np.uint8)
        d = cv2.morphologyEx(d, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        d = cv2.morphologyEx(d, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
        n, _, st, _ = cv2.connectedComponentsWithStats(d, 8)
        out.append([st[k][:4].astype(np.float64) for k in range(1, n) if st[k][4] >= 40])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--last", type=int, required=True)
    ap.add_argument("--seed", required=True, help="x,y,w,h of the target near frame --first")
    ap.add_argument("--absent-from", type=int, help="first frame where the target is out of view")
    a = ap.parse_args()
    cap = cv2.VideoCapture(VIDEO)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    frames = np.array(frames)
    background = np.median(frames[::3], axis=0).astype(np.uint8)
    last_visible = (a.absent_from if a.absent_from is not None else a.last + 1) - 1
    blobs = foreground_boxes(frames[a.first:last_visible + 1], background)
    prev = np.array([float(v) for v in a.seed.split(",")])
    rows = []
    for i, cand in enumerate(blobs):
        c = prev[:2] + prev[2:] / 2
        d = [np.linalg.norm(b[:2] + b[2:] / 2 - c) for b in cand]
        if not d or min(d) >= 15:
            raise SystemExit(f"no foreground blob near {prev} in frame {a.first + i}")
        prev = cand[int(np.argmin(d))]
        rows.append(prev)
    n_absent = a.last - last_visible
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "groundtruth.txt").write_text("".join(",".join(f"{v:.1f}" for v in b) + "\n" for b in rows)
                                           + "nan,nan,nan,nan\n" * n_absent)
    (a.out / "absence.label").write_text("0\n" * len(rows) + "1\n" * n_absent)
    print(f"{len(rows)} visible + {n_absent} absent frames written to {a.out}")


if __name__ == "__main__":
    main()
