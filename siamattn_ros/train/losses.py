"""Losses of spec section 11.1: RPN NLL + L1, refinement smooth-L1 (box) and BCE with 70 % OHEM (mask)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rpn_cls_loss(cls: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """cls (B, 2A, S, S) logits (channels 0..A-1 background, A..2A-1 foreground); labels (B, A, S, S) in {-1, 0, 1}.

    Log-softmax NLL averaged over positive anchors and over negative anchors separately, then 0.5 / 0.5.
    """
    b, c, s1, s2 = cls.shape
    a = c // 2
    logp = F.log_softmax(cls.view(b, 2, a, s1, s2), dim=1)
    pos = labels == 1
    neg = labels == 0
    zero = cls.sum() * 0.0  # keeps the graph (and DDP) happy when a set is empty
    lp = -logp[:, 1][pos].mean() if pos.any() else zero
    ln = -logp[:, 0][neg].mean() if neg.any() else zero
    return 0.5 * lp + 0.5 * ln


def rpn_loc_loss(loc: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 over the 4 deltas, weighted per anchor (1/num_pos on positives), summed and divided by the batch size.

    loc (B, 4A, S, S); target (B, 4, A, S, S); weight (B, A, S, S).
    """
    b, c, s1, s2 = loc.shape
    diff = (loc.view(b, 4, c // 4, s1, s2) - target).abs().sum(dim=1)
    return (diff * weight).sum() / b


def box_refine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if pred.numel() == 0:
        return pred.sum() * 0.0
    return F.smooth_l1_loss(pred, target, beta=1.0)


def mask_refine_loss(logits: torch.Tensor, target: torch.Tensor, keep: float = 0.7) -> torch.Tensor:
    """Per-pixel BCE-with-logits; online hard example mining keeps the largest `keep` fraction (over all RoIs)."""
    if logits.numel() == 0:
        return logits.sum() * 0.0
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"OHEM keep fraction must be in (0, 1], got {keep}")
    per_px = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten()
    k = max(1, int(round(keep * per_px.numel())))
    return torch.topk(per_px, k, sorted=False).values.mean()


def box_quality_loss(logits: torch.Tensor, iou: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the predicted IoU (logits) against the soft IoU targets in [0, 1]."""
    if logits.numel() == 0:
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits, iou.clamp(0.0, 1.0))
