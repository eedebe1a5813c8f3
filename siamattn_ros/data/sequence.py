"""Semi-synthetic test sequences with exact per-frame truth, deterministic from (spec, seed).

A real texture patch cut with a smooth random outline (the target) moves over a real background (a still image the
camera pans over, or real video footage) with scale change, rotation and illumination change; optional events:
a similar-looking distractor passing close by, a partial occluder crossing the target, and the target leaving the
frame and re-entering it. Truth per frame: the visible target mask (after occlusion and frame clipping) and its
tight box; frames where fewer than `min_visible_px` target pixels are visible get a NaN box and visible=False.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import cv2
import numpy as np

from siamattn_ros.data import sources
from siamattn_ros.data.shapes import CutOut, cut_out, mask_box_xywh, paste, similar_cut_out


@dataclass
class SequenceSpec:
    """What to generate. Sizes in pixels, speeds in pixels per frame, angles in degrees."""

    num_frames: int = 100
    width: int = 640
    height: int = 480
    background: str = "video"          # "video" (real footage) or "still" (camera panning over a real photo)
    split: str = "heldout"             # which pool of source imagery: "heldout" (tests/eval) or "train"
    object_size: tuple[float, float] = (50.0, 110.0)   # range of the target's longer side at scale 1
    aspect: tuple[float, float] = (0.5, 2.0)           # range of width / height
    speed: float = 4.0
    scale_change: float = 0.3          # log-scale amplitude: the scale stays within exp(+-scale_change)
    rotation: float = 25.0             # amplitude of the in-plane rotation
    illumination: float = 0.15         # amplitude of the target's brightness gain
    camera_pan: float = 1.0            # still backgrounds only
    noise: float = 2.0                 # std of additive Gaussian pixel noise
    distractor: bool = True
    occlusion: bool = True
    leave_reenter: bool = False
    min_visible_px: int = 20

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        if self.background not in ("video", "still"):
            raise ValueError(f"background must be 'video' or 'still', got {self.background!r}")
        if self.split not in sources.SPLITS:
            raise ValueError(f"split must be one of {sources.SPLITS}, got {self.split!r}")
        if self.width < 64 or self.height < 64:
            raise ValueError(f"frame too small: {self.width}x{self.height}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Sequence:
    frames: list[np.ndarray]                 # BGR uint8 (H, W, 3)
    boxes_xywh: np.ndarray                   # (N, 4) float64, NaN rows where the target is not visible
    masks: Optional[list[np.ndarray]]        # uint8 0/255 (H, W) per frame, or None
    visible: np.ndarray                      # (N,) bool
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


def _catmull_rom(times: np.ndarray, keys: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Smooth interpolation through keyframes (keys (K, D) at increasing times) evaluated at t."""
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    p0 = keys[np.maximum(k - 1, 0)]
    p1, p2 = keys[k], keys[k + 1]
    p3 = keys[np.minimum(k + 2, len(keys) - 1)]
    u = ((t - times[k]) / (times[k + 1] - times[k]))[:, None]
    return 0.5 * ((2 * p1) + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u ** 2
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * u ** 3)


def _target_path(spec: SequenceSpec, rng: np.random.Generator, size: float) -> np.ndarray:
    """Centre (N, 2) of the target per frame."""
    n, w, h = spec.num_frames, spec.width, spec.height
    step = 25
    nk = max(3, int(np.ceil((n - 1) / step)) + 1)
    times = np.linspace(0, n - 1, nk)
    lo = np.array([0.2 * w, 0.2 * h])
    hi = np.array([0.8 * w, 0.8 * h])
    keys = np.zeros((nk, 2))
    keys[0] = rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo))
    for i in range(1, nk):
        d = spec.speed * (times[i] - times[i - 1]) * rng.uniform(0.5, 1.5)
        a = rng.uniform(0, 2 * np.pi)
        p = keys[i - 1] + d * np.array([np.cos(a), np.sin(a)])
        # Reflect into the inner region so the target stays mostly in view unless an exit is requested.
        for ax in range(2):
            span = hi[ax] - lo[ax]
            q = (p[ax] - lo[ax]) % (2 * span)
            p[ax] = lo[ax] + (q if q <= span else 2 * span - q)
        keys[i] = p
    if spec.leave_reenter and nk >= 4:
        # One keyframe well beyond the nearest edge: the target leaves, stays out for a while, comes back.
        j = int(rng.integers(1, nk - 2))
        c = keys[j]
        dists = [c[0], w - c[0], c[1], h - c[1]]
        side = int(np.argmin(dists))
        out = 2.0 * size + 40
        for jj in (j,):
            p = keys[jj].copy()
            if side == 0:
                p[0] = -out
            elif side == 1:
                p[0] = w + out
            elif side == 2:
                p[1] = -out
            else:
                p[1] = h + out
            keys[jj] = p
    return _catmull_rom(times, keys, np.arange(n, dtype=np.float64))


