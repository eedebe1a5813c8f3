"""Square sub-window extraction around a centre, padded with the first frame's mean colour (spec §10.1).

Two implementations with the same result: OpenCV on NumPy images (CPU) and PyTorch on a device-resident frame
(GPU: the frame is uploaded once, cropped/padded/resized there). Both build only the s×s window (mean-coloured
canvas + the part of the image that overlaps it), never a padded copy of the whole frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Window:
    """An s×s window [x0, x0+s-1] × [y0, y0+s-1] in image pixels (may extend past the image)."""

    x0: int
    y0: int
    size: int

    @property
    def x1(self) -> int:  # inclusive
        return self.x0 + self.size - 1

    @property
    def y1(self) -> int:
        return self.y0 + self.size - 1

    def padding(self, width: int, height: int) -> Tuple[int, int, int, int]:
        """(left, top, right, bottom) pixels of the window lying outside a width×height image (each >= 0)."""
        return (max(0, -self.x0), max(0, -self.y0), max(0, self.x1 - width + 1), max(0, self.y1 - height + 1))


def context_side(w: float, h: float, context_amount: float) -> float:
    """Side of the exemplar window around a w×h box: sqrt(w_z·h_z), w_z = w + ctx·(w+h), h_z = h + ctx·(w+h)
    (spec §10.2 step 2); the exemplar crop maps it to exemplar_size pixels."""
    ctx = context_amount * (w + h)
    return math.sqrt((w + ctx) * (h + ctx))


def window_at(center: Sequence[float], size: int) -> Window:
    """Window of side `size` around `center` (spec §10.1 step 1: c = (s+1)/2, xmin = floor(p - c + 0.5))."""
    if size < 1:
        raise ValueError(f"sub-window size must be >= 1 pixel, got {size!r}")
    c = (size + 1) / 2.0
    return Window(int(math.floor(center[0] - c + 0.5)), int(math.floor(center[1] - c + 0.5)), int(size))


def _overlap(win: Window, width: int, height: int) -> Tuple[int, int, int, int]:
    """Image region (ix0, iy0, ix1, iy1), exclusive ends, covered by the window; empty if ix1 <= ix0 or iy1 <= iy0."""
    return max(win.x0, 0), max(win.y0, 0), min(win.x1 + 1, width), min(win.y1 + 1, height)


def crop_cv(image: np.ndarray, center: Sequence[float], size: int, out_size: int,
            pad_color: np.ndarray) -> np.ndarray:
    """s×s window around `center` resized to out_size×out_size (HWC uint8, BGR). OpenCV path.

    pad_color: per-channel uint8 colour of the parts of the window outside the image.
    """
    h, w = image.shape[:2]
    win = window_at(center, size)
    ix0, iy0, ix1, iy1 = _overlap(win, w, h)
    if win.x0 >= 0 and win.y0 >= 0 and win.x1 < w and win.y1 < h:
        patch = image[win.y0:win.y1 + 1, win.x0:win.x1 + 1]  # a view: no copy until resize
    else:
        patch = np.empty((size, size, 3), np.uint8)
        patch[:] = pad_color
        if ix1 > ix0 and iy1 > iy0:
            patch[iy0 - win.y0:iy1 - win.y0, ix0 - win.x0:ix1 - win.x0] = image[iy0:iy1, ix0:ix1]
    if size != out_size:
        patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(patch)


def to_tensor(patch: np.ndarray, device: torch.device) -> torch.Tensor:
    """HWC uint8 → 1×3×m×m float32 0..255 on `device` (one host→device copy of uint8 data)."""
    t = torch.from_numpy(patch).to(device, non_blocking=True)
    return t.permute(2, 0, 1).unsqueeze(0).float()


def crop_torch(frame: torch.Tensor, center: Sequence[float], size: int, out_size: int,
               pad_color: torch.Tensor) -> torch.Tensor:
    """Device version of crop_cv: frame is an H×W×3 uint8 tensor; returns 1×3×m×m float32 0..255.

    The resize is bilinear with half-pixel centres and no anti-aliasing, as OpenCV's INTER_LINEAR (OpenCV rounds
    its interpolation weights to fixed point for uint8 input, so values may differ by about one grey level).
    """
    h, w = int(frame.shape[0]), int(frame.shape[1])
    win = window_at(center, size)
    ix0, iy0, ix1, iy1 = _overlap(win, w, h)
    patch = pad_color.to(frame.dtype).view(1, 1, 3).expand(size, size, 3).clone()
    if ix1 > ix0 and iy1 > iy0:
        patch[iy0 - win.y0:iy1 - win.y0, ix0 - win.x0:ix1 - win.x0] = frame[iy0:iy1, ix0:ix1]
    x = patch.permute(2, 0, 1).unsqueeze(0).float()
    if size != out_size:
        x = F.interpolate(x, size=(out_size, out_size), mode="bilinear", align_corners=False)
        # OpenCV writes uint8 results: round and saturate so both paths feed the network the same kind of values.
        x = x.round_().clamp_(0, 255)
    return x
