"""Inference-time preparation: fold BatchNorm into the preceding convs, pick fast kernels, move / cast the model."""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from siamattn_ros.model.conv_wrapper import ONEDNN_MIN_IN_CHANNELS, ConvWrapper
from siamattn_ros.model.dsa import SpatialSelfAttention
from siamattn_ros.model.fusion import ConvModule, FeatureFusionNeck
from siamattn_ros.model.mobilenet import MobileNetV2Backbone
from siamattn_ros.model.resnet_atrous import Bottleneck, ResNet50Atrous
from siamattn_ros.model.winograd import WinogradConv2d, worthwhile as winograd_worthwhile
from siamattn_ros.model.xcorr import xcorr_depthwise


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into ``conv`` in place (adds a bias when the conv had none)."""
    if conv.out_channels != bn.num_features:
        raise ValueError(f"cannot fold BN({bn.num_features}) into a conv with {conv.out_channels} outputs")
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * scale + bn.bias
        if conv.bias is None:
            conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype))
        else:
            conv.bias.copy_(new_bias)


def _fold_sequential(seq: nn.Sequential) -> int:
    n = 0
    for i in range(len(seq) - 1):
        if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
            fold_bn(seq[i], seq[i + 1])
            seq[i + 1] = nn.Identity()
            n += 1
    return n


def _fold_input_normalisation(bb: MobileNetV2Backbone) -> None:
    """Fold BGR->RGB and ImageNet mean/std into the stem conv. Exact because the stem conv has no padding."""
    conv = bb.features[0][0]
    if conv.padding != (0, 0):
        raise ValueError(f"stem conv padding {conv.padding}: normalisation folding needs padding 0")
    with torch.no_grad():
        w_rgb = conv.weight  # (out, 3 rgb, k, k)
        mean = bb.input_mean_bgr.flatten().flip(0).to(w_rgb.dtype)  # rgb order
        std = bb.input_std_bgr.flatten().flip(0).to(w_rgb.dtype)
        w = w_rgb / std.view(1, 3, 1, 1)
        bias = -(w * mean.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
        if conv.bias is not None:
            bias = bias + conv.bias
        conv.weight.copy_(w.flip(1))  # the folded conv reads BGR input directly
        conv.bias = nn.Parameter(bias)
    bb.normalize_input = False


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """Fold every Conv->BN pair (eval statistics) in place; returns the model. Outputs are unchanged up to float
    rounding. The fused model cannot be trained or saved (its state_dict keys differ)."""
    if getattr(model, "fused_for_inference", False):
        return model
    model.eval()
    for m in list(model.modules()):
        if isinstance(m, Bottleneck):
            for c, b in (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")):
                fold_bn(getattr(m, c), getattr(m, b))
                setattr(m, b, nn.Identity())
        elif isinstance(m, ResNet50Atrous):
            fold_bn(m.conv1, m.bn1)
            m.bn1 = nn.Identity()
        elif isinstance(m, ConvModule):
            fold_bn(m.conv, m.bn)
            setattr(m, m.bn_name, nn.Identity())
        elif isinstance(m, nn.Sequential):
            _fold_sequential(m)
    for m in model.modules():
        if isinstance(m, MobileNetV2Backbone) and m.normalize_input:
            _fold_input_normalisation(m)
    remaining = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if remaining:
        raise RuntimeError(f"BatchNorm layers left unfused: {remaining[:5]}")
    model.fused_for_inference = True
    if hasattr(model, "reset"):
        model.reset()
    return model


class OneDnnConv2d(ConvWrapper):
    """An nn.Conv2d run through oneDNN's convolution on float32 CPU tensors without autograd.

    PyTorch sends single-threaded batch-1 1×1 convs to its native GEMM path, which runs at ~60 % of oneDNN's
    speed on this CPU (measured 33 vs 60 GFLOP/s for a 2048→512 1×1 conv on 31×31); anything else (other devices,
    dtypes, autograd) uses the wrapped conv.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"OneDnnConv2d needs numeric zero padding, got {conv}")
        super().__init__(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if not self.fast_path(x):
            return c(x)
        return torch.mkldnn_convolution(x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups)


class StrideKernelDeconv(nn.Module):
    """A ConvTranspose2d whose stride equals its kernel (no padding, groups 1): each input pixel writes its own
    k×k output block, so the layer is one GEMM (C_in → C_out·k²) and a pixel shuffle. ~1.5x faster than PyTorch's
    CPU transposed conv for the mask head's 16×16 → 64×64 upsampling; equal up to float rounding."""

    def __init__(self, deconv: nn.ConvTranspose2d) -> None:
        super().__init__()
        if not _stride_kernel(deconv):
            raise ValueError(f"StrideKernelDeconv needs stride == kernel, padding 0, groups 1: {deconv}")
        self.deconv = deconv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.deconv
        if torch.is_grad_enabled() or x.dim() != 4:
            return d(x)
        n, c, h, w = x.shape
        kh, kw = d.kernel_size
        cout = d.out_channels
        # weight (C_in, C_out, kh, kw): out[n, o, kh·i + a, kw·j + b] = sum_c x[n, c, i, j] w[c, o, a, b] + bias[o]
        y = torch.matmul(d.weight.reshape(c, cout * kh * kw).t(), x.reshape(n, c, h * w))
        y = y.view(n, cout, kh, kw, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, cout, h * kh, w * kw)
        return y if d.bias is None else y + d.bias.view(1, -1, 1, 1)


try:  # a private helper (resolved once, not per frame): without it, assume no dispatch mode is ever active
    from torch.utils._python_dispatch import _get_current_dispatch_mode
except ImportError:  # pragma: no cover
    def _get_current_dispatch_mode() -> None:
        return None


def _dispatch_mode_active() -> bool:
    return _get_current_dispatch_mode() is not None


class FrozenGraph(nn.Module):
    """A module run as a frozen TorchScript graph optimised for oneDNN (``torch.jit.optimize_for_inference``:
    blocked layouts kept between convs, conv + activation fused) on float32 CPU tensors without autograd.

    Used for the MobileNetV2 backbone, whose many small (depth-wise and 1×1) convs spend as much time in layout
    changes and dispatch as in arithmetic: 26 vs 38 ms per 255×255 crop with one thread here (eager with channels-last
    and oneDNN 1×1 convs), ~1e-6 relative. One graph per input shape and memory layout (inputs of at least
    ``min_positions`` pixels), traced on first use; the weights are captured then, so call ``clear()`` after
    changing them. Anything else runs the eager module.
    """

    def __init__(self, module: nn.Module, min_positions: int = 0) -> None:
        super().__init__()
        self.module = module
        self.min_positions = min_positions  # smaller inputs (H·W) run eagerly: no graph is traced for them
        self._graphs: dict = {}
        self.train(module.training)

    def clear(self) -> None:
        self._graphs.clear()

    def _graph(self, x: torch.Tensor) -> Optional[nn.Module]:
        key = (tuple(x.shape), x.is_contiguous())
        if key not in self._graphs:
            self._graphs[key] = self._build(x)
        return self._graphs[key]

    def _build(self, x: torch.Tensor) -> Optional[nn.Module]:
        """The optimised graph for inputs like `x`, or None (eager) where this torch cannot build one: TorchScript
        is deprecated since torch 2.x (still present in 2.14, which warns on every call we make here)."""
        try:
            # Traced outside inference mode (inference tensors cannot be traced) on a copy of the input.
            with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                traced = torch.jit.trace(self.module.eval(), x.clone(), check_trace=False, strict=False)
                return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        except (AttributeError, RuntimeError) as exc:
            warnings.warn(f"FrozenGraph: running {type(self.module).__name__} eagerly, TorchScript failed: {exc}")
            return None

    def forward(self, x: torch.Tensor):  # the wrapped module's output type
        if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_grad_enabled() or self.training \
                or _dispatch_mode_active() \
                or x.size(-1) * x.size(-2) < self.min_positions:  # FlopCounterMode must see the eager ops
            return self.module(x)
        graph = self._graph(x)
        return self.module(x) if graph is None else graph(x)


class SeparableMaxPool2d(nn.Module):
    """An nn.MaxPool2d (no dilation, floor mode, no indices) as a max over k row slices, then over k column slices:
    the same values (a max is exact; -inf padding as PyTorch's), 2.3 vs 9.8 ms for the paper model's 64×125×125
    stem pool on one CPU thread, where PyTorch's NCHW max pool is not vectorised."""

    def __init__(self, pool: nn.MaxPool2d) -> None:
        super().__init__()
        if not _separable_pool(pool):
            raise ValueError(f"SeparableMaxPool2d needs dilation 1, floor mode and no indices: {pool}")
        self.pool = pool
        self.k, self.s, self.p = (_pair(v)[0] for v in (pool.kernel_size, pool.stride or pool.kernel_size,
                                                        pool.padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or torch.is_grad_enabled() or not x.is_floating_point():
            return self.pool(x)
        k, s, p = self.k, self.s, self.p
        if p:
            x = F.pad(x, (p, p, p, p), value=float("-inf"))
        n = (x.size(2) - k) // s + 1  # output rows (square kernel, stride and padding)
        m = (x.size(3) - k) // s + 1
        rows = x[:, :, 0:(n - 1) * s + 1:s]
        for i in range(1, k):
            rows = torch.maximum(rows, x[:, :, i:i + (n - 1) * s + 1:s])
        out = rows[..., 0:(m - 1) * s + 1:s]
        for i in range(1, k):
            out = torch.maximum(out, rows[..., i:i + (m - 1) * s + 1:s])
        return out


def _pair(v) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _separable_pool(m: nn.Module) -> bool:
    if type(m) is not nn.MaxPool2d or m.ceil_mode or m.return_indices:
        return False
    k, s, p, d = (_pair(v) for v in (m.kernel_size, m.stride or m.kernel_size, m.padding, m.dilation))
    return k[0] == k[1] and s[0] == s[1] and p[0] == p[1] and d == (1, 1)


# The backbone graph is traced for the search crop (255², every frame) only: the 127² template crop runs once per
# init, where the graph would save 5 ms (10.5 vs 15.6 ms) but tracing it costs 0.8 s of every start-up.
FROZEN_MIN_POSITIONS = 200 * 200


def _stride_kernel(m: nn.Module) -> bool:
    return (type(m) is nn.ConvTranspose2d and m.stride == m.kernel_size and m.padding == (0, 0)
            and m.output_padding == (0, 0) and m.groups == 1 and m.dilation == (1, 1))


class _SharedConv(nn.Module):
    """Several convs with the same geometry applied to the same tensor, run as one conv with their output channels
    concatenated (one bigger GEMM instead of several). The result for the last input is kept until a different (or
    modified) input arrives; each member returns its own channel slice."""

    def __init__(self, convs: Sequence[nn.Conv2d]) -> None:
        super().__init__()
        c0 = convs[0]
        conv = nn.Conv2d(c0.in_channels, sum(c.out_channels for c in convs), c0.kernel_size, c0.stride, c0.padding,
                         c0.dilation, bias=True).to(c0.weight.device, c0.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(torch.cat([c.weight for c in convs]))
            conv.bias.copy_(torch.cat([c.bias if c.bias is not None else torch.zeros(c.out_channels,
                                       device=c.weight.device, dtype=c.weight.dtype) for c in convs]))
        self.conv = conv
        self.bounds = []
        start = 0
        for c in convs:
            self.bounds.append((start, start + c.out_channels))
            start += c.out_channels
        self._key: Optional[Tuple[torch.Tensor, int]] = None
        self._out: Optional[torch.Tensor] = None

    @staticmethod
    def _version(x: torch.Tensor) -> int:
        return -1 if x.is_inference() else x._version  # inference tensors cannot be modified in place later

    def full(self, x: torch.Tensor) -> torch.Tensor:
        """All members' channels for input x (computed once per input)."""
        if self._key is None or self._key[0] is not x or self._key[1] != self._version(x):
            self._key, self._out = None, None  # drop the last frame's tensors first
            self._out = self.conv(x)
            self._key = (x, self._version(x))
        return self._out

    def output(self, x: torch.Tensor, index: int) -> torch.Tensor:
        lo, hi = self.bounds[index]
        return self.full(x)[:, lo:hi]  # a view of this member's channels only


class _SharedConvMember(nn.Module):
    def __init__(self, group: _SharedConv, index: int, original: nn.Conv2d, owner: bool) -> None:
        super().__init__()
        if owner:
            self.group = group  # registered once, so .to() / modules() see it
        else:
            object.__setattr__(self, "_group_ref", group)
        self.index = index
        self.original = original

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.original(x)
        group = self.group if "group" in self._modules else self._group_ref
        return group.output(x, self.index)


class _MergedXCorr:
    """The depth-wise xcorrs of a level's RPN cls / loc and fusion blocks as one depth-wise conv over their
    concatenated channels (one oneDNN call instead of three: 0.39 vs 0.75 ms for 3×64 channels on 29×29). Called as
    ``merged(z, x)`` by each block (``DepthwiseXCorr.merged_xcorr``), it returns that block's channels of the
    correlation; the result is kept until other inputs arrive. Needs the blocks' conv_search / conv_kernel merged
    (_SharedConv) and followed by parameter-free layers only (folded BN, ReLU), which are applied to all channels."""

    def __init__(self, search: _SharedConv, kernel: _SharedConv, search_tail: nn.Module, kernel_tail: nn.Module,
                 index: int, shared: Optional[dict] = None) -> None:
        self.search, self.kernel = search, kernel
        self.search_tail, self.kernel_tail = search_tail, kernel_tail
        self.index = index
        self.shared = {} if shared is None else shared  # one result cache per level, shared by the three blocks

    def __call__(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # The merged convs keep their output while their input is unchanged, so the same output objects mean the
        # same correlation.
        search, kernel = self.search.full(x), self.kernel.full(z)
        cached = self.shared.get("from")
        if cached is None or cached[0] is not search or cached[1] is not kernel:
            self.shared.clear()  # drop the last frame's tensors first
            self.shared["out"] = xcorr_depthwise(self.search_tail(search), self.kernel_tail(kernel))
            self.shared["from"] = (search, kernel)
        lo, hi = self.search.bounds[self.index]
        return self.shared["out"][:, lo:hi]


def _parameter_free(seq: nn.Sequential) -> bool:
    return all(type(m) in (nn.Identity, nn.ReLU) for m in seq)


def _share_xcorr_input_convs(model: nn.Module) -> int:
    """Per DSA level, the RPN cls / loc and the fusion neck's xcorr branches all start with a 3×3 conv of the same
    enhanced search map (and of the same template map): run each triple as one conv. Returns the groups made."""
    rpn, fusion = getattr(model, "rpn_head", None), getattr(model, "feature_fusion", None)
    levels = getattr(rpn, "levels", None)
    if rpn is None or fusion is None or levels is None or len(levels) != len(fusion.xcorr):
        return 0
    made = 0
    for j, lvl in enumerate(levels):
        head = getattr(rpn, f"rpn{lvl}")
        blocks = [head.cls, head.loc, fusion.xcorr[j]]
        for branch in ("conv_search", "conv_kernel"):
            seqs = [getattr(b, branch) for b in blocks]
            convs = [sq[0] for sq in seqs]
            if not all(type(c) is nn.Conv2d for c in convs) or len({(c.in_channels, c.kernel_size, c.stride,
                                                                       c.padding, c.dilation, c.groups)
                                                                      for c in convs}) != 1 or convs[0].groups != 1:
                continue
            group = _SharedConv(convs)
            for i, sq in enumerate(seqs):
                sq[0] = _SharedConvMember(group, i, convs[i], owner=i == 0)
            made += 1
        searches, kernels = [b.conv_search for b in blocks], [b.conv_kernel for b in blocks]
        if all(isinstance(sq[0], _SharedConvMember) and _parameter_free(sq[1:]) for sq in searches + kernels):
            shared: dict = {}
            s_group, k_group = searches[0][0].group, kernels[0][0].group
            if s_group.bounds == k_group.bounds:
                for i, b in enumerate(blocks):
                    object.__setattr__(b, "merged_xcorr", _MergedXCorr(s_group, k_group, searches[0][1:],
                                                                       kernels[0][1:], i, shared))
    return made


def speed_up_cpu(model: nn.Module, winograd: bool = True) -> nn.Module:
    """Exact inference rewrites for the CPU, in place (call after BN folding; outputs stay within float32 rounding,
    ~1e-5 relative end to end):

    * the RPN cls / loc and fusion xcorr branches of each level run their shared-input 3×3 convs as one conv, and
      their depth-wise correlations as one depth-wise conv;
    * stride-1 3×3 convs from winograd.MIN_CHANNEL_PRODUCT input × output channels up -> Winograd (WinogradConv2d,
      on maps of at least winograd.MIN_POSITIONS), other dense convs from ONEDNN_MIN_IN_CHANNELS input channels ->
      oneDNN (OneDnnConv2d); grouped / depth-wise convs and 1-output convs stay as they are;
    * the mask head's stride-4 transposed conv -> one GEMM + pixel shuffle (StrideKernelDeconv);
    * max pooling -> row then column maxima (SeparableMaxPool2d);
    * the fusion neck applies the 31×31 levels' lateral 1×1 convs before upsampling them (FeatureFusionNeck);
    * the spatial attention runs over blocks of query positions (SpatialSelfAttention.blocked);
    * the MobileNetV2 backbone runs as a frozen oneDNN TorchScript graph (FrozenGraph).
    """
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        raise ValueError("speed_up_cpu needs BatchNorm folded first (fuse_for_inference)")
    model.eval()
    _share_xcorr_input_convs(model)
    if isinstance(getattr(model, "backbone", None), MobileNetV2Backbone):
        model.backbone = FrozenGraph(model.backbone, min_positions=FROZEN_MIN_POSITIONS)
    frozen = {id(m) for g in model.modules() if isinstance(g, FrozenGraph) for m in g.modules()}
    for parent in list(model.modules()):
        if isinstance(parent, (WinogradConv2d, OneDnnConv2d, StrideKernelDeconv, SeparableMaxPool2d)) \
                or id(parent) in frozen:
            continue
        for name, child in list(parent.named_children()):
            if _stride_kernel(child):
                setattr(parent, name, StrideKernelDeconv(child))
            if _separable_pool(child):
                setattr(parent, name, SeparableMaxPool2d(child))
            if type(child) is not nn.Conv2d or child.groups != 1 or child.out_channels < 16:
                continue
            if winograd and winograd_worthwhile(child):
                setattr(parent, name, WinogradConv2d(child))
            elif child.in_channels >= ONEDNN_MIN_IN_CHANNELS and child.padding_mode == "zeros" \
                    and not isinstance(child.padding, str):
                setattr(parent, name, OneDnnConv2d(child))
    for m in model.modules():
        if isinstance(m, FeatureFusionNeck):
            m.lateral_before_resize = True
        if isinstance(m, SpatialSelfAttention):
            m.blocked = True
    return model


def prepare_for_inference(model: nn.Module, device: Union[str, torch.device] = "cpu", half: bool = False,
                          fuse: bool = True, channels_last: Optional[bool] = None,
                          cpu_rewrites: Optional[bool] = None) -> nn.Module:
    """Eval mode, BN folding, move to ``device``, optional fp16 (CUDA only), exact CPU rewrites.

    channels_last: None = automatic: on CUDA only. (On the CPU it helped the eager MobileNetV2 backbone, -13 % per
    frame; with that backbone run as a FrozenGraph the rest of the model is faster in NCHW: 127.5 vs 134.5 ms per
    frame, 1 thread, side by side; the ResNet-50 model was never faster in channels-last, +2 %.)
    cpu_rewrites: None = automatic: on the CPU in float32 with fuse (speed_up_cpu: Winograd, oneDNN, merged convs).
    """
    device = torch.device(device)
    if half and device.type != "cuda":
        raise ValueError(f"half precision is only supported on CUDA, not on {device}")
    model.eval()
    if fuse:
        fuse_for_inference(model)
    if cpu_rewrites is None:
        cpu_rewrites = fuse and device.type == "cpu" and not half
    if cpu_rewrites:
        speed_up_cpu(model)
    model.to(device)
    if half:
        model.half()
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model
