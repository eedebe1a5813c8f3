"""Objects with exact masks: real-image texture patches cut with random smooth shapes, and compositing.

An object is a BGR patch plus a binary mask of the same size. It is pasted into a frame with a similarity transform
(scale, rotation, translation) using nearest-neighbour for the mask, so the truth mask is exactly the set of pixels
that came from the object.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class CutOut:
    """A texture patch and its binary mask (uint8 0/1), both (h, w)."""

    image: np.ndarray
    mask: np.ndarray


def random_shape_mask(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random smooth, star-shaped blob filling most of a width x height box (uint8 0/1).

    The radius is a low-order Fourier series in the angle, so the outline is smooth and the shape varies from
    ellipse-like to lobed; kinds: blob (most), rectangle-ish with rounded corners, ellipse.
    """
    if width < 4 or height < 4:
        raise ValueError(f"shape box too small: {width}x{height}")
    kind = rng.choice(["blob", "blob", "blob", "rect", "ellipse"])
    mask = np.zeros((height, width), np.uint8)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    if kind == "rect":
        r = int(min(width, height) * rng.uniform(0.05, 0.3))
        x0, y0, x1, y1 = 0, 0, width - 1, height - 1
        cv2.rectangle(mask, (x0 + r, y0), (x1 - r, y1), 1, -1)
        cv2.rectangle(mask, (x0, y0 + r), (x1, y1 - r), 1, -1)
        for px, py in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
            cv2.circle(mask, (px, py), r, 1, -1)
        return mask
    if kind == "ellipse":
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))), (max(1, width // 2 - 1), max(1, height // 2 - 1)),
                    0, 0, 360, 1, -1)
        return mask
    t = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    r = np.ones_like(t)
    for k in range(2, 6):
        r += rng.uniform(0, 0.35 / k) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r /= r.max()
    pts = np.stack([cx + r * np.cos(t) * (width / 2.0 - 0.5), cy + r * np.sin(t) * (height / 2.0 - 0.5)], 1)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask


def cut_out(rng: np.random.Generator, image: np.ndarray, width: int, height: int) -> CutOut:
    """Cut a width x height texture patch at a random place of `image` (resized up if the image is smaller)."""
    ih, iw = image.shape[:2]
    scale = max(width / iw, height / ih, 1.0)
    if scale > 1.0:
        image = cv2.resize(image, (int(np.ceil(iw * scale)), int(np.ceil(ih * scale))), interpolation=cv2.INTER_LINEAR)
        ih, iw = image.shape[:2]
    x = int(rng.integers(0, iw - width + 1))
    y = int(rng.integers(0, ih - height + 1))
    patch = np.ascontiguousarray(image[y:y + height, x:x + width])
    return CutOut(patch, random_shape_mask(rng, width, height))


def similar_cut_out(rng: np.random.Generator, obj: CutOut) -> CutOut:
    """A distractor that looks like `obj`: same texture with a colour shift and a new, similar-size outline."""
    h, w = obj.mask.shape
    img = obj.image.astype(np.float32) * rng.uniform(0.8, 1.2, size=3) + rng.uniform(-20, 20, size=3)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return CutOut(np.ascontiguousarray(img), random_shape_mask(rng, w, h))


def paste(frame: np.ndarray, obj: CutOut, cx: float, cy: float, scale: float, angle_deg: float,
          gain: float = 1.0) -> np.ndarray:
    """Paste `obj` into `frame` in place, centred at (cx, cy), scaled and rotated; returns its full-frame 0/1 mask."""
    h, w = obj.mask.shape
    fh, fw = frame.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle_deg, scale)
    m[0, 2] += cx - (w - 1) / 2.0
    m[1, 2] += cy - (h - 1) / 2.0
    warped_mask = cv2.warpAffine(obj.mask, m, (fw, fh), flags=cv2.INTER_NEAREST, borderValue=0)
    if not warped_mask.any():
        return warped_mask
    warped = cv2.warpAffine(obj.image, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if gain != 1.0:
        warped = np.clip(warped.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    sel = warped_mask.astype(bool)
    frame[sel] = warped[sel]
    return warped_mask


def mask_box_xywh(mask: np.ndarray) -> np.ndarray:
    """Tight box (x, y, w, h) of the non-zero pixels, w/h counting pixels; NaNs when the mask is empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return np.full(4, np.nan)
    xs = np.flatnonzero(mask.any(axis=0))
    return np.array([xs[0], ys[0], xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1], dtype=np.float64)
