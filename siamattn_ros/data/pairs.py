"""Training pairs: (template frame + box, search frame + box [+ mask]) from any source, cropped and augmented.

All sources implement one interface, `PairSource.sample(rng) -> FramePair` (two full frames with boxes, optional
exact search mask). `crop_pair` turns a FramePair into the network's 127 / 255 crops exactly as the tracker cuts
them (context 0.5, same scale in both crops), plus PySOT-style shift / scale / colour / blur / flip augmentation.

Coordinates are continuous: pixel i covers [i, i + 1); a box (x, y, w, h) spans [x, x + w). The crop of side s
centred at c maps image point X to crop point (X - (c - s/2)) * out / s, which is how the tracker maps back.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence as Seq

import cv2
import numpy as np

from siamattn_ros.data import sources
from siamattn_ros.data.shapes import CutOut, cut_out, mask_box_xywh, paste, similar_cut_out


@dataclass
class FramePair:
    template_image: np.ndarray
    template_box: np.ndarray        # xywh
    search_image: np.ndarray
    search_box: np.ndarray          # xywh
    search_mask: Optional[np.ndarray] = None   # uint8 0/1 or 0/255, full search frame


class PairSource(Protocol):
    def sample(self, rng: np.random.Generator) -> FramePair: ...


def _imread(path: str | Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return img


# ----------------------------------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------------------------------
class _StillScenes:
    """A source whose frames are views of the still images of one split (sources.still_paths)."""

    paths: tuple

    def _use_stills(self, split: str, keep: Optional[Callable[[Path], bool]] = None) -> None:
        sources.require()
        self.paths = tuple(p for p in sources.still_paths(split) if keep is None or keep(p))
        if len(self.paths) < 3:
            raise sources.SourceUnavailable(f"too few still images for split {split!r}: {len(self.paths)}")

    def _pick(self, rng: np.random.Generator) -> np.ndarray:
        return sources.load_image(self.paths[int(rng.integers(len(self.paths)))])


class SyntheticPairSource(_StillScenes):
    """Two frames of a real still background with a real-texture object cut by an exact random outline.

    Between the frames the camera shifts, the object moves, scales, rotates and changes brightness. Often
    distractors (look-alikes of the target or other cut-outs) stay close to it in both frames, some touching it or
    partly behind it (as in the template of a person walking beside another); sometimes a partial occluder.
    """

    def __init__(self, split: str = "train", frame_size: tuple[int, int] = (384, 384),
                 object_size: tuple[float, float] = (24.0, 180.0), aspect: tuple[float, float] = (0.33, 3.0),
                 distractor_prob: float = 0.7, occluder_prob: float = 0.2) -> None:
        self._use_stills(split)
        self.frame_size = frame_size
        self.object_size = object_size
        self.aspect = aspect
        self.distractor_prob = distractor_prob
        self.occluder_prob = occluder_prob

    def _view(self, rng: np.random.Generator, img: np.ndarray, zoom: float, shift: np.ndarray) -> np.ndarray:
        fw, fh = self.frame_size
        ih, iw = img.shape[:2]
        s = max(fw / iw, fh / ih) * zoom
        cx = iw / 2 + shift[0] / s
        cy = ih / 2 + shift[1] / s
        m = np.array([[s, 0, fw / 2 - s * cx], [0, s, fh / 2 - s * cy]], dtype=np.float64)
        return cv2.warpAffine(img, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def sample(self, rng: np.random.Generator) -> FramePair:
        fw, fh = self.frame_size
        bg = self._pick(rng)
        tex = self._pick(rng)
        long_side = float(np.exp(rng.uniform(np.log(self.object_size[0]), np.log(self.object_size[1]))))
        aspect = float(np.exp(rng.uniform(np.log(self.aspect[0]), np.log(self.aspect[1]))))
        ow, oh = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
        obj = cut_out(rng, tex, max(6, int(round(ow))), max(6, int(round(oh))))
        zoom = rng.uniform(1.0, 1.6)
        shift0 = rng.uniform(-0.2, 0.2, 2) * np.array([fw, fh])
        frames, masks = [], []
        c0 = np.array([rng.uniform(0.3, 0.7) * fw, rng.uniform(0.3, 0.7) * fh])
        a0 = rng.uniform(-30, 30)
        # Distractors that stay near the target in BOTH frames (a person walking beside another): look-alikes or
        # other cut-outs, some touching or partly behind the target; plus search-only ones.
        companions = []
        if rng.random() < self.distractor_prob:
            for _ in range(int(rng.integers(1, 4))):
                d = similar_cut_out(rng, obj) if rng.random() < 0.6 else cut_out(
                    rng, self._pick(rng), obj.mask.shape[1], obj.mask.shape[0])
                r = long_side * rng.uniform(0.6, 2.5)
                a = rng.uniform(0, 2 * np.pi)
                companions.append((d, np.array([r * np.cos(a), r * np.sin(a)]), rng.uniform(0.8, 1.25),
                                   rng.uniform(-40, 40), rng.random() < 0.7))
        for k in range(2):
            if k == 0:
                shift, centre, scale, angle, gain = shift0, c0, 1.0, a0, 1.0
            else:
                shift = shift0 + rng.normal(0, 20, 2)
                centre = c0 + rng.normal(0, 0.3 * long_side, 2)
                scale = float(np.exp(rng.normal(0, 0.15)))
                angle = a0 + rng.normal(0, 12)
                gain = float(np.exp(rng.normal(0, 0.12)))
            frame = self._view(rng, bg if k == 0 or rng.random() < 0.85 else self._pick(rng), zoom, shift)
            for d, off, dscale, dangle, in_template in companions:
                if k == 0 and not in_template:
                    continue
                o = off if k == 0 else off + rng.normal(0, 0.25 * long_side, 2)
                paste(frame, d, centre[0] + o[0] * scale, centre[1] + o[1] * scale, scale * dscale, dangle)
            mask = paste(frame, obj, centre[0], centre[1], scale, angle, gain)
            if k == 1 and rng.random() < self.occluder_prob:
                occ = cut_out(rng, self._pick(rng), max(6, int(0.5 * long_side)), max(6, int(0.5 * long_side)))
                off = rng.uniform(-0.5, 0.5, 2) * long_side * scale
                omask = paste(frame, occ, centre[0] + off[0], centre[1] + off[1], scale, rng.uniform(0, 90))
                if (mask & (1 - omask)).sum() > 0.5 * mask.sum():
                    mask = mask & (1 - omask)
                else:  # too much hidden: drop the occluder rather than train on an invisible target
                    frame = self._view(rng, bg, zoom, shift)
                    mask = paste(frame, obj, centre[0], centre[1], scale, angle, gain)
            frames.append(frame)
            masks.append(mask)
        b0, b1 = mask_box_xywh(masks[0]), mask_box_xywh(masks[1])
        if np.isnan(b0).any() or np.isnan(b1).any() or b0[2] < 4 or b0[3] < 4 or b1[2] < 4 or b1[3] < 4:
            return self.sample(rng)  # object pushed out of the frame: draw again
        return FramePair(frames[0], b0, frames[1], b1, masks[1])


class PlanarPairSource(_StillScenes):
    """Two views of a real planar scene by a moving camera (homographies), with the statistics of real tracking.

    The target is a planar region (a real photo pasted as a poster / board / screen / book cover, or a textured
    region of the scene itself) of 2-75 % of the frame width, aspect up to 1:5, often touching or crossing the frame
    border, so that its crops carry the out-of-image padding the tracker sees on large or border-touching targets.
    Between the views the camera rotates, zooms, pans and tilts (perspective), the exposure and colour change, the
    image may be blurred by motion, and a sequence may be grey. The truth is the visible part of the target: the box
    of its warped mask inside the frame.
    """

    def __init__(self, split: str = "train", frame_size: tuple[int, int] = (480, 360),
                 target_width: tuple[float, float] = (0.03, 0.75), aspect: tuple[float, float] = (0.2, 5.0),
                 border_prob: float = 0.35, region_prob: float = 0.3, gray_prob: float = 0.1,
                 blur_prob: float = 0.15) -> None:
        # Half of opencv-doc's stills are one chessboard photographed 26 times (camera calibration): keep one pair
        # so that the scenes are not mostly chessboards.
        self._use_stills(split, lambda p: not re.fullmatch(r"(left|right)(0[2-9]|1\d)\.jpg", p.name))
        self.frame_size = frame_size
        self.target_width = target_width
        self.aspect = aspect
        self.border_prob = border_prob
        self.region_prob = region_prob
        self.gray_prob = gray_prob
        self.blur_prob = blur_prob

    def _target_quad(self, rng: np.random.Generator, tw: float, th: float) -> np.ndarray:
        """Corners (4, 2) of the target in the first view: centre, rotation and a perspective tilt."""
        fw, fh = self.frame_size
        if rng.random() < self.border_prob:
            # Centre placed so that the target reaches past one or two frame borders.
            side = int(rng.integers(4))
            over = rng.uniform(0.0, 0.45)
            cx = rng.uniform(tw / 2, fw - tw / 2) if tw < fw else fw / 2
            cy = rng.uniform(th / 2, fh - th / 2) if th < fh else fh / 2
            if side == 0:
                cx = tw / 2 - over * tw
            elif side == 1:
                cx = fw - tw / 2 + over * tw
            elif side == 2:
                cy = th / 2 - over * th
            else:
                cy = fh - th / 2 + over * th
        else:
            cx = rng.uniform(min(tw / 2, fw / 2), max(fw - tw / 2, fw / 2))
            cy = rng.uniform(min(th / 2, fh / 2), max(fh - th / 2, fh / 2))
        a = np.deg2rad(rng.normal(0, 10))
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        base = np.array([[-tw / 2, -th / 2], [tw / 2, -th / 2], [tw / 2, th / 2], [-tw / 2, th / 2]])
        quad = (base @ rot.T + [cx, cy]).astype(np.float32)
        # The plane is seen at an angle: a perspective of the whole view (frame corners moved by ~4 % of the frame),
        # not of the target alone, which would tilt the scene absurdly around a small target.
        frame = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
        tilt = cv2.getPerspectiveTransform(frame, (frame + rng.normal(0, 0.04, (4, 2)) * [fw, fh]).astype(np.float32))
        return cv2.perspectiveTransform(quad[None], tilt)[0].astype(np.float64)

    def _camera_motion(self, rng: np.random.Generator, quad: np.ndarray) -> np.ndarray:
        """Frame-to-frame homography: rotation, zoom, pan and perspective about the target centre."""
        c = quad.mean(axis=0)
        size = float(np.sqrt(max(cv2.contourArea(quad.astype(np.float32)), 16.0)))
        a = np.deg2rad(rng.normal(0, 5))
        s = float(np.exp(rng.normal(0, 0.12)))
        pan = rng.normal(0, 0.25 * size + 4.0, 2)
        src = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * 100.0
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * s
        dst = src @ rot.T + rng.normal(0, 4.0, (4, 2))   # +-4 % corner motion: perspective change
        h = cv2.getPerspectiveTransform((src + c).astype(np.float32), (dst + c + pan).astype(np.float32))
        return h

    def _photometric(self, rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
        """Exposure (gain, gamma), colour tint, sensor noise, motion blur. Lookup tables: this runs per frame."""
        gain = float(np.exp(rng.normal(0, 0.25)))
        gamma = float(np.exp(rng.normal(0, 0.15)))
        tint = rng.normal(1.0, 0.06, 3)
        levels = (np.arange(256) / 255.0) ** gamma * gain * 255.0
        lut = np.clip(levels[:, None] * tint[None, :], 0, 255).astype(np.uint8).reshape(256, 1, 3)
        out = cv2.LUT(img, lut)
        if rng.random() < 0.3:
            noise = np.empty(out.shape, np.int16)
            cv2.randn(noise, 0, float(rng.uniform(1, 5)))
            out = cv2.add(out, noise, dtype=cv2.CV_8U)
        if rng.random() < self.blur_prob:
            out = _blur(rng, out)
        return out

    def sample(self, rng: np.random.Generator) -> FramePair:
        fw, fh = self.frame_size
        bg = self._pick(rng)
        tw = fw * float(np.exp(rng.uniform(np.log(self.target_width[0]), np.log(self.target_width[1]))))
        aspect = float(np.exp(rng.uniform(np.log(self.aspect[0]), np.log(self.aspect[1]))))
        th = min(tw / aspect, 0.95 * fh * 1.3)
        tw = max(tw, 6.0)
        th = max(th, 6.0)
        quad0 = self._target_quad(rng, tw, th)
        # Plane coordinates: the target is the rectangle [0, pw] x [0, ph]; the background photo spans a larger
        # area around it, so the camera sees real texture wherever it looks.
        pw, ph = 400.0, 400.0 * th / tw
        if rng.random() < self.region_prob:
            tex = None          # the target is a region of the background photo itself
        else:
            tex = self._pick(rng)
        plane_to_view0 = cv2.getPerspectiveTransform(
            np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32), quad0.astype(np.float32))
        motion = self._camera_motion(rng, quad0)
        gray = rng.random() < self.gray_prob
        frames, masks = [], []
        for h_view in (plane_to_view0, motion @ plane_to_view0):
            # The background photo is laid on the plane so that it covers the whole view with margin.
            inv = np.linalg.inv(h_view)
            corners = cv2.perspectiveTransform(
                np.array([[[0, 0], [fw, 0], [fw, fh], [0, fh]]], np.float32), inv.astype(np.float32))[0]
            lo, hi = corners.min(axis=0), corners.max(axis=0)
            lo = np.minimum(lo, [0, 0]) - 0.1 * (hi - lo)
            hi = np.maximum(hi, [pw, ph]) + 0.1 * (hi - lo)
            if not np.all(np.isfinite([lo, hi])) or (hi - lo).max() > 40 * max(pw, ph):
                return self.sample(rng)    # view nearly parallel to the plane: draw again
            bh, bw = bg.shape[:2]
            bg_to_plane = np.array([[(hi[0] - lo[0]) / bw, 0, lo[0]], [0, (hi[1] - lo[1]) / bh, lo[1]], [0, 0, 1]])
            frame = cv2.warpPerspective(bg, h_view @ bg_to_plane, (fw, fh), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REFLECT)
            mask = cv2.warpPerspective(np.ones((int(round(ph)), int(round(pw))), np.uint8), h_view, (fw, fh),
                                       flags=cv2.INTER_NEAREST)
            if tex is not None:   # the photo covers exactly the target rectangle of the plane, i.e. the mask
                th_, tw_ = tex.shape[:2]
                tex_to_plane = np.array([[pw / tw_, 0, 0], [0, ph / th_, 0], [0, 0, 1]])
                warped = cv2.warpPerspective(tex, h_view @ tex_to_plane, (fw, fh), flags=cv2.INTER_LINEAR)
                cv2.copyTo(warped, mask, frame)
            frames.append(self._photometric(rng, frame))
            masks.append(mask)
        if gray:
            frames = [cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for f in frames]
        b0, b1 = mask_box_xywh(masks[0]), mask_box_xywh(masks[1])
        if (np.isnan(b0).any() or np.isnan(b1).any() or min(b0[2], b0[3], b1[2], b1[3]) < 4
                or min(masks[0].sum(), masks[1].sum()) < 0.25 * tw * th):
            return self.sample(rng)    # target (mostly) out of the view: draw again
        return FramePair(frames[0], b0, frames[1], b1, masks[1])


@dataclass
class TrackRecord:
    """One annotated track of a video: frame paths, boxes (NaN when absent), optional mask paths + object id."""

    frames: list[str]
    boxes_xywh: np.ndarray
    mask_paths: Optional[list[Optional[str]]] = None
    object_id: int = 1           # value of the object's pixels in palette masks; 0 = any non-zero pixel
    name: str = ""


def read_track_mask(path: str, object_id: int) -> np.ndarray:
    """Binary mask from a palette PNG (YouTube-VOS / DAVIS: pixel value = object index) or a 0/255 PNG."""
    from PIL import Image  # pillow comes with matplotlib; palette indices need it (cv2 converts to colours)

    arr = np.asarray(Image.open(path))
    if arr.ndim == 3:
        arr = arr[..., 0]
    return (arr == object_id).astype(np.uint8) if object_id > 0 else (arr > 0).astype(np.uint8)


class VideoPairSource:
    """Template and search from two frames (at most `frame_range` apart) of the same track."""

    def __init__(self, tracks: Seq[TrackRecord], frame_range: int = 100) -> None:
        self.tracks = [t for t in tracks if int((~np.isnan(t.boxes_xywh).any(axis=1)).sum()) >= 1]
        if not self.tracks:
            raise ValueError("VideoPairSource needs at least one track with a visible frame")
        self.frame_range = frame_range

    def sample(self, rng: np.random.Generator) -> FramePair:
        t = self.tracks[int(rng.integers(len(self.tracks)))]
        vis = np.flatnonzero(~np.isnan(t.boxes_xywh).any(axis=1) & (np.nan_to_num(t.boxes_xywh[:, 2:]) > 1).all(1))
        if vis.size == 0:
            return self.sample(rng)
        i = int(vis[rng.integers(vis.size)])
        near = vis[np.abs(vis - i) <= self.frame_range]
        j = int(near[rng.integers(near.size)])
        mask = None
        if t.mask_paths is not None and t.mask_paths[j] is not None:
            mask = read_track_mask(t.mask_paths[j], t.object_id)
        return FramePair(_imread(t.frames[i]), t.boxes_xywh[i], _imread(t.frames[j]), t.boxes_xywh[j], mask)


@dataclass
class InstanceRecord:
    """One object instance in a still image (COCO style): image path, box xywh, polygons (list of (k, 2) arrays)."""

    image: str
    box_xywh: np.ndarray
    polygons: list = field(default_factory=list)


def rasterise_polygons(polygons: list, height: int, width: int, factor: int = 4) -> np.ndarray:
    """0/1 mask of the pixels at least half covered by the polygons (continuous coordinates, pixel i = [i, i+1)).

    fillPoly alone counts every pixel the outline touches; rendering at `factor` x resolution and averaging gives
    the area rule.
    """
    big = np.zeros((height * factor, width * factor), np.uint8)
    pts = [np.round((np.asarray(p, dtype=np.float64) * factor - 0.5) * 16).astype(np.int32).reshape(-1, 1, 2)
           for p in polygons]
    cv2.fillPoly(big, pts, 1, shift=4)
    cover = big.reshape(height, factor, width, factor).mean(axis=(1, 3))
    return (cover >= 0.5).astype(np.uint8)


class StillPairSource:
    """Template and search from the same still image (COCO-style): augmentation makes the two crops differ."""

    def __init__(self, instances: Seq[InstanceRecord], min_size: float = 8.0) -> None:
        self.instances = [r for r in instances if min(r.box_xywh[2], r.box_xywh[3]) >= min_size]
        if not self.instances:
            raise ValueError(f"StillPairSource: no instance with both sides >= {min_size}")

    def sample(self, rng: np.random.Generator) -> FramePair:
        r = self.instances[int(rng.integers(len(self.instances)))]
        img = _imread(r.image)
        mask = None
        if r.polygons:
            mask = rasterise_polygons(r.polygons, img.shape[0], img.shape[1])
        return FramePair(img, r.box_xywh, img, r.box_xywh, mask)


# ----------------------------------------------------------------------------------------------------------------------
# Cropping and augmentation
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class AugmentConfig:
    template_shift: float = 4.0
    template_scale: float = 0.05
    search_shift: float = 64.0
    search_scale: float = 0.18
    blur: float = 0.2
    flip: float = 0.2
    color: float = 0.5
    gray: float = 0.0
    context: float = 0.5


def crop_window(box_xywh: np.ndarray, exemplar_size: int, out_size: int, context: float) -> float:
    """Side (image pixels) of the square crop the tracker cuts around a box for an `out_size` crop."""
    w, h = float(box_xywh[2]), float(box_xywh[3])
    p = context * (w + h)
    s_z = float(np.sqrt((w + p) * (h + p)))
    return s_z * out_size / exemplar_size


def _affine(cx: float, cy: float, side: float, out: int) -> np.ndarray:
    a = out / side
    x0, y0 = cx - side / 2, cy - side / 2
    # continuous u = a (X - x0)  <=>  index form u_i = a X_i + 0.5 a - 0.5 - a x0
    return np.array([[a, 0, 0.5 * a - 0.5 - a * x0], [0, a, 0.5 * a - 0.5 - a * y0]], dtype=np.float64)


def _warp(img: np.ndarray, m: np.ndarray, out: int, interp: int, fill) -> np.ndarray:
    return cv2.warpAffine(img, m, (out, out), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def _blur(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    k = int(rng.choice(np.arange(5, 46, 2)))
    kernel = np.zeros((k, k), np.float32)
    c = k // 2
    a = rng.uniform(0, np.pi)
    for t in np.linspace(-c, c, 2 * k):
        kernel[int(round(c + t * np.sin(a))), int(round(c + t * np.cos(a)))] = 1
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel)


def _color(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    gain = rng.normal(1.0, 0.1, 3)
    offset = rng.normal(0, 10, 3)
    return np.clip(img.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


def crop_one(rng: np.random.Generator, image: np.ndarray, box_xywh: np.ndarray, out: int, exemplar_size: int,
             shift: float, scale: float, context: float, mask: Optional[np.ndarray] = None
             ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], np.ndarray]:
    """Crop `out` x `out` around the box with random scale (1 +- scale) and shift (+- shift crop pixels).

    Returns (crop BGR uint8, box x1y1x2y2 in crop pixels, mask crop uint8 0/1 or None, the image's extent x1y1x2y2
    in crop pixels: everything of the crop outside it is padding).
    """
    side = crop_window(box_xywh, exemplar_size, out, context)
    side *= 1.0 + rng.uniform(-scale, scale)
    cx = box_xywh[0] + box_xywh[2] / 2 + rng.uniform(-shift, shift) * side / out
    cy = box_xywh[1] + box_xywh[3] / 2 + rng.uniform(-shift, shift) * side / out
    m = _affine(cx, cy, side, out)
    fill = tuple(float(v) for v in cv2.mean(image)[:3])
    crop = _warp(image, m, out, cv2.INTER_LINEAR, fill)
    a = out / side
    x0, y0 = cx - side / 2, cy - side / 2
    box = np.array([(box_xywh[0] - x0) * a, (box_xywh[1] - y0) * a,
                    (box_xywh[0] + box_xywh[2] - x0) * a, (box_xywh[1] + box_xywh[3] - y0) * a])
    ih, iw = image.shape[:2]
    extent = np.array([-x0 * a, -y0 * a, (iw - x0) * a, (ih - y0) * a])
    mcrop = None
    if mask is not None:
        mcrop = (_warp((mask > 0).astype(np.uint8), m, out, cv2.INTER_NEAREST, 0) > 0).astype(np.uint8)
    return crop, box, mcrop, extent


def crop_pair(rng: np.random.Generator, pair: FramePair, aug: AugmentConfig, exemplar_size: int = 127,
              instance_size: int = 255, template_pair: Optional[FramePair] = None) -> dict:
    """Crop + augment a pair. With `template_pair`, the template comes from that (other) pair: a negative pair."""
    tp = template_pair if template_pair is not None else pair
    z, zbox, _, _ = crop_one(rng, tp.template_image, tp.template_box, exemplar_size, exemplar_size,
                          aug.template_shift, aug.template_scale, aug.context)
    x, xbox, xmask, xextent = crop_one(rng, pair.search_image, pair.search_box, instance_size, exemplar_size,
                              aug.search_shift, aug.search_scale, aug.context, pair.search_mask)
    if rng.random() < aug.color:
        z = _color(rng, z)
    if rng.random() < aug.color:
        x = _color(rng, x)
    if rng.random() < aug.blur:
        x = _blur(rng, x)
    if rng.random() < aug.gray:
        z = cv2.cvtColor(cv2.cvtColor(z, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        x = cv2.cvtColor(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < aug.flip:
        x = np.ascontiguousarray(x[:, ::-1])
        xbox = np.array([instance_size - xbox[2], xbox[1], instance_size - xbox[0], xbox[3]])
        xextent = np.array([instance_size - xextent[2], xextent[1], instance_size - xextent[0], xextent[3]])
        if xmask is not None:
            xmask = np.ascontiguousarray(xmask[:, ::-1])
    return {"template": z, "search": x, "search_box": xbox, "search_mask": xmask, "search_image_box": xextent,
            "template_box": zbox, "negative": template_pair is not None}
