"""GPU bring-up check: is the CUDA path correct, and how fast is it? Writes gpu_check.json + gpu_check.md into --out.

    python -m siamattn_ros.tools.gpu_check --out DIR [--device cuda|cpu] [--quick] [--frames N] [--skip SECTION ...]

Sections (each check in the JSON has a status: "pass", "fail" or "not run: <why>"; nothing is assumed to pass):
- cost:      GFLOP and aten ops per frame of each network (counted on the CPU; the basis of the Jetson estimate).
- model:     both networks (paper ResNet-50 and embedded MobileNetV2; random weights with calibrated BatchNorm
             statistics and non-zero attention, see random_network) prepared on
             --device in fp32 vs prepared on the CPU in fp32, same inputs: max|a-b| / max|a| <= 1e-3 per output, with
             TF32 off (TF32 is PyTorch's default for cuDNN convolutions; that deviation is reported beside it).
             With --device cpu the candidate is the unprepared model (BatchNorm kept, torchvision deformable conv), so
             two different computations are still compared.
- probe:     the graph-captured steps (search and mask) run on fake CUDA tensors (torch FakeTensorMode, no GPU needed)
             without a data-dependent host sync (.item(), bool(tensor), indexing with a 0-dim tensor), which would
             make CUDA-graph capture fail.
- tracker:   the embedded model (shipped weights) on the bundled recordings, --device vs CPU: boxes within 1 px, the
             same states, mask IoU >= 0.98 on every frame. With --device cpu the candidate is the device code path
             (torch crop and mask paste, as on CUDA) against the OpenCV path.
- graphs:    CUDA graphs on vs off on the same frames: identical states and masks, boxes within 1e-3 px (CUDA only).
- precision: fp16 and bf16 autocast vs fp32 on the same device: box IoU >= 0.95 on every frame, the same states
             (on the CPU this runs torch's CPU autocast: a check of the mixed-precision code path, not a speed mode).
- speed:     end to end per frame (BGR image in host memory -> TrackResult with its full-frame mask on the host) at
             640x480 and 1280x720, median over --frames frames, with the stage breakdown (a second, synchronised pass)
             and peak GPU memory; paper and embedded model x fp32/fp16/bf16 x graphs on/off, plus the plain eager
             baseline (fp32, no graphs, OpenCV crop and paste on the host) measured in the same run.
             Timing uses siamattn_ros.tools.bench_tracker.bench (the same frames and loop as that tool).
- startup:   a fresh process: import, build (+ warm-up), first init and first track latency, warm-up on and off.
- node:      tracker_node with device:=<device> on a bundled recording over DDS (siamattn_ros.replay.session), or,
             where rclpy / the generated messages are not importable, the recording's JPEG frames decoded as the node
             does and tracked in-process: results per second and latency.
Exit code: 0 when no check failed (checks not run are listed, not counted as passes), 1 otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

SECTIONS = ("cost", "model", "probe", "tracker", "graphs", "precision", "speed", "startup", "node")
PASS, FAIL = "pass", "fail"
# Acceptance bars (issue 14).
MODEL_REL_TOL = 1e-3
BOX_TOL_PX = 1.0
MASK_IOU_MIN = 0.98
PREC_BOX_IOU_MIN = 0.95
GRAPH_BOX_TOL_PX = 1e-3
PATH_IOU_TOL = 0.05
# Models: (label, build_tracker model name). The paper model has no shipped weights: random weights, timing and
# network-level checks only.
MODELS = (("embedded", "embedded"), ("paper", "siamattn_r50"))
NETWORKS = (("embedded", "siamattn_mnv2"), ("paper", "siamattn_r50"))
PRECISIONS = ("fp32", "fp16", "bf16")


def not_run(why: str) -> str:
    return f"not run: {why}"


class Report:
    """Collects checks and figures; writes JSON + markdown after every section (a killed run keeps what it had)."""

    def __init__(self, out: Path, meta: Dict[str, Any]) -> None:
        self.out = out
        self.data: Dict[str, Any] = {"meta": meta, "checks": [], "speed": [], "startup": {}, "node": {}, "cost": {},
                                     "errors": []}

    def check(self, name: str, status: str, criterion: str, **details: Any) -> Dict[str, Any]:
        entry = {"name": name, "status": status, "criterion": criterion, **details}
        self.data["checks"].append(entry)
        print(f"[check] {name}: {status}", flush=True)
        return entry

    def summary(self) -> Dict[str, int]:
        st = [c["status"] for c in self.data["checks"]]
        return {"passed": st.count(PASS), "failed": st.count(FAIL),
                "not_run": sum(1 for s in st if s.startswith("not run")), "errors": len(self.data["errors"])}

    def write(self) -> None:
        self.data["summary"] = self.summary()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_check.json").write_text(json.dumps(self.data, indent=1, default=_json_default))
        (self.out / "gpu_check.md").write_text(render_markdown(self.data))


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ------------------------------------------------------------------------------------------------------ helpers
def _torch():
    import torch

    return torch


def sync(device: Any) -> None:
    torch = _torch()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 for cuDNN convolutions and matmuls on or off inside the block (restored afterwards)."""
    torch = _torch()
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def make_tracker(model: str, device: str, **config: Any):
    """build_tracker (the model's preset, config overrides, warm-up off unless given). The paper model, which has no
    weights here, gets calibrated random weights (random_network)."""
    from siamattn_ros.interface.presets import resolve_preset
    from siamattn_ros.model import prepare_for_inference
    from siamattn_ros.tracker import build_tracker
    from siamattn_ros.tracker.config import load_preset

    config.setdefault("warmup", False)
    cfg = load_preset(resolve_preset(model)).replace(**config)
    if model == "siamattn_r50":
        net = prepare_for_inference(random_network(model), device=device)
        return build_tracker(net, device=device, config=cfg)
    return build_tracker(model, device=device, config=cfg)


