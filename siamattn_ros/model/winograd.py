"""Winograd F(m×m, 3×3) convolution for the CPU inference path: the big stride-1 3×3 convs with fewer multiplies.

Most of the paper model's per-frame FLOPs are stride-1 3×3 convs on the 31×31 maps (ResNet-50 layers 3-4 with
dilation 2 / 4, their 3×3 projection shortcuts, the RPN and fusion search convs), where oneDNN's direct convolution
is compute bound. F(2×2, 3×3) needs 16 multiplies per 4 outputs instead of 36 (2.25× fewer); its transforms only
add, subtract and halve, so float32 results stay within ~1e-6 relative of the direct conv (F(4×4, 3×3): 4× fewer,
with larger transform constants, ~1e-5).

A dilated conv is a dense 3×3 conv on each of the d² interleaved sub-grids of its input, so the same transforms serve
every dilation (the tiles are cut with a strided view). Weights are transformed once, when the module is built.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from siamattn_ros.model.conv_wrapper import ConvWrapper

# Transform matrices (Lavin & Gray 2016): B^T (t×t), G (t×3), A^T (m×t), t = m + 2.
_MATS = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
         [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
         [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]),
}


def _mats(m: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if m not in _MATS:
        raise ValueError(f"Winograd output tile must be one of {sorted(_MATS)}, got {m}")
    bt, g, at = (torch.tensor(v, dtype=torch.float64) for v in _MATS[m])
    return bt, g, at


def transform_weight(weight: torch.Tensor, m: int = 2) -> torch.Tensor:
    """(K, C, 3, 3) conv weight -> (t², K, C) Winograd-domain weight (computed in float64, returned float32)."""
    if weight.dim() != 4 or weight.shape[2:] != (3, 3):
        raise ValueError(f"Winograd needs a (K, C, 3, 3) weight, got {tuple(weight.shape)}")
    _, g, _ = _mats(m)
    u = torch.einsum("ai,kcij,bj->abkc", g, weight.detach().double().cpu(), g)
    t = m + 2
    return u.reshape(t * t, weight.size(0), weight.size(1)).float().contiguous()


class WinogradKernel:
    """The input/output transform matrices of one tile size as Kronecker products."""

    def __init__(self, m: int) -> None:
        bt, _, at = _mats(m)
        self.m, self.t = m, m + 2
        self._bk = torch.kron(bt, bt)  # (t², t²): vec(B^T d B) = (B^T ⊗ B^T) vec(d)
        self._ak = torch.kron(at, at)  # (m², t²)
        self._cache: dict = {}

    def mats(self, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        key = (like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = (self._bk.to(like.device, like.dtype), self._ak.to(like.device, like.dtype))
        return self._cache[key]

    def conv(self, x: torch.Tensor, u: torch.Tensor, dilation: int, padding: int) -> torch.Tensor:
        """Stride-1 3×3 conv of x (N, C, H, W) with transformed weight u (t², K, C); padding 0 or = dilation.

        A dilation-d conv is a dense 3×3 conv on each of the d² interleaved sub-grids x[..., r::d, s::d]; the tiles
        of all sub-grids are cut from one padded copy of x with a strided view (no space-to-batch copy), and the
        outputs are interleaved back in the same single copy that un-tiles them.
        """
        m, t, d = self.m, self.t, dilation
        n, c, h, w = x.shape
        ho, wo = h + 2 * padding - 2 * d, w + 2 * padding - 2 * d
        # per sub-grid output side, in tiles of m
        th, tw = -(-(-(-ho // d)) // m), -(-(-(-wo // d)) // m)
        hp, wp = d * (m * th + 2), d * (m * tw + 2)  # padded input extent the tiles read
        x = F.pad(x, (padding, wp - w - padding, padding, hp - h - padding))
        sn, sc, sh, sw = x.stride()
        # tiles[n, c, r, i, a, s, j, b] = x[n, c, r + d·(m·i + a), s + d·(m·j + b)]
        tiles = x.as_strided((n, c, d, th, t, d, tw, t), (sn, sc, sh, d * m * sh, d * sh, sw, d * m * sw, d * sw))
        p = n * d * d * th * tw
        k = u.size(1)
        bk, ak = self.mats(x)
        # Gathered with the tile's t×t values innermost: a copy of runs of t·d consecutive input floats (the other
        # order, tile index innermost, copied 1-2 floats at a time: 18 vs 2 ms for 512 channels at dilation 4).
        # Tiles in (n, i, r, j, s) order, so that the sub-grid index s is innermost when they are un-tiled.
        v = torch.mm(bk, tiles.permute(1, 0, 3, 2, 6, 5, 4, 7).reshape(c * p, t * t).t()).view(t * t, c, p)
        prod = torch.bmm(u, v)  # (t², K, P): the multiplies
        y = torch.mm(ak, prod.view(t * t, k * p))  # (m², K·P)
        # y[a, b, k, n, i, r, j, s] -> out[n, k, d·(m·i + a) + r, d·(m·j + b) + s]
        y = y.view(m, m, k, n, th, d, tw, d).permute(3, 2, 4, 0, 5, 6, 1, 7).reshape(n, k, th * m * d, tw * m * d)
        return y[:, :, :ho, :wo]


_KERNELS = {m: WinogradKernel(m) for m in _MATS}
# Inputs with fewer positions (the 7×7 / 15×15 template maps) use the direct conv; the 16×16 maps of the mask head
# already gain (256→256: 3.8 vs 4.9 ms).
MIN_POSITIONS = 16 * 16


def winograd_conv3x3(x: torch.Tensor, u: torch.Tensor, bias: Optional[torch.Tensor] = None, dilation: int = 1,
                     padding: int = 1, m: int = 2) -> torch.Tensor:
    """Stride-1 3×3 conv (groups 1) with a Winograd-transformed weight; padding 0 or equal to dilation."""
    if padding not in (0, dilation):
        raise ValueError(f"Winograd conv supports padding 0 or padding == dilation, got padding {padding}, "
                         f"dilation {dilation}")
    y = _KERNELS[m].conv(x, u, dilation, padding)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


class WinogradConv2d(ConvWrapper):
    """Drop-in inference replacement of a stride-1, groups-1 3×3 nn.Conv2d (padding 0 or == dilation), float32 CPU.

    Keeps the original conv for anything else (other devices / dtypes, autograd) and uses it there.
    """

    def __init__(self, conv: nn.Conv2d, m: Optional[int] = None) -> None:
        if not eligible(conv):
            raise ValueError(f"conv not eligible for Winograd: {conv}")
        super().__init__(conv)
        self.m = DEFAULT_TILE if m is None else m
        self.dilation = conv.dilation[0]
        self.padding = conv.padding[0]
        self.register_buffer("u", transform_weight(conv.weight, self.m), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if not self.fast_path(x) or self.u.device != x.device:
            return c(x)
        if x.size(2) * x.size(3) < MIN_POSITIONS:  # a few tiles (template maps): the transforms would dominate
            return torch.mkldnn_convolution(x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups)
        return winograd_conv3x3(x, self.u, c.bias, self.dilation, self.padding, self.m)


# F(4×4): fewest multiplies, and the fastest wherever Winograd pays at all. Measured, 1 thread, direct / F(2) / F(4)
# ms: on the paper model's 31×31 maps 1024→2048 dilation 2: 587 / 428 / 245; 512→512 dilation 4: 87 / 66 / 57;
# 256→256 dilation 2: 18 / 19 / 13; 256→768 no padding: 48 / 53 / 33; 64→192 no padding: 3.5 / 5.5 / 2.9; on 16×16,
# 256→256: 4.9 / 4.1 / 3.8.
DEFAULT_TILE = 4


# Winograd pays from this many input × output channels (64→192: 2.9 vs 3.5 ms, 96→96: 1.9 vs 2.7 ms); below it
# the transforms cost what the GEMM saves (64→64 on 31×31: 1.65 vs 1.37 ms).
MIN_CHANNEL_PRODUCT = 2 ** 13


def worthwhile(conv: nn.Conv2d) -> bool:
    """Winograd pays off from MIN_CHANNEL_PRODUCT input × output channels up."""
    return eligible(conv) and conv.in_channels * conv.out_channels >= MIN_CHANNEL_PRODUCT


def eligible(conv: nn.Module) -> bool:
    """A 3×3, stride-1, groups-1 conv with padding 0 (dilation 1) or padding == dilation."""
    if not isinstance(conv, nn.Conv2d) or isinstance(conv, WinogradConv2d):
        return False
    d, p = conv.dilation, conv.padding
    return (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.groups == 1 and d[0] == d[1]
            and isinstance(p, tuple) and p[0] == p[1] and (p[0] == d[0] or (p[0] == 0 and d[0] == 1))
            and conv.padding_mode == "zeros")
