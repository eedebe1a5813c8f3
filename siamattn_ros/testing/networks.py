"""A network whose outputs are fixed by hand, for tests that check the tracker's arithmetic against the spec's
formulas (torch; the geometry of the stand-in NCC network: 25x25 score map, 5 anchors, 64x64 masks)."""
from __future__ import annotations

import torch

from siamattn_ros.tracker.ncc_model import NCCModel


class ScriptedNet(torch.nn.Module):
    """Network outputs fixed by hand: one anchor (index `anchor` at `row`, `col`) with foreground logit `fg` (all
    others far below), RPN deltas `loc` (dx, dy, dw, dh) at that anchor, refinement deltas `refine`, a constant mask
    logit; records every search crop (`crops`) and RoI (`rois`) it is given."""

    def __init__(self, anchor: int = 2, row: int = 12, col: int = 12, fg: float = 10.0,
                 loc: tuple = (0.0, 0.0, 0.0, 0.0), refine: tuple = (0.0, 0.0, 0.0, 0.0),
                 mask_logit: float = 8.0) -> None:
        super().__init__()
        self.cfg = NCCModel().cfg
        self.anchor, self.row, self.col, self.fg, self.loc, self.refine = anchor, row, col, fg, loc, refine
        self.mask_logit = mask_logit
        self.crops: list = []
        self.rois: list = []

    def template(self, z: torch.Tensor) -> None:
        assert z.shape == (1, 3, 127, 127)

    def track(self, x: torch.Tensor) -> dict:
        self.crops.append(x.clone())
        cls = torch.full((1, 10, 25, 25), -10.0)
        cls[:, :5] = 0.0
        cls[0, 5 + self.anchor, self.row, self.col] = self.fg
        loc = torch.zeros(1, 20, 25, 25)
        for k in range(4):
            loc[0, 5 * k + self.anchor, self.row, self.col] = self.loc[k]
        return {"cls": cls, "loc": loc}

    def bbox_refine(self, rois: torch.Tensor) -> torch.Tensor:
        self.rois.append(("bbox", rois.clone()))
        return torch.tensor([self.refine], dtype=torch.float32)

    def mask_refine(self, rois: torch.Tensor) -> torch.Tensor:
        self.rois.append(("mask", rois.clone()))
        return torch.full((1, 1, 64, 64), self.mask_logit)