def random_network(name: str) -> Any:
    """A network with random weights whose BatchNorm statistics were measured on random crops (then folded as usual).
    With the default statistics (mean 0, variance 1) activations grow through the 50 ResNet layers to inf: the tracker
    then sees a non-finite score, treats the frame as having no evidence and skips the mask head, so the timing would
    leave out a stage. Weight values do not change the cost of any kernel, finite values do not change the path."""
    torch = _torch()
    from siamattn_ros.model import build_model
    from siamattn_ros.testing.checkpoints import activate_random_paths

    torch.manual_seed(0)
    net = build_model(name, pretrained=False)
    activate_random_paths(net, seed=0)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration passes
    import cv2

    from siamattn_ros.tools.bench_tracker import make_frames

    # Calibrated on crops of the timing frames themselves (the statistics of noise crops do not carry over).
    frames, (x, y, w, h) = make_frames(640, 480, 8)
    roi = torch.tensor([[0.0, 96.0, 96.0, 160.0, 160.0]])

    def crop(img: np.ndarray, side: float, out: int) -> Any:
        cx, cy = int(x + w / 2), int(y + h / 2)
        half = int(side / 2)
        patch = cv2.copyMakeBorder(img, half, half, half, half, cv2.BORDER_REPLICATE)[cy:cy + 2 * half,
                                                                                     cx:cx + 2 * half]
        patch = cv2.resize(patch, (out, out))
        return torch.from_numpy(patch).permute(2, 0, 1).unsqueeze(0).float()

    net.train()
    with torch.no_grad():
        for f in frames[::2]:
            net.template(crop(frames[0], 2 * w, 127))
            net.track(crop(f, 4 * w, 255))
            net.bbox_refine(roi)
            net.mask_refine(roi)
    net.reset()
    return net.eval()


def load_frames(recording: Any, max_frames: Optional[int]) -> Tuple[List[np.ndarray], np.ndarray, int]:
    """Decoded frames from the first visible one (the init frame), its truth box and the recording's frame count."""
    first = int(np.flatnonzero(recording.visible)[0])
    last = len(recording) if max_frames is None else min(len(recording), first + 1 + max_frames)
    frames = [recording.frames[i].decode() for i in range(first, last)]
    return frames, recording.truth[first], len(recording)


def run_track(tracker: Any, frames: Sequence[np.ndarray], box: Sequence[float]) -> List[Any]:
    """TrackResults of frames[1:] after init on frames[0] (masks included)."""
    tracker.init(frames[0], box)
    return [tracker.track(f, want_mask=True) for f in frames[1:]]


def compare_runs(ref: List[Any], cand: List[Any], box_tol: float, mask_iou_min: Optional[float],
                 box_iou_min: Optional[float] = None) -> Dict[str, Any]:
    """Per-frame comparison of two result lists; 'ok' and the first failing frame (1-based after init)."""
    from siamattn_ros.interface.metrics import box_iou, mask_iou

    a = np.array([r.box_xywh for r in ref], np.float64)
    b = np.array([r.box_xywh for r in cand], np.float64)
    diff = np.abs(a - b).max(axis=1) if len(a) else np.zeros(0)
    ious = box_iou(b, a) if len(a) else np.zeros(0)
    same_state = np.array([r.state == c.state for r, c in zip(ref, cand)], bool)
    m_ious = np.array([mask_iou(c.mask, r.mask) for r, c in zip(ref, cand)], np.float64)
    bad = ~same_state
    if box_tol is not None:
        bad |= diff > box_tol
    if mask_iou_min is not None:
        bad |= m_ious < mask_iou_min
    if box_iou_min is not None:
        bad |= ious < box_iou_min
    first = int(np.flatnonzero(bad)[0]) + 1 if bad.any() else None
    out = {"frames": len(ref), "ok": not bad.any(), "first_failing_frame": first,
           "max_box_diff_px": float(diff.max()) if len(diff) else 0.0,
           "min_box_iou": float(ious.min()) if len(ious) else 1.0,
           "min_mask_iou": float(m_ious.min()) if len(m_ious) else 1.0,
           "mean_mask_iou": float(m_ious.mean()) if len(m_ious) else 1.0,
           "state_mismatches": int((~same_state).sum())}
    if first is not None:
        i = first - 1
        out["at_first_failure"] = {"ref_state": ref[i].state.name, "cand_state": cand[i].state.name,
                                   "ref_box": a[i].round(2).tolist(), "cand_box": b[i].round(2).tolist(),
                                   "mask_iou": float(m_ious[i]), "box_iou": float(ious[i])}
    return out


