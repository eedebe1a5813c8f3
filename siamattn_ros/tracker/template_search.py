"""Template search of the state box (a robot addition, not in the paper; ``TrackerConfig.template_search``).

The box heads of the embedded network can settle on a box that is consistently wrong for a rigid target: on a black
square lying on a carton (visp_mire2) they take the carton's front face for part of the target, the state's centre
sits low and its height is 1.3x the square's, and through a strong perspective change the box then grows over the
image. The size check (``size_check``) only compares a new size with the previous one at the network's centre, so
it cannot move such a state back. The init template still knows the target: at the truth box its similarity stays
~0.8 through the perspective change, at the state box it falls to 0.4-0.55.

So on every frame, boxes around the state (the centre moved by up to 0.2 of the box, then width and height scaled
0.8-1.25 at the best centre: 50 boxes) are rated against the init template on the features the search step has
already computed (the search crop's adjusted feature levels, sampled on the cells the template's centre crop would
have for each box: ~2 ms on one CPU core, no extra network pass). The tracker lets the best box replace the state
where it matches the template at least ``template_search_trust`` and ``template_search_margin`` better than the
state box, on ``template_search_frames`` consecutive frames: a systematic error of the box heads, not a one-frame
disagreement (on a walking person the template prefers another box on the odd frame, and one such move at the
start lost bikes_walker's man).

Geometry: like ``size_check.warp_to_template``, a box is scaled to the init box anisotropically, and the template
descriptor is the centre crop (``CELLS``² cells) of the adjusted feature levels; the reference is the init box on the
init frame's search features (the same kind of features as later frames', not the exemplar crop's).
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence, Tuple

import torch
from torchvision.ops import roi_align

from siamattn_ros.tracker.crop import context_side
from siamattn_ros.tracker.size_check import unit_rows

Box = Tuple[float, float, float, float]  # centre x, centre y, width, height (source pixels)

CELLS = 7  # the template's centre crop (ModelConfig.template_crop of both models)
OFFSETS = (-0.2, -0.1, 0.0, 0.1, 0.2)  # centre moves, in box widths / heights
SCALES = (0.8, 0.9, 1.0, 1.1, 1.25)  # width / height factors


class TemplateBoxSearch:
    """The init box's descriptor on the init frame's search features; the best-matching box around a state."""

    def __init__(self, exemplar_size: int, instance_size: int, stride: int) -> None:
        self.exemplar_size = exemplar_size
        self.instance_size = instance_size
        self.stride = stride
        self.ref_size: Tuple[float, float] = (1.0, 1.0)
        self._half = 0.0  # half the side, in source pixels of a box of ref_size, that the template's cells cover
        self._cell0 = 0.0  # crop pixel of the first feature cell's centre
        self._ref: Optional[torch.Tensor] = None

    @property
    def ready(self) -> bool:
        return self._ref is not None

    def reset(self) -> None:
        self._ref = None

    def set_reference(self, features: Sequence[torch.Tensor], origin: Tuple[float, float], scale: float,
                      box: Box, context_amount: float) -> None:
        """features: the adjusted levels (B=1) of the search crop of the init frame at origin / scale (crop pixels
        per source pixel); box: the init box."""
        self.ref_size = (float(box[2]), float(box[3]))
        exemplar_scale = self.exemplar_size / context_side(*self.ref_size, context_amount)
        self._half = CELLS * self.stride / 2.0 / exemplar_scale
        cells = features[0].shape[-1]
        # A fully convolutional map is centred on its crop: cell i lies at cell0 + i * stride.
        self._cell0 = (self.instance_size - 1) / 2.0 - self.stride * (cells - 1) / 2.0
        self._ref = self.describe(features, origin, scale, [box])

    def describe(self, features: Sequence[torch.Tensor], origin: Tuple[float, float], scale: float,
                 boxes: Sequence[Box]) -> torch.Tensor:
        """(N, D) descriptors of boxes (source pixels) on the search features of a crop at origin / scale."""
        b = torch.tensor(boxes, dtype=torch.float32, device=features[0].device).reshape(-1, 4)
        hx = self._half * b[:, 2] / self.ref_size[0] * scale
        hy = self._half * b[:, 3] / self.ref_size[1] * scale
        # roi_align(aligned=True) puts cell i at (i + 0.5) * stride: shift the crop coordinates onto that grid.
        shift = self._cell0 - self.stride / 2.0
        px = (b[:, 0] - origin[0]) * scale - shift
        py = (b[:, 1] - origin[1]) * scale - shift
        rois = torch.stack([torch.zeros_like(px), px - hx, py - hy, px + hx, py + hy], 1)
        v = torch.cat([roi_align(f.float(), rois, CELLS, 1.0 / self.stride, sampling_ratio=1, aligned=True)
                       .flatten(1) for f in features], 1)
        return unit_rows(v)

    def search(self, features: Sequence[torch.Tensor], origin: Tuple[float, float], scale: float,
               center: Tuple[float, float], size: Tuple[float, float],
               image_size: Tuple[int, int]) -> Tuple[Box, float, float]:
        """(best box, its similarity, the state box's similarity) among the boxes around the state (centre first,
        then width and height at the best centre: 50 boxes). A box reaching further out of the image than the state
        is not a candidate: out there the crop is padding, and the template of a target at the border has padding
        on that side too."""
        if self._ref is None:
            raise RuntimeError("TemplateBoxSearch.search() called before set_reference()")
        (cx, cy), (w, h) = center, size
        state: Box = (cx, cy, w, h)
        limit = _outside(state, image_size)
        moved = [b for b in ((cx + ox * w, cy + oy * h, w, h) for ox, oy in itertools.product(OFFSETS, OFFSETS))
                 if _within(b, limit, image_size)]
        sims = self._similarities(features, origin, scale, moved)
        bx, by = moved[int(torch.argmax(sims))][:2]
        s_state = float(sims[moved.index(state)])
        scaled = [b for b in ((bx, by, w * a, h * b) for a, b in itertools.product(SCALES, SCALES))
                  if _within(b, limit, image_size)]
        sims = self._similarities(features, origin, scale, scaled)
        k = int(torch.argmax(sims))
        return scaled[k], float(sims[k]), s_state

    def _similarities(self, features: Sequence[torch.Tensor], origin: Tuple[float, float], scale: float,
                      boxes: Sequence[Box]) -> torch.Tensor:
        return (self.describe(features, origin, scale, boxes) @ self._ref.T).flatten().cpu()


def _outside(box: Box, image_size: Tuple[int, int]) -> Tuple[float, float, float, float]:
    """How far box reaches out of the image on the left, top, right and bottom (pixels, >= 0)."""
    cx, cy, w, h = box
    width, height = image_size
    return (max(0.0, w / 2 - cx), max(0.0, h / 2 - cy), max(0.0, cx + w / 2 - width), max(0.0, cy + h / 2 - height))


def _within(box: Box, limit: Tuple[float, float, float, float], image_size: Tuple[int, int]) -> bool:
    return all(o <= q + 1e-6 for o, q in zip(_outside(box, image_size), limit))