def _background_frames(spec: SequenceSpec, rng: np.random.Generator, exclude: Optional[str]) -> tuple[list, str]:
    n, w, h = spec.num_frames, spec.width, spec.height
    if spec.background == "video":
        vids = sources.video_paths()
        if not vids:
            raise sources.SourceUnavailable("no real videos found for background='video'")
        path = vids[int(rng.integers(len(vids)))]
        start = int(rng.integers(0, max(1, sources.video_length(path) - 1)))
        out = []
        for f in sources.video_frames(path, start, n):
            fh, fw = f.shape[:2]
            s = max(w / fw, h / fh)
            big = cv2.resize(f, (max(w, int(np.ceil(fw * s))), max(h, int(np.ceil(fh * s)))))
            y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
            out.append(np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w]))
        return out, f"{path.name}@{start}"
    stills = [p for p in sources.still_paths(spec.split) if p.name != exclude]
    path = stills[int(rng.integers(len(stills)))]
    img = sources.load_image(path)
    pan = spec.camera_pan * n
    ih, iw = img.shape[:2]
    s = max((w + pan) / iw, (h + 0.5 * pan) / ih, 1.0)
    big = cv2.resize(img, (int(np.ceil(iw * s)), int(np.ceil(ih * s))), interpolation=cv2.INTER_LINEAR)
    bh, bw = big.shape[:2]
    # Camera pans along a straight line between two random view positions.
    p0 = np.array([rng.uniform(0, bw - w), rng.uniform(0, bh - h)])
    p1 = np.array([rng.uniform(0, bw - w), rng.uniform(0, bh - h)])
    dist = np.linalg.norm(p1 - p0)
    if dist > pan:
        p1 = p0 + (p1 - p0) * pan / dist
    out = []
    for t in np.linspace(0, 1, n):
        x, y = p0 + t * (p1 - p0)
        m = np.array([[1, 0, -x], [0, 1, -y]], dtype=np.float64)
        out.append(cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out, path.name


def make_sequence(spec: SequenceSpec, seed: int) -> Sequence:
    """Generate the sequence for (spec, seed); the same pair always gives the same pixels and truth."""
    sources.require()
    rng = np.random.default_rng(seed)
    n = spec.num_frames
    stills = sources.still_paths(spec.split)
    tex_path = stills[int(rng.integers(len(stills)))]
    long_side = rng.uniform(*spec.object_size)
    aspect = float(np.exp(rng.uniform(np.log(spec.aspect[0]), np.log(spec.aspect[1]))))
    ow, oh = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
    target = cut_out(rng, sources.load_image(tex_path), max(8, int(round(ow))), max(8, int(round(oh))))
    backgrounds, bg_name = _background_frames(spec, rng, exclude=tex_path.name)

    centres = _target_path(spec, rng, long_side)
    t = np.arange(n, dtype=np.float64)
    ph = rng.uniform(0, 2 * np.pi, size=4)
    period = rng.uniform(0.6, 1.2) * n
    log_scale = spec.scale_change * np.sin(2 * np.pi * t / period + ph[0])
    angles = spec.rotation * np.sin(2 * np.pi * t / (1.3 * period) + ph[1])
    gains = 1.0 + spec.illumination * np.sin(2 * np.pi * t / (0.8 * period) + ph[2])

    distractor: Optional[CutOut] = similar_cut_out(rng, target) if spec.distractor else None
    d_phase = rng.uniform(0, 2 * np.pi)
    occluder: Optional[CutOut] = None
    if spec.occlusion:
        occ_img = sources.load_image(stills[int(rng.integers(len(stills)))])
        occluder = cut_out(rng, occ_img, max(8, int(0.5 * long_side)), max(8, int(0.9 * long_side)))
        occ_mid = rng.uniform(0.3, 0.7) * n
        occ_len = max(10.0, 0.2 * n)
        occ_dir = rng.uniform(0, 2 * np.pi)
        occ_side = 0.45 * long_side * rng.choice([-1, 1])

    frames, masks, boxes, visible = [], [], np.full((n, 4), np.nan), np.zeros(n, bool)
    for i in range(n):
        frame = backgrounds[i].copy()
        scale = float(np.exp(log_scale[i]))
        cx, cy = centres[i]
        if distractor is not None:
            # Circles around the target, coming as close as ~1.3 target sizes once per period.
            r = long_side * scale * (2.3 + 1.0 * np.cos(2 * np.pi * i / (0.7 * period) + d_phase))
            a = d_phase + 2 * np.pi * i / (1.7 * period)
            paste(frame, distractor, cx + r * np.cos(a), cy + r * np.sin(a), scale, -angles[i], gains[i])
        mask = paste(frame, target, cx, cy, scale, angles[i], gains[i])
        if occluder is not None and abs(i - occ_mid) < occ_len:
            u = (i - occ_mid) / occ_len  # -1 .. 1 across the window
            along = np.array([np.cos(occ_dir), np.sin(occ_dir)])
            perp = np.array([-along[1], along[0]])
            pos = np.array([cx, cy]) + along * u * 1.5 * long_side * scale + perp * occ_side * scale
            omask = paste(frame, occluder, pos[0], pos[1], scale, 0.0)
            mask = mask & (1 - omask)
        if spec.noise > 0:
            noise = rng.normal(0, spec.noise, frame.shape)
            frame = np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        if int(mask.sum()) >= spec.min_visible_px:
            visible[i] = True
            boxes[i] = mask_box_xywh(mask)
        else:
            mask = np.zeros_like(mask)
        frames.append(frame)
        masks.append(mask * 255)
    if not visible[0]:
        raise RuntimeError(f"target not visible in the first frame (seed {seed}); spec {spec}")
    meta = {"seed": seed, "spec": spec.to_dict(), "background": bg_name, "texture": tex_path.name}
    return Sequence(frames, boxes, masks, visible, name=f"synth_{spec.split}_{seed:06d}", meta=meta)