# ------------------------------------------------------------------------------------------------------ sections
def section_model(rep: Report, device: str, quick: bool) -> None:
    """Network outputs on --device vs CPU (fp32), per output relative max deviation."""
    torch = _torch()
    from siamattn_ros.model import prepare_for_inference
    from siamattn_ros.tools.bench import OurModel, parity

    crit = f"max|dev - cpu| / max|cpu| <= {MODEL_REL_TOL:g} for cls, loc, box, mask (fp32, TF32 off)"
    for label, name in NETWORKS:
        check = f"model_{label}_{device}_fp32_vs_cpu_fp32"
        if quick and label == "paper":
            rep.check(check, not_run("--quick runs the embedded network only"), crit)
            continue
        base = random_network(name)
        ref = prepare_for_inference(copy.deepcopy(base), "cpu")
        if device == "cpu":
            cand = copy.deepcopy(base)
            cand.set_deform_impl("torchvision")
            what = "unprepared model (BatchNorm kept, torchvision deformable conv) on the CPU"
        else:
            cand = prepare_for_inference(copy.deepcopy(base), device)
            what = f"prepared model on {device} (BN folded, channels_last, torchvision deformable conv)"
        g = torch.Generator().manual_seed(1)
        z = torch.rand(1, 3, 127, 127, generator=g) * 255
        xs = [torch.rand(1, 3, 255, 255, generator=g) * 255 for _ in range(3)]
        roi_box = torch.tensor([[0, 80.0, 90.0, 175.0, 165.0]])
        roi_mask = torch.tensor([[0, 79.5, 89.5, 175.5, 165.5]])

        def run(model: Any, dev: str) -> List[Dict[str, Any]]:
            m = OurModel(model)  # the per-frame calls as tools.bench times them
            m.template(z.to(dev))
            return [{k: v.float().cpu() for k, v in m.frame(x.to(dev), roi_box.to(dev), roi_mask.to(dev)).items()}
                    for x in xs]

        a = run(ref, "cpu")
        with tf32(False):
            b = run(cand, device)
        worst = {k: max(parity(ra, rb)[k] for ra, rb in zip(a, b)) for k in a[0]}
        details: Dict[str, Any] = {"candidate": what, "reference": "prepared model on the CPU (grid_sample deform)",
                                   "max_rel_diff": worst}
        if device != "cpu":
            with tf32(True):
                bt = run(cand, device)
            details["max_rel_diff_with_tf32"] = {k: max(parity(ra, rb)[k] for ra, rb in zip(a, bt)) for k in a[0]}
        ok = all(v <= MODEL_REL_TOL for v in worst.values())
        rep.check(check, PASS if ok else FAIL, crit, **details)
        del base, ref, cand


