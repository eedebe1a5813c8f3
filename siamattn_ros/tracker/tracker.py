"""The tracking engine: SiamAttn inference over NumPy BGR frames (spec §10), plus confidence states and long-term
re-detection for robots.

Per frame, data stays on the model's device from crop to result: the search crop is made with OpenCV on the CPU
(one copy into the network input) or, on CUDA, from one upload of the frame; scores, decoding, penalty, window,
best anchor, both RoIs, the box decode and the mask paste run as torch ops on the device; only ten numbers and the
small binary mask region come back. On CUDA the fixed-shape part (network + decode + box refinement, and the mask
head) is captured into CUDA graphs after each init. The captured steps must not synchronise with the host (no
.item(), bool(tensor) or indexing with a 0-dim tensor): capture fails on any of them. Graph capture needs a GPU, so the
CPU test suite runs these steps on fake CUDA tensors instead (siamattn_ros.tools.gpu_check.fake_cuda_probe).
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch import nn

from siamattn_ros.interface.convert import check_box
from siamattn_ros.model.anchors import flat_anchors
from siamattn_ros.tracker import decode as D
from siamattn_ros.tracker import mask as M
from siamattn_ros.tracker.colour_model import ColourModel
from siamattn_ros.tracker.config import RUNTIME_FIELDS, TrackerConfig
from siamattn_ros.tracker.crop import context_side, crop_cv, crop_torch, to_tensor
from siamattn_ros.tracker.result import TrackResult, TrackState
from siamattn_ros.tracker.size_check import TemplateSizeCheck
from siamattn_ros.tracker.state import ConfidenceStateMachine, lost_scan_offset
from siamattn_ros.tracker.template_search import TemplateBoxSearch

def check_image(image: Any) -> np.ndarray:
    """Validate a BGR uint8 H×W×3 frame; raise ValueError naming the problem."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy.ndarray (H, W, 3) uint8 BGR, got {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if image.ndim == 2:
        raise ValueError(f"image is single-channel (grey) with shape {image.shape}; convert it to BGR first, "
                         f"e.g. cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)")
    if image.ndim != 3 or image.shape[2] != 3:
        hint = "; drop alpha with cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)" if image.ndim == 3 and image.shape[2] == 4 \
            else ""
        raise ValueError(f"image must have shape (H, W, 3) BGR, got {image.shape}{hint}")
    if image.dtype != np.uint8:
        raise ValueError(f"image dtype must be uint8 (BGR 0..255), got {image.dtype}")
    if image.strides[2] != 1 or image.strides[1] != 3 or image.strides[0] < 0:
        image = np.ascontiguousarray(image)  # flipped/strided views: OpenCV and torch need packed rows
    return image


def clip_box(cx: float, cy: float, w: float, h: float, width: int, height: int) -> np.ndarray:
    """Axis-aligned (x, y, w, h) of the state box intersected with the image [0, W] × [0, H]."""
    x1, y1 = max(0.0, cx - w / 2), max(0.0, cy - h / 2)
    x2, y2 = min(float(width), cx + w / 2), min(float(height), cy + h / 2)
    return np.array([x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1)], np.float64)


def clamp_center(cx: float, cy: float, width: int, height: int) -> Tuple[float, float]:
    """A state centre kept inside the image (step 10's clip)."""
    return min(max(cx, 0.0), width - 1.0), min(max(cy, 0.0), height - 1.0)


def clamp_size(w: float, h: float, width: int, height: int) -> Tuple[float, float]:
    """A state size of at least 10 px and less than the image (step 10's clip)."""
    return min(max(w, 10.0), width - 1.0), min(max(h, 10.0), height - 1.0)


