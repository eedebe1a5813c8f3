"""Deformable Siamese Attention (DSA): spatial self-attention, channel self- and cross-attention, 3x3 deformable conv.

One weight set per level, shared by the template and the search branch (spec section 4). Per branch X with the other
branch Y and channel maps M_X, M_Y:

    X' = [g_s * SpatialAttn(X) + X] + [g_c * (M_X X) + X] + [g_c * (M_Y X) + X]

followed by the deformable conv. The search-independent part of the template term (spatial attention, its own channel
map and the three residuals) can be computed once per template; only the cross term M_S T changes per frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import nn

from siamattn_ros.model.deform_conv import DeformConvPack


class SpatialSelfAttention(nn.Module):
    """Position attention: out = gamma * V softmax(Q^T K)^T (no residual here; the caller adds it)."""

    def __init__(self, channels: int, key_channels: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(channels, key_channels, 1)
        self.key_conv = nn.Conv2d(channels, key_channels, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.blocked = False  # the CPU inference path (speed_up_cpu sets it): see ATTENTION_BLOCK

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query_conv(x).flatten(2)  # (b, k, n)
        k = self.key_conv(x).flatten(2)  # (b, k, n)
        v = self.value_conv(x).flatten(2)  # (b, c, n)
        if self.blocked and not torch.is_grad_enabled() and x.device.type == "cpu" and h * w > ATTENTION_BLOCK:
            return _attend_blocked(q, k, v).view(b, c, h, w)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (b, n, n), rows = query positions
        return torch.bmm(v, attn.transpose(1, 2)).view(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * self.attend(x)


# Query positions per block of the CPU inference path. The whole 961×961 attention of a 31×31 map is 3.7 MB: with
# one thread its allocation and passes through memory cost as much as the arithmetic (4.3 vs 5.7-14 ms per
# 64-channel level here); blocks of 128 rows stay in the L2 cache. Same result up to float rounding (~3e-7).
ATTENTION_BLOCK = 128


def _attend_blocked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """v softmax(q^T k)^T computed over blocks of ATTENTION_BLOCK query positions; (b, c, n)."""
    b, c, n = v.shape
    out = v.new_empty(b, c, n)
    for i in range(b):
        qt = q[i].t()
        for s in range(0, n, ATTENTION_BLOCK):
            attn = torch.softmax(torch.mm(qt[s:s + ATTENTION_BLOCK], k[i]), dim=-1)
            torch.mm(v[i], attn.t(), out=out[i, :, s:s + ATTENTION_BLOCK])
    return out


class ChannelAttentionScale(nn.Module):
    """Holds the learnable scale of the channel terms (the map itself has no parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))


def channel_map(x: torch.Tensor) -> torch.Tensor:
    """M = softmax(rowmax(G) - G) with G = X X^T over the flattened positions; (b, c, c)."""
    # Always in float32 (also under autocast): sums of squares over ~1000 positions overflow fp16.
    with torch.autocast(x.device.type, enabled=False):
        f = x.flatten(2)
        if f.dtype in (torch.float16, torch.bfloat16):
            f = f.float()
        energy = torch.bmm(f, f.transpose(1, 2))
        energy = energy.amax(dim=-1, keepdim=True) - energy
        return torch.softmax(energy, dim=-1).to(x.dtype)


def apply_channel_map(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.bmm(m, x.flatten(2)).view_as(x)


@dataclass
class TemplateCache:
    """Search-independent part of the template enhancement of one level (valid for fixed weights only)."""

    feature: torch.Tensor  # the template feature T
    base: torch.Tensor  # g_s*SA(T) + g_c*(M_T T) + 3T
    channel: torch.Tensor  # M_T


class FeatureEnhance(nn.Module):
    def __init__(self, channels: int = 256, key_channels: int = 32, levels: int = 3) -> None:
        super().__init__()
        self.pams = nn.ModuleList(SpatialSelfAttention(channels, key_channels) for _ in range(levels))
        self.cam_uses = nn.ModuleList(ChannelAttentionScale() for _ in range(levels))
        self.deform_convs = nn.ModuleList(DeformConvPack(channels, channels) for _ in range(levels))

    def _self_part(self, k: int, x: torch.Tensor, m_self: torch.Tensor) -> torch.Tensor:
        g_c = self.cam_uses[k].gamma
        return self.pams[k](x) + g_c * apply_channel_map(m_self, x) + 3.0 * x

    def cache_template(self, zs: List[torch.Tensor]) -> List[TemplateCache]:
        out = []
        for k, z in enumerate(zs):
            m = channel_map(z)
            out.append(TemplateCache(z, self._self_part(k, z, m), m))
        return out

    def forward_cached(self, cache: List[TemplateCache], xs: List[torch.Tensor]
                       ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Enhance template (from its cache) and search features of all levels."""
        zs_out, xs_out = [], []
        for k, (c, x) in enumerate(zip(cache, xs)):
            g_c = self.cam_uses[k].gamma
            m_x = channel_map(x)
            z_e = c.base + g_c * apply_channel_map(m_x, c.feature)
            x_e = self._self_part(k, x, m_x) + g_c * apply_channel_map(c.channel, x)
            zs_out.append(self.deform_convs[k](z_e))
            xs_out.append(self.deform_convs[k](x_e))
        return zs_out, xs_out

    def forward(self, zs: List[torch.Tensor], xs: List[torch.Tensor]) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        if len(zs) != len(self.pams) or len(xs) != len(self.pams):
            raise ValueError(f"FeatureEnhance expects {len(self.pams)} levels, got {len(zs)} / {len(xs)}")
        return self.forward_cached(self.cache_template(zs), xs)