def fake_cuda_probe(name: str, precision: Optional[str] = None) -> Dict[str, Any]:
    """Run the tracker's graph-captured steps (search + mask) on fake CUDA tensors. A host sync inside them raises
    (FakeTensor has no data); returns {"ok", "error"}. Needs no GPU."""
    torch = _torch()
    from torch._subclasses.fake_tensor import FakeTensorMode

    from siamattn_ros.model import build_model, prepare_for_inference
    from siamattn_ros.tracker import Tracker, TrackerConfig

    net = prepare_for_inference(build_model(name, pretrained=False), "cpu")
    try:
        with FakeTensorMode(allow_non_fake_inputs=True):
            net = net.to("cuda:0")
            # Tracker() moves the model to its device again; fake parameters cannot be swapped, so make it a no-op.
            net.to = lambda *a, **k: net
            cfg = TrackerConfig(warmup=False, cuda_graph=False)
            if "quality_select" in TrackerConfig.__dataclass_fields__:  # the box-quality head's path too
                cfg = cfg.replace(quality_select=True)
            tr = Tracker(net, cfg, device="cuda:0", precision=precision)
            x, params, roi = tr._example_inputs()
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "CUDA is not available ... Disabling autocast"
                with tr._autocast():
                    tr.model.template(torch.zeros(1, 3, tr.exemplar_size, tr.exemplar_size, device="cuda:0"))
                out = tr._search_step(x, params)
                prob = tr._mask_step(roi)
        shapes = (tuple(out.shape), tuple(prob.shape))
        ok = out.dim() == 1 and out.numel() >= 10 and shapes[1] == (tr.mask_size, tr.mask_size)
        return {"ok": ok, "error": None if ok else f"unexpected output shapes {shapes}"}
    except Exception as e:  # the failure is the finding: report it
        return {"ok": False, "error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}


def section_probe(rep: Report, quick: bool) -> None:
    crit = "search and mask steps run on fake CUDA tensors with no data-dependent host sync (CUDA-graph capturable)"
    for label, name in NETWORKS:
        check = f"probe_{label}_graph_steps_sync_free"
        if quick and label == "paper":
            rep.check(check, not_run("--quick runs the embedded network only"), crit)
            continue
        t = time.perf_counter()
        res = fake_cuda_probe(name)
        rep.check(check, PASS if res["ok"] else FAIL, crit, error=res["error"],
                  seconds=round(time.perf_counter() - t, 1))


def section_cost(rep: Report, quick: bool) -> None:
    """Work per frame of each network (CPU, counted, not timed): GFLOP of the per-frame steps (network + decode +
    both heads) and of template(), and the number of aten ops per frame (each a kernel launch or a view on a GPU:
    what CUDA graphs save). The basis of the Jetson estimate in docs/PERFORMANCE.md."""
    torch = _torch()
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class _Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n += 1
            return func(*args, **(kwargs or {}))

    cost: Dict[str, Any] = {}
    for label, model in MODELS:
        if quick and label == "paper":
            cost[label] = not_run("--quick counts the embedded network only")
            continue
        tr = make_tracker(model, "cpu")
        x, params, roi = tr._example_inputs()
        z = torch.full((1, 3, tr.exemplar_size, tr.exemplar_size), 114.0)
        with torch.inference_mode():
            with FlopCounterMode(display=False) as ft:
                tr.model.template(z)
            with FlopCounterMode(display=False) as ff:
                tr._search_step(x, params)
                tr._mask_step(roi)
            with _Ops() as ops:
                tr._search_step(x, params)
                tr._mask_step(roi)
        cost[label] = {"gflop_per_frame": round(ff.get_total_flops() / 1e9, 3),
                       "gflop_template": round(ft.get_total_flops() / 1e9, 3),
                       "aten_ops_per_frame": ops.n,
                       "params_m": round(sum(p.numel() for p in tr.model.parameters()) / 1e6, 2)}
        del tr
    rep.data["cost"] = cost
    print(f"[cost] {cost}", flush=True)


def _recordings(quick: bool) -> List[Any]:
    from siamattn_ros.replay.recording import bundled_recordings, load_recording

    recs = [load_recording(p) for p in bundled_recordings()]
    if not recs:
        raise FileNotFoundError("no bundled recordings found (recordings/ of the source tree)")
    return recs


def _truth_iou(results: List[Any], truth: np.ndarray) -> float:
    """Mean IoU of the reported boxes with the truth over the frames where the target is visible."""
    from siamattn_ros.interface.metrics import box_iou

    ious = box_iou(np.array([r.box_xywh for r in results], np.float64), truth)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def section_tracker(rep: Report, device: str, max_frames: Optional[int], recs: List[Any]) -> None:
    """Device vs CPU with the same per-frame algorithm; and the device crop/paste vs the OpenCV path (accuracy)."""
    crit = (f"every frame: same state, max |box diff| <= {BOX_TOL_PX:g} px, mask IoU >= {MASK_IOU_MIN:g}; "
            f"reference: CPU fp32 with the device crop/paste (torch), the algorithm the device runs")
    rep.check("tracker_paper_device_vs_cpu",
              not_run("no trained paper-model (ResNet-50) weights ship with the project; random weights do not "
                      "track, so only its network is compared (model section)"), crit)
    ref_tr = make_tracker("embedded", "cpu")
    ref_tr.device_ops = True
    if device == "cpu":
        # A genuinely different computation of the same thing, as a GPU's kernels are: BatchNorm kept,
        # torchvision's deformable conv, NCHW; float rounding differs, the algorithm does not.
        from siamattn_ros.tracker import Tracker
        from siamattn_ros.tracker.build import load_network

        net = load_network("embedded").eval()
        net.set_deform_impl("torchvision")
        cand_tr = Tracker(net, ref_tr.config, device="cpu")
        cand_tr.device_ops = True
        what = "CPU, unprepared network (BatchNorm kept, torchvision deformable conv, NCHW), torch crop/paste"
    else:
        cand_tr = make_tracker("embedded", device)
        what = f"{device} defaults (torch crop/paste on the device, CUDA graphs {cand_tr.config.cuda_graph}), TF32 off"
    opencv_tr = make_tracker("embedded", "cpu")  # device_ops False: the OpenCV crop / paste
    for rec in recs:
        frames, box, n = load_frames(rec, max_frames)
        first = int(np.flatnonzero(rec.visible)[0])
        truth = rec.truth[first + 1:first + len(frames)]
        a = run_track(ref_tr, frames, box)
        with tf32(False):
            b = run_track(cand_tr, frames, box)
        cmp = compare_runs(a, b, BOX_TOL_PX, MASK_IOU_MIN)
        rep.check(f"tracker_embedded_{device}_vs_cpu_{rec.path.name}", PASS if cmp["ok"] else FAIL, crit,
                  candidate=what, recording_frames=n, graphs_active="search" in cand_tr._graphs, **cmp)
        if device != "cpu":
            b2 = run_track(cand_tr, frames, box)  # PyTorch's default TF32 (cuDNN convolutions)
            cmp2 = compare_runs(a, b2, BOX_TOL_PX, MASK_IOU_MIN)
            rep.check(f"tracker_embedded_{device}_tf32_default_vs_cpu_{rec.path.name}",
                      PASS if cmp2["ok"] else FAIL, crit, candidate=what.replace("TF32 off", "TF32 as PyTorch's "
                      "default"), tf32_cudnn=_torch().backends.cudnn.allow_tf32, **cmp2)
        # The torch crop rounds differently from OpenCV's fixed-point resize (about 5 % of crop values differ by one
        # grey level); the network turns that into box differences of up to ~2 px per frame, so the two paths are
        # compared on tracking accuracy, not frame by frame.
        c = run_track(opencv_tr, frames, box)
        iou_dev, iou_cv = _truth_iou(a, truth), _truth_iou(c, truth)
        trace = compare_runs(c, a, BOX_TOL_PX, MASK_IOU_MIN)
        ok = bool(np.isfinite([iou_dev, iou_cv]).all() and abs(iou_dev - iou_cv) <= PATH_IOU_TOL)
        rep.check(f"tracker_embedded_device_path_vs_opencv_path_{rec.path.name}", PASS if ok else FAIL,
                  f"|mean truth IoU (torch crop/paste) - mean truth IoU (OpenCV crop/paste)| <= {PATH_IOU_TOL:g} "
                  f"(both CPU fp32)", truth_iou_device_path=iou_dev, truth_iou_opencv_path=iou_cv,
                  frame_by_frame={k: trace[k] for k in ("frames", "max_box_diff_px", "min_mask_iou",
                                                        "state_mismatches")})


def section_graphs(rep: Report, device: str, max_frames: Optional[int], recs: List[Any]) -> None:
    crit = f"every frame: same state, identical mask, max |box diff| <= {GRAPH_BOX_TOL_PX:g} px"
    if device == "cpu":
        rep.check("graphs_on_vs_off", not_run("CUDA graphs need a CUDA device"), crit)
        return
    for label, model in MODELS:
        on = make_tracker(model, device, cuda_graph=True)
        off = make_tracker(model, device, cuda_graph=False)
        rec = recs[0]
        frames, box, _ = load_frames(rec, max_frames)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            b = run_track(on, frames, box)
        captured = "search" in on._graphs and "mask" in on._graphs
        a = run_track(off, frames, box)
        cmp = compare_runs(a, b, GRAPH_BOX_TOL_PX, 1.0)
        ok = captured and cmp["ok"]
        rep.check(f"graphs_{label}_on_vs_off_{rec.path.name}", PASS if ok else FAIL, crit, graphs_captured=captured,
                  capture_warnings=[str(w.message) for w in caught], weights="trained" if label == "embedded"
                  else "random (the states and boxes of an untrained model still must not depend on graphs)", **cmp)


def section_precision(rep: Report, device: str, max_frames: Optional[int], recs: List[Any], quick: bool) -> None:
    crit = f"every frame: same state, box IoU >= {PREC_BOX_IOU_MIN:g} against fp32 on the same device"
    ref = make_tracker("embedded", device)
    cand = make_tracker("embedded", device)
    use = recs[:1] if quick else recs
    n = max_frames
    if device == "cpu":
        n = min(max_frames or 10**9, 3 if quick else 15)  # CPU autocast is ~10x slower than fp32 here
    for prec in ("fp16", "bf16"):
        for rec in use:
            frames, box, total = load_frames(rec, n)
            a = run_track(ref, frames, box)
            cand.amp_dtype = _amp(prec)
            b = run_track(cand, frames, box)
            cmp = compare_runs(a, b, None, None, box_iou_min=PREC_BOX_IOU_MIN)
            first = int(np.flatnonzero(rec.visible)[0])
            truth = rec.truth[first + 1:first + len(frames)]
            rep.check(f"precision_embedded_{prec}_vs_fp32_{device}_{rec.path.name}", PASS if cmp["ok"] else FAIL,
                      crit, autocast=f"torch.autocast({device.split(':')[0]!r}, {prec})", recording_frames=total,
                      truth_iou_fp32=_truth_iou(a, truth), truth_iou_amp=_truth_iou(b, truth), **cmp)
    rep.check("precision_paper_vs_fp32", not_run("no trained paper-model weights (see tracker_paper_device_vs_cpu)"),
              crit)


def _amp(prec: str):
    from siamattn_ros.tracker.tracker import amp_dtype_of

    return amp_dtype_of(prec)


def section_speed(rep: Report, device: str, frames: int, quick: bool) -> None:
    """bench_tracker.bench for every configuration; the baseline in the same run."""
    torch = _torch()
    from siamattn_ros.tools.bench_tracker import SIZES, STAGES, bench

    cuda = device != "cpu"
    models = MODELS[:1] if quick else MODELS
    for label, model in MODELS:
        if (label, model) not in models:
            rep.data["speed"].append({"model": label, "status": not_run("--quick times the embedded model only")})
    for label, model in models:
        tracker = make_tracker(model, device)
        weights = "trained" if label == "embedded" else "random, BatchNorm calibrated (random_network)"
        configs: List[Tuple[str, str, bool, bool]] = [("baseline", "fp32", False, False)]
        for prec in PRECISIONS:
            for graphs in (True, False):
                configs.append(("device", prec, graphs, True))
        for pipeline, prec, graphs, device_ops in configs:
            row: Dict[str, Any] = {"model": label, "weights": weights, "pipeline": pipeline, "precision": prec,
                                   "graphs": graphs, "device_ops": device_ops}
            why = None
            if not cuda and graphs:
                why = "CUDA graphs need a CUDA device"
            elif not cuda and prec != "fp32":
                why = "CPU autocast is a correctness check of the mixed-precision path here, not a speed mode"
            if why:
                rep.data["speed"].append({**row, "status": not_run(why)})
                continue
            tracker.amp_dtype = _amp(prec)
            tracker.config = tracker.config.replace(cuda_graph=graphs)
            tracker.device_ops = device_ops
            for w, h in SIZES:
                if cuda:
                    sync(device)
                    torch.cuda.reset_peak_memory_stats(device)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    plain = bench(tracker, w, h, frames, True, profile=False)
                    active = "search" in tracker._graphs
                    prof = bench(tracker, w, h, max(3, frames // 2), True, profile=True)
                entry = {**row, "size": f"{w}x{h}", "status": "measured", "frames": frames,
                         "total_ms": round(plain["total_ms"], 3), "fps": round(1e3 / plain["total_ms"], 1),
                         "process_cpu_ms": round(plain["cpu_ms"], 3), "graphs_active": active,
                         "mask_head_ran": prof["mask_head_ms"] > 0,
                         "stages_ms": {k: round(prof[k + "_ms"], 3) for k in STAGES}}
                if caught:
                    entry["warnings"] = sorted({str(c.message) for c in caught})
                if cuda:
                    entry["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                else:
                    entry["peak_gpu_mb"] = not_run("no GPU")
                rep.data["speed"].append(entry)
                print(f"[speed] {label} {pipeline} {prec} graphs={graphs} {w}x{h}: {entry['total_ms']:.2f} ms "
                      f"({entry['fps']} FPS)", flush=True)
        tracker.config = tracker.config.replace(cuda_graph=True)
        del tracker
        if cuda:
            torch.cuda.empty_cache()
    # Speed-up of each measured configuration over the baseline of the same model and size, same run.
    base = {(r["model"], r["size"]): r["total_ms"] for r in rep.data["speed"]
            if r.get("status") == "measured" and r["pipeline"] == "baseline"}
    for r in rep.data["speed"]:
        if r.get("status") == "measured" and (r["model"], r["size"]) in base:
            r["speedup_vs_baseline"] = round(base[(r["model"], r["size"])] / r["total_ms"], 2)
    rep.data["meta"]["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


STARTUP_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
t_import = time.perf_counter() - t0
sys.path.insert(0, sys.argv[4])
from siamattn_ros.tools.gpu_check import make_tracker, sync
from siamattn_ros.tools.bench_tracker import make_frames
device, warmup, threads = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
if threads > 0:
    torch.set_num_threads(threads)
t = time.perf_counter()
tr = make_tracker("embedded", device, warmup=warmup)
sync(device)
t_build = time.perf_counter() - t
frames, box = make_frames(640, 480, 3)
out = {"import_torch_s": t_import, "build_s": t_build}
for k in ("first", "second"):
    t = time.perf_counter(); tr.init(frames[0], box); sync(device); out[k + "_init_ms"] = (time.perf_counter() - t) * 1e3
    t = time.perf_counter(); tr.track(frames[1]); sync(device); out[k + "_track_ms"] = (time.perf_counter() - t) * 1e3
out["start_to_first_result_s"] = time.perf_counter() - t0
print("STARTUP " + json.dumps(out))
"""


def section_startup(rep: Report, device: str, threads: int) -> None:
    """Fresh processes (cold start): import, build_tracker (warm-up on / off), first and second init + track."""
    repo = str(Path(__file__).resolve().parents[2])
    res: Dict[str, Any] = {}
    for warm in (True, False):
        key = "warmup_on" if warm else "warmup_off"
        p = subprocess.run([sys.executable, "-c", STARTUP_PROBE, device, "1" if warm else "0", str(threads), repo],
                           capture_output=True, text=True, timeout=600)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("STARTUP ")]
        if p.returncode != 0 or not line:
            res[key] = {"error": (p.stderr or p.stdout)[-2000:]}
            rep.data["errors"].append(f"startup {key}: exit {p.returncode}")
            continue
        res[key] = {k: round(v, 3) for k, v in json.loads(line[0][8:]).items()}
        print(f"[startup] {key}: {res[key]}", flush=True)
    rep.data["startup"] = res


def _ros_available() -> Optional[str]:
    """None when rclpy and the generated siamattn_ros messages import, else why not."""
    try:
        import rclpy  # noqa: F401

        from siamattn_ros.msg import TrackResult  # noqa: F401
    except Exception as e:  # ImportError, or a broken binary wheel
        return f"{type(e).__name__}: {e}"
    return None


def section_node(rep: Report, device: str, max_frames: Optional[int], recs: List[Any]) -> None:
    # A ROS graph of our own (as the test suite does): other graphs on the machine must not feed this node.
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rec = next((r for r in recs if r.path.name == "vtest_woman"), recs[0])
    n = len(rec) if max_frames is None else min(len(rec), max_frames + 1)
    why = _ros_available()
    if why is None:
        from siamattn_ros.interface.states import CLAIMING_STATES
        from siamattn_ros.replay.session import run_tracker

        run = run_tracker(rec, "embedded", transport="compressed", max_frames=n,
                          extra_params={"device": device, "publish_overlay": False})
        proc = [r.processing_s * 1e3 for r in run.results if r.init_id >= 1]
        claims = np.isin(run.states[run.init_index + 1:run.last_index + 1], [int(c) for c in CLAIMING_STATES])
        res = {"mode": "tracker_node process over DDS (siamattn_ros.replay.session.run_tracker, lock-step)",
               "recording": rec.path.name, "frames": run.tracked_frames, "results_per_s": round(run.fps, 2),
               "node_processing_ms_median": round(statistics.median(proc), 2) if proc else None,
               "node_processing_ms_max": round(max(proc), 2) if proc else None,
               "frames_with_a_claim": int(claims.sum()),
               "device_in_log": f"device={device}" in run.node_log}
        ok = run.tracked_frames == n - 1 - run.init_index and res["device_in_log"]
        rep.check(f"node_{device}_replay", PASS if ok else FAIL,
                  "the node answers every frame of the recording and reports the requested device", **res)
    else:
        from siamattn_ros.replay.bag import deserialize
        from siamattn_ros.ros.image_conv import decode_compressed

        tracker = make_tracker("embedded", device, warmup=True)
        first = int(np.flatnonzero(rec.visible)[0])
        t = time.perf_counter()
        tracker.init(decode_compressed(deserialize(rec.frames[first].message)), rec.truth[first])
        init_ms = (time.perf_counter() - t) * 1e3
        lat, results, t0 = [], [], time.perf_counter()
        for i in range(first + 1, n):  # per frame: CDR bytes -> decoded image -> TrackResult with mask
            t = time.perf_counter()
            img = decode_compressed(deserialize(rec.frames[i].message))
            results.append(tracker.track(img, want_mask=True))
            lat.append((time.perf_counter() - t) * 1e3)
        wall = time.perf_counter() - t0
        res = {"mode": f"in-process (no ROS here: {why}): bag read with rosbags, JPEG decoded by the node's "
                       f"decode_compressed, tracked with the node's tracker; no DDS",
               "recording": rec.path.name, "frames": len(results), "results_per_s": round(len(results) / wall, 2),
               "init_ms": round(init_ms, 2), "latency_ms_median": round(statistics.median(lat), 2) if lat else None,
               "latency_ms_max": round(max(lat), 2) if lat else None}
        rep.check(f"node_{device}_replay", not_run(f"rclpy / siamattn_ros messages not importable ({why}); "
                                                   f"in-process replay measured instead"),
                  "the node answers every frame of the recording", **res)
    rep.data["node"] = res
    print(f"[node] {res}", flush=True)


# ------------------------------------------------------------------------------------------------------ report
def render_markdown(d: Dict[str, Any]) -> str:
    from siamattn_ros.tools.bench_tracker import STAGES

    m = d["meta"]
    s = d.get("summary", {})
    lines = [f"# gpu_check: {m.get('device_name')} ({m.get('device')})", "",
             f"- date {m.get('date')}, torch {m.get('torch')}, torchvision {m.get('torchvision')}, "
             f"Python {m.get('python')}, CUDA {m.get('cuda')}",
             f"- command: `{m.get('command')}`; duration {m.get('duration_s', '?')} s",
             f"- checks: {s.get('passed', 0)} passed, {s.get('failed', 0)} failed, {s.get('not_run', 0)} not run; "
             f"{s.get('errors', 0)} section errors", "", "## Checks", "", "| check | status | key figures |",
             "| --- | --- | --- |"]
    for c in d["checks"]:
        keys = ("max_rel_diff", "max_box_diff_px", "min_mask_iou", "min_box_iou", "state_mismatches",
                "first_failing_frame", "error", "results_per_s")
        fig = "; ".join(f"{k} {_fmt(c[k])}" for k in keys if k in c and c[k] is not None)
        lines.append(f"| {c['name']} | {c['status']} | {fig} |")
    lines += ["", "## Speed (end to end per frame, image in host memory -> TrackResult with mask on the host)", "",
              "| model | pipeline | precision | graphs | size | ms | FPS | x baseline | crop | network | decode | "
              "size check | template search | mask head | paste | peak GPU MB |", "| --- " * 16 + "|"]
    for r in d["speed"]:
        if r.get("status") != "measured":
            lines.append(f"| {r.get('model')} | {r.get('pipeline', '')} | {r.get('precision', '')} | "
                         f"{r.get('graphs', '')} | | {r.get('status')} |" + " |" * 10)
            continue
        st = r["stages_ms"]
        g = f"{r['graphs']}" + ("" if r["graphs_active"] == r["graphs"] else " (NOT active)")
        lines.append(f"| {r['model']} | {r['pipeline']} | {r['precision']} | {g} | {r['size']} | "
                     f"{r['total_ms']:.2f} | {r['fps']} | {r.get('speedup_vs_baseline', '')} | "
                     + " | ".join(f"{st.get(k, 0.0):.2f}" for k in STAGES)
                     + f" | {r['peak_gpu_mb']} |")
    lines += ["", "Stage times come from a second, synchronised pass (profile=True); with graphs the network stage "
              "includes the decode.", "", "## Start-up (fresh process, embedded model)", ""]
    for k, v in d.get("startup", {}).items():
        lines.append(f"- {k}: " + ", ".join(f"{a} {_fmt(b)}" for a, b in v.items()))
    lines += ["", "## Work per frame (counted on the CPU)", ""]
    for k, v in d.get("cost", {}).items():
        lines.append(f"- {k}: {_fmt(v)}")
    lines += ["", "## Node", ""]
    for k, v in d.get("node", {}).items():
        lines.append(f"- {k}: {v}")
    if d.get("errors"):
        lines += ["", "## Section errors", ""] + [f"- {e}" for e in d["errors"]]
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} {_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def environment(device: str, argv: Sequence[str]) -> Dict[str, Any]:
    torch = _torch()
    import torchvision

    meta = {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "python": platform.python_version(), "device": device,
            "cuda": torch.version.cuda, "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "command": "python -m siamattn_ros.tools.gpu_check " + " ".join(argv)}
    if device != "cpu":
        p = torch.cuda.get_device_properties(device)
        meta.update(device_name=p.name, gpu_memory_gb=round(p.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version(), tf32_cudnn_default=torch.backends.cudnn.allow_tf32,
                    tf32_matmul_default=torch.backends.cuda.matmul.allow_tf32)
    else:
        meta["device_name"] = "CPU"
    return meta


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m siamattn_ros.tools.gpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: embedded network only, few frames per recording and per timing")
    ap.add_argument("--frames", type=int, default=None,
                    help="timed frames per speed configuration (default 200 on CUDA, 20 on the CPU, 3 with --quick)")
    ap.add_argument("--max-frames", type=int, default=None,
                    help="frames per recording in the correctness checks (default all; 6 with --quick)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--skip", nargs="*", default=[], choices=SECTIONS, help="sections not to run")
    args = ap.parse_args(argv)

    torch = _torch()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: torch.cuda.is_available() is False (torch {torch.__version__})")
    if not (args.device == "cpu" or args.device.startswith("cuda")):
        ap.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = args.device
    frames = args.frames or (3 if args.quick else (200 if device != "cpu" else 20))
    max_frames = args.max_frames if args.max_frames is not None else (6 if args.quick else None)
    t_start = time.perf_counter()
    rep = Report(args.out, environment(device, argv))
    rep.data["meta"]["quick"] = args.quick
    recs = _recordings(args.quick)

    steps: List[Tuple[str, Callable[[], None]]] = [
        ("cost", lambda: section_cost(rep, args.quick)),
        ("model", lambda: section_model(rep, device, args.quick)),
        ("probe", lambda: section_probe(rep, args.quick)),
        ("tracker", lambda: section_tracker(rep, device, max_frames, recs)),
        ("graphs", lambda: section_graphs(rep, device, max_frames, recs)),
        ("precision", lambda: section_precision(rep, device, max_frames, recs, args.quick)),
        ("speed", lambda: section_speed(rep, device, frames, args.quick)),
        ("startup", lambda: section_startup(rep, device, args.threads)),
        ("node", lambda: section_node(rep, device, max_frames, recs)),
    ]
    for name, fn in steps:
        if name in args.skip:
            rep.check(f"section_{name}", not_run("--skip"), "-")
            continue
        t = time.perf_counter()
        try:
            with torch.inference_mode(False):
                fn()
        except Exception as e:  # one broken section must not hide the others' figures
            rep.data["errors"].append(f"{name}: {type(e).__name__}: {e}")
            rep.check(f"section_{name}", FAIL, "the section runs to the end", error=traceback.format_exc()[-3000:])
        rep.data["meta"].setdefault("section_s", {})[name] = round(time.perf_counter() - t, 1)
        rep.data["meta"]["duration_s"] = round(time.perf_counter() - t_start, 1)
        rep.write()
    s = rep.summary()
    print(f"gpu_check: {s['passed']} passed, {s['failed']} failed, {s['not_run']} not run -> {args.out}", flush=True)
    return 1 if s["failed"] or s["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
