"""Synthetic images with exact ground truth (NumPy + OpenCV; no torch, no ROS)."""
from __future__ import annotations

import cv2
import numpy as np


def synthetic_frame(index: int, width: int = 160, height: int = 120, target: int = 32, step: float = 2.0,
                    seed: int = 5) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A deterministic frame: a textured square moving right/down over a fixed textured background.

    Returns (BGR image, the square's box x, y, w, h).
    """
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 120, size=(height, width, 3), dtype=np.uint8)
    patch = rng.integers(150, 256, size=(target, target, 3), dtype=np.uint8)
    x = int(round(10 + step * index)) % max(1, width - target)
    y = int(round(10 + 0.5 * step * index)) % max(1, height - target)
    image = background.copy()
    image[y:y + target, x:x + target] = patch
    return image, (float(x), float(y), float(target), float(target))


def synthetic_sequence(seed: int = 3, width: int = 320, height: int = 240
                       ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """A textured square moving right while growing, leaving the frame on the right, then coming back (61 frames).

    Returns frames, exact boxes (x, y, w, h; the object's full extent, also when partly outside) and the visible
    fraction of the object per frame.
    """
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height // 4, width // 4, 3)).astype(np.float32)
    bg = cv2.resize(cv2.GaussianBlur(noise, (0, 0), 2.0), (width, height), interpolation=cv2.INTER_CUBIC)
    bg = np.clip(110 + 25 * bg / bg.std(), 0, 255).astype(np.uint8)
    texture = rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)
    # Key frames (frame, centre x, centre y, side): in, growing; out on the right; back in.
    keys = np.array([[0, 70, 130, 40], [20, 190, 110, 50], [36, 350, 110, 50], [46, 350, 110, 50],
                     [60, 260, 120, 50]], np.float64)
    frames, boxes, visible = [], [], []
    for f in range(int(keys[-1, 0]) + 1):
        cx, cy, side = (np.interp(f, keys[:, 0], keys[:, k]) for k in (1, 2, 3))
        side_i = int(round(side))
        obj = cv2.resize(texture, (side_i, side_i), interpolation=cv2.INTER_NEAREST)
        x0, y0 = int(round(cx - side_i / 2)), int(round(cy - side_i / 2))
        img = bg.copy()
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + side_i, width), min(y0 + side_i, height)
        if ix1 > ix0 and iy1 > iy0:
            img[iy0:iy1, ix0:ix1] = obj[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        frames.append(img)
        boxes.append(np.array([x0, y0, side_i, side_i], np.float64))
        visible.append(max(0, ix1 - ix0) * max(0, iy1 - iy0) / side_i ** 2)
    return frames, boxes, np.array(visible)
