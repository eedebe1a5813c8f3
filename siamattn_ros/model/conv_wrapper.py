"""Base of the inference-only replacements of an nn.Conv2d (oneDNN, Winograd): they keep the original conv, show its
parameters to callers that inspect the layer, and fall back to it outside the float32 CPU no-grad case."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn


# Below this many input channels PyTorch's own conv is as fast as oneDNN's or faster with one thread (oneDNN reorders
# the weight on every call): 0.17 vs 0.30 ms for a 64->64 1x1 conv on 25x25. Whole-model A/B, same process: the
# embedded model (<= 96 channels) with oneDNN everywhere 1.06x the time; the paper model with the limit at 0 1.04x,
# at 128 1.02x (the 128-channel layer-2 convs), at 512 1.03x, with no oneDNN at all 1.05x, against this limit.
ONEDNN_MIN_IN_CHANNELS = 256


class ConvWrapper(nn.Module):
    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    @property
    def weight(self) -> torch.Tensor:  # callers inspecting the layer see the wrapped conv's parameters
        return self.conv.weight

    @property
    def bias(self) -> Optional[torch.Tensor]:
        return self.conv.bias

    def fast_path(self, x: torch.Tensor) -> bool:
        """True where the replacement applies: a 4-D float32 CPU tensor without autograd."""
        return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled() and x.dim() == 4
