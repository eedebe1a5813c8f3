"""Mask paste-back into the frame, the rotated-rectangle polygon (spec §10.3 steps 13-15) and the mask's box.

The M×M mask probabilities are warped into the image with the authors' affine map (x = a·u + c_x, y = b·v + c_y,
bilinear, zero outside the mask). Only the image region the warped mask can touch is computed (everything else is 0
by construction), on the device when the mask lives there; only that small binary region is copied to the host.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from siamattn_ros.interface.metrics import box_iou

# Polygon from the mask only when its largest component is bigger than this (px²), else the box (spec step 15).
MIN_POLYGON_AREA = 100.0
# TrackerConfig.box_from_mask reports the mask's box only if it overlaps the state box at least this much.
MASK_BOX_MIN_IOU = 0.5


@dataclass(frozen=True)
class PasteMap:
    """Affine mask→image map and the image region [x0, x1) × [y0, y1) it can reach (empty if x1 <= x0)."""

    a: float
    b: float
    cx: float
    cy: float
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0


def paste_map(sub_rect: Tuple[float, float, float, float], mask_size: int, width: int, height: int) -> PasteMap:
    """The authors' warp of an M×M mask onto sub_rect = (x, y, w, h) in a width×height image.

    With s_w = M / w, s_h = M / h: a = (W-1)/(W·s_w), b = (H-1)/(H·s_h), c_x = a·x·s_w, c_y = b·y·s_h.
    (≈ u/s_w + x, with a (W-1)/W scale quirk inherited from SiamMask, kept for fidelity.)
    """
    sx, sy, sw, sh = (float(v) for v in sub_rect)
    if not (sw > 0 and sh > 0 and all(math.isfinite(v) for v in (sx, sy, sw, sh))):
        raise ValueError(f"mask paste rectangle must have finite positive size, got {sub_rect!r}")
    s_w, s_h = mask_size / sw, mask_size / sh
    a = (width - 1) / (width * s_w)
    b = (height - 1) / (height * s_h)
    cx, cy = a * sx * s_w, b * sy * s_h
    # Bilinear sampling with a zero border is non-zero for mask coordinates u in (-1, M), i.e. one MASK pixel (a
    # image pixels, target size / M) beyond the first and last samples, not one image pixel. One more pixel each side
    # absorbs OpenCV's fixed-point (1/32 px) coordinate rounding.
    x0 = max(0, int(math.floor(cx - a)) - 1)
    y0 = max(0, int(math.floor(cy - b)) - 1)
    x1 = min(width, int(math.ceil(cx + a * mask_size)) + 2)
    y1 = min(height, int(math.ceil(cy + b * mask_size)) + 2)
    return PasteMap(a, b, cx, cy, x0, y0, x1, y1)


def paste_cv(prob: np.ndarray, pm: PasteMap, threshold: float) -> np.ndarray:
    """Binary uint8 (0/255) mask of the region pm.(x0..x1, y0..y1) from M×M float32 probabilities (OpenCV)."""
    if pm.empty:
        return np.zeros((0, 0), np.uint8)
    mat = np.array([[pm.a, 0.0, pm.cx - pm.x0], [0.0, pm.b, pm.cy - pm.y0]], np.float64)
    warped = cv2.warpAffine(np.ascontiguousarray(prob, np.float32), mat, (pm.x1 - pm.x0, pm.y1 - pm.y0),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return ((warped > threshold) * 255).astype(np.uint8)


def paste_torch(prob: torch.Tensor, pm: PasteMap, threshold: float) -> torch.Tensor:
    """Device version of paste_cv: prob is an M×M tensor; returns a uint8 (0/255) region tensor on its device."""
    if pm.empty:
        return torch.zeros((0, 0), dtype=torch.uint8, device=prob.device)
    m = prob.shape[-1]
    xs = (torch.arange(pm.x0, pm.x1, device=prob.device, dtype=torch.float32) - pm.cx) / pm.a
    ys = (torch.arange(pm.y0, pm.y1, device=prob.device, dtype=torch.float32) - pm.cy) / pm.b
    # align_corners=True: normalised -1 / +1 are the centres of mask pixels 0 / M-1; zeros outside, like
    # OpenCV's constant border.
    gx = (xs * (2.0 / (m - 1)) - 1.0).view(1, -1).expand(ys.numel(), -1)
    gy = (ys * (2.0 / (m - 1)) - 1.0).view(-1, 1).expand(-1, xs.numel())
    grid = torch.stack((gx, gy), dim=-1).unsqueeze(0)
    warped = F.grid_sample(prob.float().view(1, 1, m, m), grid, mode="bilinear", padding_mode="zeros",
                           align_corners=True)[0, 0]
    return (warped > threshold).to(torch.uint8) * 255


def full_frame(region: np.ndarray, pm: PasteMap, width: int, height: int) -> np.ndarray:
    """Place a region mask into a zero width×height uint8 frame."""
    out = np.zeros((height, width), np.uint8)
    if region.size:
        out[pm.y0:pm.y1, pm.x0:pm.x1] = region
    return out


def box_polygon(box_xywh: np.ndarray) -> np.ndarray:
    """(4, 2) float32 corners of an axis-aligned box, clockwise in image coordinates from the top-left."""
    x, y, w, h = (float(v) for v in box_xywh)
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


def mask_shape(region: np.ndarray, offset: Tuple[int, int],
               fallback_box: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The largest external contour of a binary mask region (placed at `offset` in the image): the corners of its
    minimum-area rotated rectangle and its axis-aligned bounding box (x, y, w, h, image pixels). When that contour is
    not larger than MIN_POLYGON_AREA: the fallback box's corners and None."""
    if region.size:
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=offset)
        if contours:
            areas = [cv2.contourArea(c) for c in contours]
            best = contours[int(np.argmax(areas))]
            if max(areas) > MIN_POLYGON_AREA:
                x, y, w, h = cv2.boundingRect(best)
                return (cv2.boxPoints(cv2.minAreaRect(best)).astype(np.float32),
                        np.array([x, y, w, h], np.float64))
    return box_polygon(fallback_box), None


def choose_box(state_box: np.ndarray, mask_box: Optional[np.ndarray]) -> np.ndarray:
    """TrackerConfig.box_from_mask: the mask's box where there is one overlapping the state box with IoU >=
    MASK_BOX_MIN_IOU, else the state box (both x, y, w, h)."""
    if mask_box is None or box_iou(np.asarray(state_box, np.float64)[None], mask_box[None])[0] < MASK_BOX_MIN_IOU:
        return state_box
    return mask_box


def sub_rect(mask_roi_crop: Tuple[float, float, float, float], crop_origin: Tuple[float, float],
             crop_side: float, instance_size: int) -> Tuple[float, float, float, float]:
    """Mask RoI (crop pixels x1, y1, x2, y2) → rectangle (x, y, w, h) in image pixels, with k = s_x / m
    (the rounded search side, as the authors do, step 13)."""
    k = crop_side / float(instance_size)
    x1, y1, x2, y2 = mask_roi_crop
    return crop_origin[0] + x1 * k, crop_origin[1] + y1 * k, (x2 - x1) * k, (y2 - y1) * k


__all__ = ["PasteMap", "paste_map", "paste_cv", "paste_torch", "full_frame", "box_polygon", "mask_shape",
           "choose_box", "sub_rect", "MIN_POLYGON_AREA", "MASK_BOX_MIN_IOU"]
