"""Template check of a size change (a robot addition, not in the paper; ``TrackerConfig.verify_size``).

The box head and the box-quality head of a small network can agree on a box that is too large: on a large planar
target (a black square on a white carton, ~60 % of the frame) the refinement proposes a box ~10-20 % taller on
every frame and the quality head rates it higher, so the size ratchets up frame by frame. What still tells the
sizes apart is the template itself: the frame resampled so that a candidate box lands where the init box lies in the
exemplar crop looks most like the template at the right size (anisotropically: a box too tall squashes the target).
This is the scale search of correlation-filter trackers (DSST), with the tracker's own backbone as the feature.

Per frame where the state's size would change, the new size and the previous size (at the new centre) are
resampled to exemplar crops and compared with the init template (cosine of the mean-centred backbone + neck
features). The change is kept only if the new size matches the template at least as well, and only while the
target still resembles its template at the previous size (similarity >= ``verify_trust``): for a deforming or
turning target (a walking person) the similarity is low and says little about size, and the network decides alone.
Cost: one batch of two exemplar crops through backbone + neck per frame (~11 ms for the embedded model on one CPU
core, ~0.2 of its frame time).
"""
from __future__ import annotations

from typing import Callable, ContextManager, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import nn

from siamattn_ros.tracker.crop import context_side, to_tensor

Size = Tuple[float, float]


def warp_to_template(image: np.ndarray, center: Sequence[float], size: Size, ref_size: Size, exemplar_size: int,
                     context_amount: float, pad_color: np.ndarray) -> np.ndarray:
    """The exemplar crop (exemplar_size² HWC uint8) in which the box (center, size) of `image` occupies exactly the
    place of a box of ref_size in the tracker's exemplar crop of that box: x and y scaled separately, mean-colour
    padding outside the image. With size == ref_size it is the tracker's own exemplar crop (up to interpolation)."""
    rw, rh = ref_size
    w, h = size
    if min(rw, rh, w, h) <= 0:
        raise ValueError(f"box sizes must be positive, got size {size!r} and ref_size {ref_size!r}")
    scale = exemplar_size / context_side(rw, rh, context_amount)  # exemplar pixels per source pixel
    sx, sy = scale * rw / w, scale * rh / h
    c = (exemplar_size - 1) / 2.0
    m = np.array([[sx, 0.0, c - sx * center[0]], [0.0, sy, c - sy * center[1]]], np.float32)
    return cv2.warpAffine(image, m, (exemplar_size, exemplar_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=[int(v) for v in pad_color])


def descriptors(model: nn.Module, crops: torch.Tensor) -> torch.Tensor:
    """(B, D) unit vectors of the crops' adjusted feature levels (model.extract levels 2..), mean-centred so that
    their dot product is a correlation."""
    levels = model.extract(crops)[2:]
    return unit_rows(torch.cat([f.float().flatten(1) for f in levels], 1))


def unit_rows(v: torch.Tensor) -> torch.Tensor:
    """Rows mean-centred and scaled to unit length: their dot product is a correlation."""
    return nn.functional.normalize(v - v.mean(1, keepdim=True), dim=1)


class TemplateSizeCheck:
    """Holds the init template's descriptor; rates candidate sizes of later frames against it."""

    def __init__(self, model: nn.Module, exemplar_size: int, device: torch.device,
                 autocast: Callable[[], ContextManager]) -> None:
        self.model = model
        self.exemplar_size = exemplar_size
        self.device = device
        self.autocast = autocast
        self.ref_size: Size = (1.0, 1.0)  # the init box's size; meaningful once ready
        self.context_amount = 0.5
        self.pad_color = np.zeros(3, np.uint8)
        self._ref: Optional[torch.Tensor] = None

    @property
    def ready(self) -> bool:
        return self._ref is not None

    def reset(self) -> None:
        self._ref = None

    def set_template(self, image: np.ndarray, center: Sequence[float], size: Size, context_amount: float,
                     pad_color: np.ndarray) -> None:
        """Take the init box of the init frame as the reference (one exemplar crop through backbone + neck)."""
        self.ref_size = (float(size[0]), float(size[1]))
        self.context_amount = float(context_amount)
        self.pad_color = np.asarray(pad_color, np.uint8)
        self._ref = self._describe(image, center, [self.ref_size])

    @torch.inference_mode()
    def _describe(self, image: np.ndarray, center: Sequence[float], sizes: Sequence[Size]) -> torch.Tensor:
        crops = [warp_to_template(image, center, s, self.ref_size, self.exemplar_size, self.context_amount,
                                  self.pad_color) for s in sizes]
        x = torch.cat([to_tensor(c, self.device) for c in crops])
        with self.autocast():
            return descriptors(self.model, x)

    def similarities(self, image: np.ndarray, center: Sequence[float], sizes: Sequence[Size]) -> List[float]:
        """Cosine similarity (-1..1) of the template with the box of each size at `center`."""
        if self._ref is None:
            raise RuntimeError("TemplateSizeCheck.similarities() called before set_template()")
        return (self._describe(image, center, sizes) @ self._ref.T).flatten().cpu().tolist()

    def keep_previous(self, image: np.ndarray, center: Sequence[float], new: Size, previous: Size,
                      trust: float) -> bool:
        """True when the size should stay `previous`: the template matches the previous size at least `trust`
        and matches the new size worse."""
        s_new, s_prev = self.similarities(image, center, [new, previous])
        return s_prev >= trust and s_new < s_prev
