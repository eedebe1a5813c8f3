"""Learning-rate schedule: geometric warm-up, then log-spaced decay (spec 11.5, counted in steps)."""
from __future__ import annotations

import math


def lr_at(step: int, total: int, base_lr: float, end_lr: float, warmup_start_lr: float, warmup_steps: int) -> float:
    if step < 0 or total < 1:
        raise ValueError(f"bad schedule position step={step} total={total}")
    if step < warmup_steps:
        f = step / max(1, warmup_steps)
        return warmup_start_lr * (base_lr / warmup_start_lr) ** f
    rest = max(1, total - warmup_steps - 1)
    f = min(1.0, (step - warmup_steps) / rest)
    return math.exp(math.log(base_lr) + f * (math.log(end_lr) - math.log(base_lr)))


def lr_at_fraction(frac: float, step: int, base_lr: float, end_lr: float, warmup_start_lr: float,
                   warmup_steps: int) -> float:
    """Warm-up over the first `warmup_steps` steps, then log decay by the fraction of the run done (steps or time)."""
    if step < warmup_steps:
        return warmup_start_lr * (base_lr / warmup_start_lr) ** (step / max(1, warmup_steps))
    f = min(1.0, max(0.0, frac))
    return math.exp(math.log(base_lr) + f * (math.log(end_lr) - math.log(base_lr)))