def amp_dtype_of(precision: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    """Autocast dtype for "fp32"/None (no autocast), "fp16", "bf16" or a torch dtype; ValueError naming the value."""
    names = {None: None, "fp32": None, "float32": None, "fp16": torch.float16, "float16": torch.float16,
             "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if isinstance(precision, torch.dtype):
        if precision == torch.float32:
            return None
        if precision in (torch.float16, torch.bfloat16):
            return precision
    elif precision in names:
        return names[precision]
    raise ValueError(f"precision must be one of fp32, fp16, bf16 (or torch.float16 / torch.bfloat16), "
                     f"got {precision!r}")


@dataclass(frozen=True)
class SearchWindow:
    """Where a frame is searched (spec §10.3 step 1): the crop's centre and side in source pixels, the exemplar
    scale (crop pixels per source pixel), and whether the LOST scan chose it (weaker cosine window)."""

    center: Tuple[float, float]
    side: int
    scale_z: float
    lost: bool
    ring: bool = False  # the LOST scan moved it off the last position

    @property
    def origin(self) -> Tuple[float, float]:
        """Top-left corner of the search crop in source pixels."""
        return self.center[0] - self.side / 2.0, self.center[1] - self.side / 2.0


@dataclass(frozen=True)
class SearchResult:
    """A frame's search step as copied from the device: the chosen anchor's RPN foreground score and scale/ratio
    penalty, its refined box (centre x, y, w, h) in crop pixels (and the RPN box it was refined from), and the
    published confidence (the box-quality head's IoU estimate where the model has the head: it drops when the box is
    off the target, where the RPN score often stays high; else the RPN score). finite is False when the network
    produced NaN/inf (fp16 overflow, broken weights): then every value is 0, a frame with no evidence, so NaN never
    reaches the target state."""

    score: float
    penalty: float
    box: Tuple[float, float, float, float]
    confidence: float
    rpn_box: Tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # before refinement (diagnostics, tests)
    finite: bool = True

    @classmethod
    def from_device(cls, out: torch.Tensor, quality_is_confidence: bool) -> "SearchResult":
        vals = out.cpu().tolist()  # the one sync per frame
        if not all(math.isfinite(v) for v in vals):
            return cls(score=0.0, penalty=0.0, box=(0.0, 0.0, 0.0, 0.0), confidence=0.0, finite=False)
        score, penalty, rx, ry, rw, rh, cx, cy, w, h, quality = vals
        return cls(score=score, penalty=penalty, box=(cx, cy, w, h),
                   confidence=quality if quality_is_confidence else score, rpn_box=(rx, ry, rw, rh))


class _CudaGraphed:
    """A function of fixed-shape tensors replayed from a CUDA graph (inputs copied into static buffers)."""


class _CudaGraphed:
    """A function of fixed-shape tensors replayed from a CUDA graph (inputs copied into static buffers).

    Capture and replay run with `device` as the current CUDA device: the node calls the tracker from a worker
    thread, whose current device is cuda:0 whatever the tracker's device is."""

    def __init__(self, fn: Callable[..., torch.Tensor], device: torch.device, *example: torch.Tensor) -> None:
        self.device = device
        with torch.cuda.device(device):
            self.inputs = [e.clone() for e in example]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up on a side stream, as graph capture requires
                for _ in range(2):
                    fn(*self.inputs)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: CUDA calls of other threads (a ROS executor, a second tracker) cannot invalidate the
            # capture; only this thread must not synchronise while capturing.
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.output = fn(*self.inputs)

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        with torch.cuda.device(self.device):
            for buf, a in zip(self.inputs, args):
                buf.copy_(a, non_blocking=True)
            self.graph.replay()
        return self.output


class Tracker:
    """Single-object tracker. ``init(image, box)`` then ``track(image)`` per frame.

    Args:
        model: a SiamAttn-like module with ``template``, ``track``, ``bbox_refine``, ``mask_refine`` and a ``cfg``
            holding the geometry (exemplar_size, instance_size, anchor_stride/ratios/scales, score_size,
            mask_out_size, bbox_stds).
        config: TrackerConfig (paper constants + robot additions). ``self.config`` may be replaced at any time,
            or use ``set_params(**changes)`` (validated); the next frame uses the new values.
        device: torch device for the network and all per-frame tensor work.
        half: fp16 autocast (CUDA only).
        precision: "fp32" (default), "fp16" or "bf16" autocast (weights stay fp32); half=True is "fp16". On the CPU
            autocast runs too (much slower than fp32 there): it lets the CPU test suite exercise the mixed-precision
            code path; ``half=True`` stays CUDA-only as the node documents it.
    """

    def __init__(self, model: nn.Module, config: Optional[TrackerConfig] = None,
                 device: Union[str, torch.device] = "cpu", half: bool = False,
                 precision: Union[None, str, torch.dtype] = None) -> None:
        self.device = torch.device(device)
        self.config = config if config is not None else TrackerConfig()
        self.model = model.eval().to(self.device)
        g = model.cfg
        self.exemplar_size = int(g.exemplar_size)
        self.instance_size = int(g.instance_size)
        self.score_size = int(g.score_size)
        self.mask_size = int(g.mask_out_size)
        self.bbox_stds = tuple(float(s) for s in g.bbox_stds)
        # Device constants made once: no host->device copies inside the (graph-captured) per-frame step.
        self._stds = torch.tensor(self.bbox_stds, dtype=torch.float32, device=self.device)
        self.anchor_stride = int(g.anchor_stride)
        anchors = flat_anchors(self.anchor_stride, g.anchor_ratios, g.anchor_scales, self.score_size)
        self.num_anchors = anchors.shape[1] // (self.score_size ** 2)
        self.anchors = torch.from_numpy(anchors).to(self.device)
        self.window = torch.from_numpy(D.cosine_window(self.score_size, self.num_anchors)).to(self.device)
        self.has_quality_head = getattr(model, "iou_head", None) is not None
        self.last_score = float("nan")  # the RPN score of the last frame (the confidence without a quality head)
        self._cuda = self.device.type == "cuda"
        if half and not self._cuda:
            raise ValueError(f"half=True needs a CUDA device (fp16 autocast), got device {str(self.device)!r}")
        if half and amp_dtype_of(precision) not in (None, torch.float16):
            raise ValueError(f"half=True (fp16) contradicts precision={precision!r}")
        # Autocast dtype (None: fp32). May be changed between tracks: set it before init().
        self.amp_dtype: Optional[torch.dtype] = torch.float16 if half else amp_dtype_of(precision)
        # Crop and mask paste with torch on the device (default on CUDA) instead of OpenCV; may be set on CPU to run
        # the GPU code path in tests.
        self.device_ops = self._cuda
        self._graphs: Dict[str, _CudaGraphed] = {}
        self._graph_failed = False
        # Set profile = True to get a per-stage breakdown in last_timings (synchronises the device per stage).
        self.profile = False
        self.last_timings: Dict[str, float] = {}
        self._init_id = 0
        self._sm = ConfidenceStateMachine()
        self._size_check = TemplateSizeCheck(self.model, self.exemplar_size, self.device, self._autocast)
        self._colour = ColourModel()  # fitted at init when TrackerConfig.colour_mask
        self._box_search = TemplateBoxSearch(self.exemplar_size, self.instance_size, self.anchor_stride)
        self.reset()
        if self.config.warmup:
            self._warmup()

    # --- public API ----------------------------------------------------------------------------------------------
    @property
    def half(self) -> bool:
        """True when the network runs under fp16 autocast."""
        return self.amp_dtype == torch.float16

    @half.setter
    def half(self, value: bool) -> None:
        self.amp_dtype = torch.float16 if value else None

    @property
    def initialized(self) -> bool:
        return self._center is not None

    @property
    def init_id(self) -> int:
        return self._init_id

    @property
    def state_box_xywh(self) -> Optional[np.ndarray]:
        """The internal target state as (x, y, w, h) = (cx - w/2, cy - h/2, w, h), NOT clipped to the image: the
        paper's reported box (spec §10.3 step 11), e.g. for OTB-style evaluation. None before init()."""
        if self._center is None:
            return None
        (cx, cy), (w, h) = self._center, self._size
        return np.array([cx - w / 2.0, cy - h / 2.0, w, h], np.float64)

    @property
    def init_quality(self) -> float:
        """The box-quality head's estimate of the init box on the init frame (NaN until measured: init() measures it
        when reference_confidence > 0, else measure_init_quality()): this target's on-target confidence level, the
        r0 of TrackerConfig.reference_confidence."""
        return self._init_quality

    @property
    def colour_fit(self) -> float:
        """TrackerConfig.colour_mask: how well colour alone found the target on the init frame (IoU of the colour
        model's region with the init box; the mask is trimmed by colour when >= colour_min_fit); NaN when off."""
        return self._colour.fit_iou

    @property
    def template_search_active(self) -> bool:
        """Whether the template search corrects this track's state (TrackerConfig.template_search, and the target
        not enlarged more than template_search_max_zoom in the template; decided at init)."""
        return self._box_search.ready

    @property
    def colour_trim(self) -> bool:
        """True when this target's masks are trimmed by colour (colour_mask on and the init frame's fit enough)."""
        return self._colour.active

    def confidence_scale(self, cfg: Optional[TrackerConfig] = None) -> float:
        """The factor the published confidence gets: reference_confidence / init_quality within [2/3, 1.5], 1 when
        reference_confidence is 0 or there is no init quality."""
        cfg = cfg or self.config
        if cfg.reference_confidence <= 0 or not math.isfinite(self._init_quality) or self._init_quality <= 0:
            return 1.0
        return min(max(cfg.reference_confidence / self._init_quality, 2.0 / 3.0), 1.5)

    def reset(self) -> None:
        """Forget the target (track() raises until the next init())."""
        self._center: Optional[Tuple[float, float]] = None
        self._size: Tuple[float, float] = (0.0, 0.0)
        self._pad_color = np.zeros(3, np.uint8)
        self._frame_size: Tuple[int, int] = (0, 0)
        self._frames = 0
        self._lost_scan_step = 0  # frames spent LOST so far: the position in the LOST scan
        self._init_quality = float("nan")  # the head's estimate of the init box on the init frame
        self._checked_size: Tuple[float, float] = (0.0, 0.0)  # the last size the template check accepted
        self._veto_held = False  # the last check vetoed: the next frame keeps _checked_size unchecked
        self._search_streak = 0  # consecutive frames on which the template search found a clearly better box
        self._sm.reset()
        self._size_check.reset()
        self._box_search.reset()
        self._colour.reset()
        self._graphs = {}

    def set_params(self, **changes: Any) -> TrackerConfig:
        """Change run-time settings (thresholds, penalties, long-term search) from the next frame on; validated."""
        bad = sorted(set(changes) - set(RUNTIME_FIELDS))
        if bad:
            raise ValueError(f"not changeable at run time: {bad}; run-time fields: {list(RUNTIME_FIELDS)}")
        self.config = self.config.replace(**changes)
        return self.config

    @torch.inference_mode()
    def init(self, image: np.ndarray, box_xywh: Sequence[float]) -> TrackResult:
        """Start tracking the object in box_xywh (top-left x, y, width, height, source pixels) of image."""
        image = check_image(image)
        height, width = image.shape[:2]
        x, y, w, h = check_box(box_xywh, width, height)
        self.reset()
        self._center = (x + (w - 1) / 2.0, y + (h - 1) / 2.0)
        self._size = (w, h)
        self._frame_size = (width, height)
        # Mean colour of the first frame, truncated to uint8 as the authors' canvas does (spec §10.1 step 3).
        self._pad_color = np.array(cv2.mean(image)[:3], np.float64).astype(np.uint8)
        s_z = round(self._context_side(1.0))
        z = self._crop(image, self._center, s_z, self.exemplar_size)
        with self._autocast():
            self.model.template(z)
        if self.has_quality_head and self.config.reference_confidence > 0:
            self.measure_init_quality(image)  # one more network pass: only when the scale is used
        self._checked_size = self._size
        if self.config.verify_size:
            self._size_check.set_template(image, self._center, self._size, self.config.context_amount,
                                          self._pad_color)
        if self.config.template_search and \
                self.exemplar_size / self._context_side(1.0) <= self.config.template_search_max_zoom:
            self._set_search_reference(image)
        if self.config.colour_mask:
            self._colour.fit(image, (x, y, w, h), self.config.colour_threshold, self.config.colour_min_fit)
        self._init_id += 1
        if self._cuda and self.config.cuda_graph and not self._graph_failed:
            self._capture_graphs()
        box = clip_box(x + w / 2.0, y + h / 2.0, w, h, width, height)
        return TrackResult(box_xywh=box, polygon=M.box_polygon(box), mask=None, confidence=1.0,
                           state=TrackState.INITIALIZING, init_id=self._init_id, frames_since_init=0)

    @torch.inference_mode()
    def track(self, image: np.ndarray, want_mask: bool = True) -> TrackResult:
        """Locate the target in the next frame. Box, confidence and state do not depend on want_mask.

        Steps (spec §10.3): fit the state to the frame size, choose the search window (the LOST scan in long-term
        mode), crop, search on the device (network, decode, best anchor, box refinement), confidence state, state
        update, reported box; then mask and polygon when asked (and, with box_from_mask, the mask's box as the
        reported box: the mask is then computed on every frame).
        """
        if not self.initialized:
            raise RuntimeError("Tracker.track() called before init(): call init(image, box_xywh) first")
        image = check_image(image)
        cfg = self.config  # one config for the whole frame, even if set_params() swaps it meanwhile
        height, width = image.shape[:2]
        timings: Dict[str, float] = {}
        t0 = time.perf_counter()

        self._fit_state_to_frame(width, height)
        prev_state = self._sm.state
        window = self._search_window(prev_state, cfg, width, height)
        x = self._crop(image, window.center, window.side, self.instance_size)
        t1 = self._tick(timings, "crop", t0)
        found = self._search(x, window, cfg, timings)
        t2 = time.perf_counter()
        if "network" not in timings:  # graph replay or no profiling: network and device decode are one stage
            timings["network"] = (t2 - t1) * 1e3
            timings["decode"] = 0.0

        scale = self.confidence_scale(cfg)
        if scale != 1.0 and found.finite:
            found = dataclasses.replace(found, confidence=min(1.0, found.confidence * scale))
        self.last_score = found.score
        state = self._sm.update(found.confidence, cfg)
        self._update_state(found, window, state, cfg, width, height)
        if cfg.verify_size and self._size_check.ready:
            self._check_size(image, cfg, timings)
        if self._box_search.ready and state != TrackState.LOST and found.finite:
            self._search_box(window, cfg, width, height, timings)
        self._lost_scan_step = self._lost_scan_step + 1 \
            if (state == TrackState.LOST and prev_state == TrackState.LOST) else 0
        self._frames += 1
        (cx, cy), (w, h) = self._center, self._size
        box = clip_box(cx, cy, w, h, width, height)
        t3 = time.perf_counter()
        timings["decode"] += (t3 - t2) * 1e3 - timings.get("size_check", 0.0) - timings.get("template_search", 0.0)

        mask = None
        polygon = M.box_polygon(box)
        if want_mask or cfg.box_from_mask:
            mask, polygon, mask_box = self._mask_and_polygon(image, found, window, state, cfg, box, timings)
            if cfg.box_from_mask:
                box = M.choose_box(box, mask_box)
            if not want_mask:
                mask = None
            self._tick(timings, "mask", t3)
        timings["total"] = (time.perf_counter() - t0) * 1e3
        self.last_timings = timings
        return TrackResult(box_xywh=box, polygon=polygon, mask=mask, confidence=float(found.confidence),
                           state=state,
                           init_id=self._init_id, frames_since_init=self._frames)

    # --- steps -----------------------------------------------------------------------------------------------------
    def _fit_state_to_frame(self, width: int, height: int) -> None:
        """Only when the frame size changed (a smaller frame than the last one): keep the state inside this image
        (step 10's clip). Otherwise the state is used as is, like the paper, including the unclipped init state of
        a box that is partly outside the image or larger than it."""
        if (width, height) == self._frame_size:
            return
        self._center = (min(max(self._center[0], 0.0), width - 1.0), min(max(self._center[1], 0.0), height - 1.0))
        self._size = (min(self._size[0], max(width - 1.0, 1.0)), min(self._size[1], max(height - 1.0, 1.0)))
        self._checked_size = self._size
        self._frame_size = (width, height)

    def _search_window(self, prev_state: TrackState, cfg: TrackerConfig, width: int, height: int) -> SearchWindow:
        """Step 1: s_z from the current size (not rounded), s_x rounded, centred on the state; while LOST in
        long-term mode, the next position of the LOST scan around it (windows centred off-image are skipped: they
        would see only padding)."""
        lost = prev_state == TrackState.LOST and cfg.long_term
        s_z = self._context_side(1.0)
        scale_z = self.exemplar_size / s_z
        s_x = round(s_z * self.instance_size / self.exemplar_size)
        center, ring = self._center, False
        if lost:
            i, j = lost_scan_offset(self._lost_scan_step, cfg.lost_search_rings)
            step = cfg.lost_search_step * 2 * (self.score_size // 2) * self.anchor_stride / scale_z
            cand = (center[0] + i * step, center[1] + j * step)
            if (i, j) != (0, 0) and 0 <= cand[0] < width and 0 <= cand[1] < height:
                center, ring = cand, True
        return SearchWindow(center=center, side=s_x, scale_z=scale_z, lost=lost, ring=ring)

    def _search(self, x: torch.Tensor, window: SearchWindow, cfg: TrackerConfig,
                timings: Dict[str, float]) -> SearchResult:
        """Steps 2-7 on the device (CUDA graph when captured), then the frame's one copy to the host."""
        w, h = self._size
        wi = cfg.lost_window_influence if window.lost else cfg.window_influence
        params = torch.tensor([w * window.scale_z, h * window.scale_z, cfg.penalty_k, wi, cfg.quality_margin],
                              dtype=torch.float32)
        params = params.to(self.device, non_blocking=True)
        if "search" in self._graphs:
            out = self._graphs["search"](x, params)
        else:
            out = self._search_step(x, params, timings)
        return SearchResult.from_device(out, self.has_quality_head)

    @torch.inference_mode()
    def measure_init_quality(self, image: np.ndarray) -> float:
        """The head's estimate of the init box in the search crop of the init frame: call right after init() with
        the same image (init() does it itself when reference_confidence > 0). Stored as init_quality."""
        if not self.has_quality_head:
            raise RuntimeError("measure_init_quality needs a model with a box-quality head (ModelConfig.iou_head)")
        if not self.initialized or self._frames:
            raise RuntimeError("measure_init_quality must follow init() directly (the state must be the init box)")
        image = check_image(image)
        height, width = image.shape[:2]
        window = self._search_window(TrackState.TRACKING, self.config, width, height)
        x = self._crop(image, window.center, window.side, self.instance_size)
        w, h = self._size[0] * window.scale_z, self._size[1] * window.scale_z
        c = (self.instance_size - 1) / 2.0  # the state's centre maps to the crop's centre
        roi = torch.tensor([[0.0, c - w / 2, c - h / 2, c + w / 2, c + h / 2]], device=self.device)
        with self._autocast():
            self.model.track(x)
            q = torch.sigmoid(self.model.box_quality(roi).float())
        self._init_quality = float(q)
        return self._init_quality

    def _update_state(self, found: SearchResult, window: SearchWindow, state: TrackState, cfg: TrackerConfig,
                      width: int, height: int) -> None:
        """Steps 8-10: move the state towards the refined box (size with learning rate penalty·score·lr), clipped
        to the image. Held (unchanged) on a non-finite frame, and in long-term mode while the confidence is below
        lost_threshold or the state is LOST (with lost_follow, a LOST frame searched at the last position and
        scoring >= lost_threshold moves the centre only, by at most one target size)."""
        if not found.finite or (cfg.long_term and found.confidence < cfg.lost_threshold):
            return
        cx_f, cy_f, w_f, h_f = found.box
        x0, y0 = window.origin
        found_center = (cx_f / window.scale_z + x0, cy_f / window.scale_z + y0)
        center = clamp_center(*found_center, width, height)
        w, h = self._size
        if cfg.long_term and state == TrackState.LOST:
            # Only a step of at most one target size: the LOST window is wide and hardly penalises distance, and a
            # farther hit is as likely a look-alike as the target.
            if cfg.lost_follow and not window.ring and math.dist(found_center, self._center) <= math.sqrt(w * h):
                self._center = center
            return
        lr = found.penalty * found.score * cfg.lr
        new_w = w * (1 - lr) + w_f / window.scale_z * lr
        new_h = h * (1 - lr) + h_f / window.scale_z * lr
        self._center = center
        self._size = clamp_size(new_w, new_h, width, height)

    def _check_size(self, image: np.ndarray, cfg: TrackerConfig, timings: Dict[str, float]) -> None:
        """TrackerConfig.verify_size: once the size has moved more than verify_step (relative, width or height) from
        the last size the template check accepted, check the new size against that one; vetoed, the size returns
        to it, and on the next frame it returns to it without a new check. Smaller changes pass unchecked. The check
        costs ~0.2 of a frame: so it runs on at most every other frame (where the network keeps proposing a size
        the template rejects, as on a large planar target), and the size drifts unchecked by at most verify_step."""
        ref = self._checked_size
        if max(abs(a / b - 1.0) for a, b in zip(self._size, ref)) <= cfg.verify_step:
            return
        if self._veto_held:
            self._size, self._veto_held = ref, False
            return
        t = time.perf_counter()
        if self._size_check.keep_previous(image, self._center, self._size, ref, cfg.verify_trust):
            self._size, self._veto_held = ref, True
        else:
            self._checked_size = self._size
        timings["size_check"] = (time.perf_counter() - t) * 1e3

    def _set_search_reference(self, image: np.ndarray) -> None:
        """TrackerConfig.template_search: the init box on the search features of the init frame (one backbone
        pass at init), the same features the search step gives on later frames."""
        height, width = image.shape[:2]
        window = self._search_window(TrackState.TRACKING, self.config, width, height)
        x = self._crop(image, window.center, window.side, self.instance_size)
        with torch.inference_mode(), self._autocast():
            features = self.model.extract(x)[2:]
        self._box_search.set_reference(features, window.origin, window.scale_z, (*self._center, *self._size),
                                       self.config.context_amount)

    def _search_box(self, window: SearchWindow, cfg: TrackerConfig, width: int, height: int,
                    timings: Dict[str, float]) -> None:
        """TrackerConfig.template_search: replace the state by the box around it that the init template matches
        best, once that box has matched clearly better (template_search_trust, template_search_margin) on
        template_search_frames consecutive frames."""
        t = time.perf_counter()
        found, s_found, s_state = self._box_search.search(self.model.search_features(), window.origin,
                                                          window.scale_z, self._center, self._size, (width, height))
        # Where the state already is the best box (typically right after a correction) the count stays as it is.
        if found != (*self._center, *self._size):
            better = s_found >= cfg.template_search_trust and s_found > s_state + cfg.template_search_margin
            self._search_streak = self._search_streak + 1 if better else 0
            if better and self._search_streak >= cfg.template_search_frames:
                cx, cy, w, h = found
                self._center, self._size = clamp_center(cx, cy, width, height), clamp_size(w, h, width, height)
                self._checked_size, self._veto_held = self._size, False
        timings["template_search"] = (time.perf_counter() - t) * 1e3

    def _mask_and_polygon(self, image: np.ndarray, found: SearchResult, window: SearchWindow, state: TrackState,
                          cfg: TrackerConfig, box: np.ndarray,
                          timings: Dict[str, float]) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """Steps 12-15 (mask, polygon, the mask's box or None), or an empty mask, the box's polygon and None where
        there is nothing to segment: long-term (robot) mode holds the state while LOST; the paper's inference
        (long_term false) segments every frame, LOST or not. A non-finite frame never segments."""
        if (state == TrackState.LOST and cfg.long_term) or not found.finite:
            return np.zeros(image.shape[:2], np.uint8), M.box_polygon(box), None
        return self._mask(image, self._center, self._size, window.origin, window.scale_z, window.side, box, timings)

    def _context_side(self, factor: float) -> float:
        """crop.context_side of the current size, times factor."""
        return context_side(*self._size, self.config.context_amount) * factor

    def _crop(self, image: np.ndarray, center: Tuple[float, float], side: int, out_size: int) -> torch.Tensor:
        if self.device_ops:
            frame = torch.from_numpy(image).to(self.device, non_blocking=True)  # the frame's one upload
            pad = torch.from_numpy(self._pad_color).to(self.device)
            return crop_torch(frame, center, int(side), out_size, pad)
        return to_tensor(crop_cv(image, center, int(side), out_size, self._pad_color), self.device)

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        # No weight-cast cache: cached casts made during CUDA-graph capture must not outlive the graph.
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=False)

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.device)

    def _tick(self, timings: Dict[str, float], name: str, since: float) -> float:
        if self.profile:
            self._sync()
        now = time.perf_counter()
        timings[name] = (now - since) * 1e3
        return now

    def _search_step(self, x: torch.Tensor, params: torch.Tensor,
                     timings: Optional[Dict[str, float]] = None) -> torch.Tensor:
        """Network + decode + best anchor + box refinement (+ box quality), all on the device. params = (target
        w, h in crop pixels, penalty_k, window_influence, quality_margin). Returns (11,) float32, the layout
        SearchResult.from_device reads: score, penalty, clipped RPN box and refined box (cx, cy, w, h) in crop pixels, and the box quality
        (the quality head's IoU estimate for the refined box, or with config.quality_select the best of three
        candidates, which then replaces the refined box; the score again for a model without the head)."""
        profiling = timings is not None and self.profile
        t = time.perf_counter()
        with self._autocast():
            out = self.model.track(x)
        if profiling:
            t = self._tick(timings, "network", t)
        score = D.fg_scores(out["cls"])
        boxes = D.decode_boxes(out["loc"], self.anchors)
        penalty = D.scale_penalty(boxes, params[:2], params[2])
        # index_select, not score[best]: indexing with a 0-dim tensor calls .item() (a host sync, illegal while
        # capturing a CUDA graph).
        best = D.select_best(score, penalty, self.window, params[3]).view(1)
        rpn_box = D.rpn_box_in_crop(boxes.index_select(1, best).view(4), self.instance_size)
        roi = D.bbox_roi(rpn_box)
        if profiling:
            t = self._tick(timings, "decode", t)
        with self._autocast():
            deltas = self.model.bbox_refine(roi)
        if profiling:
            t0 = t
            t = self._tick(timings, "bbox_refine", t)
            timings["network"] += (t - t0) * 1e3
        refined = D.decode_refine(deltas, rpn_box, self._stds)
        if self.has_quality_head:
            if self.config.quality_select:
                cands = torch.stack((refined, rpn_box, torch.cat((refined[:2], params[:2]))))
            else:
                cands = refined.view(1, 4)
            half = cands[:, 2:] / 2
            rois = torch.cat((cands.new_zeros(cands.size(0), 1), cands[:, :2] - half, cands[:, :2] + half), 1)
            with self._autocast():
                qualities = torch.sigmoid(self.model.box_quality(rois).float())
            ranked = qualities
            if cands.size(0) == 3:
                # The previous size wins unless a resized box is rated quality_margin better: the head cannot tell
                # a box 10 % too large from the right one, so without a margin a refinement that overshoots on
                # every frame would ratchet the size up (large targets grow to the whole image).
                ranked = qualities + torch.cat((params.new_zeros(2), params[4:5]))
            pick = torch.argmax(ranked).view(1)  # index_select: no host sync (see best above)
            refined, quality = cands.index_select(0, pick).view(4), qualities.index_select(0, pick)
        else:
            quality = score.index_select(0, best)
        return torch.cat((score.index_select(0, best), penalty.index_select(0, best), rpn_box, refined,
                          quality.view(1)))

    def _mask_step(self, roi: torch.Tensor) -> torch.Tensor:
        """Mask head on a (1, 5) RoI → M×M float32 probabilities on the device."""
        with self._autocast():
            logits = self.model.mask_refine(roi)
        return torch.sigmoid(logits.float())[0, 0]

    def _mask(self, image: np.ndarray, center: Tuple[float, float], size: Tuple[float, float],
              crop_origin: Tuple[float, float], scale_z: float, s_x: int, box: np.ndarray,
              timings: Dict[str, float]) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """Steps 12-15: mask RoI from the new state, mask head, paste-back, threshold (then the colour trim, where on
        for this target), polygon, and the box of the polygon's mask component (None if there is none)."""
        height, width = image.shape[:2]
        x1, y1, x2, y2 = D.mask_roi(center, size, crop_origin, scale_z)
        roi = torch.tensor([[0.0, x1, y1, x2, y2]], dtype=torch.float32).to(self.device, non_blocking=True)
        t = time.perf_counter()
        prob = self._graphs["mask"](roi) if "mask" in self._graphs else self._mask_step(roi)
        t = self._tick(timings, "mask_head", t)
        pm = M.paste_map(M.sub_rect((x1, y1, x2, y2), crop_origin, s_x, self.instance_size), self.mask_size,
                         width, height)
        if self.device_ops:
            region = M.paste_torch(prob, pm, self.config.mask_threshold).cpu().numpy()
        else:
            region = M.paste_cv(prob.cpu().numpy(), pm, self.config.mask_threshold)  # OpenCV paste, any device
        if self._colour.active:
            region = self._colour.trim(region, image[pm.y0:pm.y1, pm.x0:pm.x1])
        polygon, mask_box = M.mask_shape(region, (pm.x0, pm.y0), box)
        full = M.full_frame(region, pm, width, height)
        self._tick(timings, "paste", t)
        return full, polygon, mask_box

    # --- set-up ----------------------------------------------------------------------------------------------------
    def _example_inputs(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.instance_size
        x = torch.full((1, 3, m, m), 114.0, device=self.device)
        params = torch.tensor([64.0, 64.0, self.config.penalty_k, self.config.window_influence,
                               self.config.quality_margin], device=self.device)
        roi = torch.tensor([[0.0, m / 2 - 32, m / 2 - 32, m / 2 + 32, m / 2 + 32]], device=self.device)
        return x, params, roi

    def _capture_graphs(self) -> None:
        """Capture search and mask steps for the current template (the graphs read the template features the
        model cached in init(), so they are re-captured on every init). Falls back to eager on any failure."""
        x, params, roi = self._example_inputs()
        try:
            self._graphs["search"] = _CudaGraphed(self._search_step, self.device, x, params)
            # Captured after the search graph: the mask head reads the fused features that graph writes.
            self._graphs["mask"] = _CudaGraphed(self._mask_step, self.device, roi)
        except Exception as e:  # capture is an optimisation: never let it break tracking
            self._graphs = {}
            self._graph_failed = True
            warnings.warn(f"CUDA graph capture failed, running eagerly: {e}")

    @torch.inference_mode()
    def _warmup(self) -> None:
        """One template + search + mask pass on a synthetic frame (allocator, kernels, cuDNN autotune), then reset."""
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        self.init(frame, (130.0, 90.0, 60.0, 60.0))
        self.track(frame, want_mask=True)
        self._sync()
        self.reset()
        self._init_id = 0
