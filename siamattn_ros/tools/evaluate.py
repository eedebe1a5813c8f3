"""One-pass evaluation of trackers on GOT-10k-style sequence folders.

    python -m siamattn_ros.tools.evaluate --sequences data/annotations --trackers siamattn,csrt,kcf,mil \
        --model embedded --threads 1 --out results/real          # the real evaluation set (docs/EVALUATION.md)

Each tracker is initialised on the first frame's truth box and runs over every frame (no re-initialisation).
SiamAttn boxes are scored as reported (intersected with the image) by default; --box unclipped scores the tracker's
state box instead, as the paper's OTB protocol does (the summary names the mode). Scores
(siamattn_ros.interface.metrics): success AUC, precision at 20 px, normalised precision, mask IoU where truth
masks exist; failure detection: AUROC of the confidence (frames with IoU >= 0.5 against frames with IoU < 0.2 or
the target out of view, pooled over the set), the longest run of TRACKING frames whose box area is > 4x the truth
area, and the fraction of leave-the-view events with state LOST within 10 frames; speed: frames per second of
init + track calls, start-up time (tracker construction: model load, warm-up), and the total wall time of the whole
run per tracker (start-up + all frames). Writes per-sequence boxes, per-frame confidence/state
(<tracker>/<sequence>_state.txt), results.json, summary.md (one markdown table for all trackers, per-sequence AUC
with the difference to CSRT, per-sequence failure modes), success.png, precision.png.
--describe prints statistics of the sequences' truth (absence, target size, border contact; docs/EVALUATION.md) and
exits. --generate-heldout N first writes N held-out semi-synthetic sequences (seeds 900000+, held-out source images
and real videos, never used in training) into the first --sequences folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from siamattn_ros.data import box_stats
from siamattn_ros.data.seqio import list_sequences, read_sequence, write_sequence
from siamattn_ros.interface import metrics
from siamattn_ros.interface.states import TrackState

OPENCV_TRACKERS = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create", "mil": "TrackerMIL_create",
                   "mosse": "TrackerMOSSE_create", "medianflow": "TrackerMedianFlow_create"}
HELDOUT_SEED0 = 900000


def _opencv_factory(name: str) -> Callable:
    fn = OPENCV_TRACKERS[name]
    for mod in (cv2, getattr(cv2, "legacy", None)):
        if mod is not None and hasattr(mod, fn):
            return getattr(mod, fn)
    raise RuntimeError(f"OpenCV tracker {name!r} ({fn}) not available: install opencv-contrib-python(-headless)")


class _OpenCVTracker:
    """OpenCV tracker behind the same init/track calls; on a reported failure the last box is kept.

    OpenCV trackers have no confidence: their success flag stands in for it (confidence 1 / state TRACKING when the
    update succeeded, 0 / LOST when it reported a failure), so failure-detection figures compare like with like."""

    wants_mask = False

    def __init__(self, name: str) -> None:
        self.factory = _opencv_factory(name)
        self.t = None
        self.box = None

    def init(self, image: np.ndarray, box: np.ndarray) -> None:
        self.t = self.factory()
        b = tuple(int(round(v)) for v in box)
        self.t.init(image, (b[0], b[1], max(1, b[2]), max(1, b[3])))
        self.box = np.asarray(box, dtype=np.float64)

    def track(self, image: np.ndarray, want_mask: bool) -> tuple[np.ndarray, Optional[np.ndarray], float, TrackState]:
        ok, b = self.t.update(image)
        ok = bool(ok) and b[2] > 0 and b[3] > 0
        if ok:
            self.box = np.asarray(b, dtype=np.float64)
        return self.box, None, float(ok), TrackState.TRACKING if ok else TrackState.LOST


BOX_MODES = ("clipped", "unclipped")


class _SiamAttnTracker:
    wants_mask = True

    def __init__(self, model: str, device: str, config: Optional[str] = None, box_mode: str = "clipped") -> None:
        from siamattn_ros.tracker import build_tracker

        if box_mode not in BOX_MODES:
            raise ValueError(f"box mode must be one of {BOX_MODES}, got {box_mode!r}")
        self.t = build_tracker(model=model, device=device, config=config)
        self.unclipped = box_mode == "unclipped"

    def init(self, image: np.ndarray, box: np.ndarray) -> None:
        self.t.init(image, [float(v) for v in box])

    def track(self, image: np.ndarray, want_mask: bool) -> tuple[np.ndarray, Optional[np.ndarray], float, TrackState]:
        r = self.t.track(image, want_mask=want_mask)
        # The paper's OTB protocol scores the state box (spec §10.3 step 11), not its intersection with the image.
        box = self.t.state_box_xywh if self.unclipped else r.box_xywh
        return np.asarray(box, dtype=np.float64), r.mask, float(r.confidence), TrackState(r.state)


def make_tracker(name: str, model: str, device: str, tracker_config: Optional[str] = None,
                 box_mode: str = "clipped"):
    """box_mode (SiamAttn only): "clipped" scores the reported box (intersected with the image), "unclipped" the
    tracker's state box, as the paper's OTB evaluation does."""
    if name == "siamattn":
        return _SiamAttnTracker(model, device, tracker_config, box_mode)
    if name in OPENCV_TRACKERS:
        return _OpenCVTracker(name)
    raise ValueError(f"unknown tracker {name!r}; choose from siamattn, {', '.join(OPENCV_TRACKERS)}")


def run_sequence(tracker, seq, max_frames: Optional[int] = None) -> dict:
    """One pass over a sequence. Besides the box scores: per-frame confidence and state, the failure-detection
    labels (metrics.failure_labels), the longest run of TRACKING frames with a box > 4x the truth area, and the
    leave-the-view events with whether the state was LOST within 10 frames (the first frame is the init frame)."""
    n = len(seq.frames) if max_frames is None else min(len(seq.frames), max_frames)
    gt = seq.boxes_xywh[:n]
    visible = np.asarray(seq.visible[:n], bool)
    want_mask = seq.masks is not None and tracker.wants_mask
    boxes = np.full((n, 4), np.nan)
    conf = np.ones(n)
    states = np.full(n, int(TrackState.INITIALIZING))
    masks: list = [None] * n
    t0 = time.perf_counter()
    tracker.init(seq.frames[0], gt[0])
    boxes[0] = gt[0]
    for i in range(1, n):
        boxes[i], masks[i], conf[i], states[i] = tracker.track(seq.frames[i], want_mask)
    elapsed = time.perf_counter() - t0
    score = metrics.score_sequence(boxes, gt, masks if want_mask else None,
                                   seq.masks[:n] if want_mask else None)
    iou = metrics.box_iou(boxes, gt)
    iou[0] = np.nan
    tracking = states == int(TrackState.TRACKING)
    events, detected = metrics.leave_events(visible, states == int(TrackState.LOST))
    return {"boxes": boxes, "score": score, "frames": n, "seconds": elapsed, "confidence": conf, "states": states,
            "iou": iou, "labels": metrics.failure_labels(iou, visible),
            "oversize_run": metrics.oversize_run(boxes, gt, tracking), "leave_events": events,
            "leave_lost": detected}


def heldout_sequence(i: int, num_frames: int = 150):
    """The i-th held-out semi-synthetic sequence (seed HELDOUT_SEED0 + i): every event kind over i % 3 and both
    background kinds over i % 2; deterministic."""
    from siamattn_ros.data.sequence import SequenceSpec, make_sequence

    spec = SequenceSpec(num_frames=num_frames, background="video" if i % 2 == 0 else "still", split="heldout",
                        leave_reenter=(i % 3 == 2), occlusion=(i % 3 != 1), distractor=True)
    return make_sequence(spec, HELDOUT_SEED0 + i)


def generate_heldout(root: Path, count: int, num_frames: int = 150) -> list[Path]:
    """Write held-out sequences 0 .. count-1 (heldout_sequence) as synth_heldout_<seed> folders (kept if there)."""
    out = []
    for i in range(count):
        folder = root / f"synth_heldout_{HELDOUT_SEED0 + i}"
        if not (folder / "groundtruth.txt").is_file():
            write_sequence(heldout_sequence(i, num_frames), folder)
        out.append(folder)
    return out


def _plots(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for kind, xs, xlabel in (("success", metrics.SUCCESS_THRESHOLDS, "overlap threshold"),
                             ("precision", metrics.PRECISION_THRESHOLDS, "location error threshold (px)")):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for name, r in results.items():
            curve = np.nanmean([s[kind] for s in r["curves"]], axis=0)
            label = (f"{name} [AUC {r['success_auc']:.3f}]" if kind == "success"
                     else f"{name} [{r['precision_20']:.3f}]")
            ax.plot(xs, curve, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success rate" if kind == "success" else "precision")
        ax.set_title(f"{kind} plot (one-pass evaluation)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{kind}.png", dpi=90)
        plt.close(fig)


def describe_sequence(seq) -> dict:
    """Statistics of one sequence's truth (for docs/EVALUATION.md): frames, out-of-view frames and events, frame size,
    grey footage, target size (px and fraction of the frame width), frames where the box touches the image border."""
    b = np.asarray(seq.boxes_xywh, np.float64)
    vis = np.asarray(seq.visible, bool)
    h, w = seq.frames[0].shape[:2]
    grey = box_stats.is_grey(seq.frames[0])
    v = b[vis]
    touch = box_stats.touches_border(v, (w, h))
    leave = int((vis[:-1] & ~vis[1:]).sum())
    back = int((~vis[:-1] & vis[1:]).sum())
    side = np.sqrt(v[:, 2] * v[:, 3])
    return {"name": seq.name, "frames": int(len(b)), "absent": int((~vis).sum()), "leave_events": leave,
            "returns": back, "size": f"{w}x{h}", "grey": grey,
            "box_w": (float(v[:, 2].min()), float(np.median(v[:, 2])), float(v[:, 2].max())),
            "box_h": (float(v[:, 3].min()), float(np.median(v[:, 3])), float(v[:, 3].max())),
            "sqrt_area": (float(side.min()), float(np.median(side)), float(side.max())),
            "w_frac": (float((v[:, 2] / w).min()), float(np.median(v[:, 2] / w)), float((v[:, 2] / w).max())),
            "border_frames": int(touch.sum())}


def describe_table(stats: list[dict]) -> list[str]:
    """Markdown table of describe_sequence() rows, with a total line."""
    lines = ["| sequence | frames | absent (events / returns) | frame | grey | box w min/med/max | box h min/med/max "
             "| √(wh) min/med/max | w / frame w med (max) | box at border |",
             "|---|---:|---|---|---|---|---|---|---|---:|"]
    for d in stats:
        lines.append(f"| {d['name']} | {d['frames']} | {d['absent']} ({d['leave_events']} / {d['returns']}) "
                     f"| {d['size']} | {'yes' if d['grey'] else 'no'} | "
                     + " | ".join("/".join(f"{x:.0f}" for x in d[k]) for k in ("box_w", "box_h", "sqrt_area"))
                     + f" | {d['w_frac'][1]:.2f} ({d['w_frac'][2]:.2f}) | {d['border_frames']} |")
    lines.append(f"| **total** | {sum(d['frames'] for d in stats)} | {sum(d['absent'] for d in stats)} "
                 f"({sum(d['leave_events'] for d in stats)} / {sum(d['returns'] for d in stats)}) | | "
                 f"{sum(d['grey'] for d in stats)} seq. | | | | | {sum(d['border_frames'] for d in stats)} |")
    return lines


def _fmt(v: float) -> str:
    return "—" if np.isnan(v) else f"{v:.3f}"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", nargs="+", required=True, help="folders of sequence folders (or sequence folders)")
    ap.add_argument("--trackers", default="siamattn,csrt,kcf,mil")
    ap.add_argument("--model", default="embedded", help="SiamAttn model: 'embedded' or a checkpoint path")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tracker-config", help="SiamAttn tracker preset name or YAML (default: the model's preset)")
    ap.add_argument("--box", choices=BOX_MODES, default="clipped",
                    help="SiamAttn box scored: 'clipped' = the reported box, intersected with the image (default); "
                         "'unclipped' = the state box (cx - w/2, cy - h/2, w, h), the paper's OTB protocol")
    ap.add_argument("--out", default="results", help="output folder")
    ap.add_argument("--max-frames", type=int, help="only the first N frames of each sequence")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--describe", action="store_true",
                    help="print statistics of the sequences' truth (target size, absence, border contact) and exit")
    ap.add_argument("--generate-heldout", type=int, default=0, metavar="N",
                    help="first write N held-out semi-synthetic sequences into the first --sequences folder")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.generate_heldout:
        generate_heldout(Path(args.sequences[0]), args.generate_heldout)
    folders = [f for root in args.sequences for f in list_sequences(root)]
    if not folders:
        raise SystemExit(f"no sequence folders (with groundtruth.txt) under {args.sequences}")
    seqs = [read_sequence(f) for f in folders]
    if args.describe:
        print("\n".join(describe_table([describe_sequence(s) for s in seqs])))
        return 0
    names = [s.strip() for s in args.trackers.split(",") if s.strip()]
    results: dict = {}
    per_seq: dict = {}
    for name in names:
        t0 = time.perf_counter()
        tracker = make_tracker(name, args.model, args.device, args.tracker_config, args.box)
        startup = time.perf_counter() - t0
        rows, frames, seconds = [], 0, 0.0
        pooled: dict = {"iou": [], "confidence": [], "labels": []}
        events = lost_in_time = 0
        oversize: dict = {}
        (out / name).mkdir(exist_ok=True)
        for folder, seq in zip(folders, seqs):
            r = run_sequence(tracker, seq, args.max_frames)
            np.savetxt(out / name / f"{folder.name}.txt", r["boxes"], fmt="%.2f", delimiter=",")
            # Per-frame confidence and state, for threshold calibration and failure analysis.
            np.savetxt(out / name / f"{folder.name}_state.txt", np.stack([r["confidence"], r["states"]], axis=1),
                       fmt=["%.4f", "%d"], delimiter=",", header="confidence,state (TrackState value)")
            rows.append(r["score"])
            frames += r["frames"]
            seconds += r["seconds"]
            for k in pooled:
                pooled[k].append(r[k])
            events += r["leave_events"]
            lost_in_time += r["leave_lost"]
            oversize[folder.name] = r["oversize_run"]
            seq_auroc = metrics.failure_auroc(r["confidence"], r["labels"])
            per_seq.setdefault(folder.name, {})[name] = {
                "auc": r["score"].success_auc, "oversize_run": r["oversize_run"], "auroc": seq_auroc,
                "leave": (r["leave_events"], r["leave_lost"])}
            print(f"{name:9s} {folder.name:28s} AUC {r['score'].success_auc:.3f} P20 {r['score'].precision_20:.3f} "
                  f"mIoU {r['score'].mask_iou:.3f} AUROC {seq_auroc:.3f} >4x-run {r['oversize_run']} "
                  f"{r['frames'] / r['seconds']:.1f} fps", flush=True)
        conf_all = np.concatenate(pooled["confidence"])
        labels_all = np.concatenate(pooled["labels"])
        worst = max(oversize, key=oversize.get)
        mask_vals = [s.mask_iou for s in rows if not np.isnan(s.mask_iou)]
        results[name] = {
            # Averages over sequences (each sequence weighs the same, as in OTB / GOT-10k reporting).
            "success_auc": float(np.mean([s.success_auc for s in rows])),
            "precision_20": float(np.mean([s.precision_20 for s in rows])),
            "norm_precision": float(np.mean([s.norm_precision for s in rows])),
            "mask_iou": float(np.mean(mask_vals)) if mask_vals else float("nan"),
            # Pooled over every scored frame of the set (long sequences weigh more).
            "success_auc_pooled": metrics.auc(np.concatenate(pooled["iou"])),
            "failure_auroc": metrics.failure_auroc(conf_all, labels_all),
            "auroc_on_frames": int((labels_all == 1).sum()),
            "auroc_off_frames": int((labels_all == 0).sum()),
            "max_oversize_run": int(oversize[worst]),
            "max_oversize_run_sequence": worst,
            "leave_events": events,
            "leave_lost_within_10": lost_in_time,
            "leave_lost_fraction": lost_in_time / events if events else float("nan"),
            "fps": frames / seconds if seconds > 0 else float("nan"),
            "startup_s": startup,
            "total_wall_s": startup + seconds,
            "frames": frames,
            "curves": [{"success": s.success, "precision": s.precision} for s in rows],
        }
    _plots(results, out)
    lines = [f"One-pass evaluation on {len(folders)} sequences ({sum(len(s.frames) for s in seqs)} frames"
             f"{'' if args.max_frames is None else f', first {args.max_frames} of each'}); model {args.model}; "
             f"SiamAttn boxes scored {args.box} (--box).", "",
             "| tracker | success AUC | AUC pooled | precision@20px | norm. precision | mask IoU | failure AUROC "
             "| longest >4x run | LOST within 10 | FPS | start-up s | total wall s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        m = "—" if np.isnan(r["mask_iou"]) else f"{r['mask_iou']:.3f}"
        lost = (f"{r['leave_lost_within_10']}/{r['leave_events']}" if r["leave_events"] else "—")
        lines.append(f"| {name} | {r['success_auc']:.3f} | {r['success_auc_pooled']:.3f} | {r['precision_20']:.3f} "
                     f"| {r['norm_precision']:.3f} | {m} | {_fmt(r['failure_auroc'])} | {r['max_oversize_run']} "
                     f"({r['max_oversize_run_sequence']}) | {lost} | {r['fps']:.1f} | {r['startup_s']:.2f} "
                     f"| {r['total_wall_s']:.1f} |")
    lines += ["", "success AUC: mean over sequences; AUC pooled: over all scored frames. failure AUROC: confidence of "
              f"frames with IoU >= {metrics.GOOD_IOU} against frames with IoU < {metrics.BAD_IOU} or the target out of "
              "view, pooled over the set (OpenCV trackers: their success flag). longest >4x run: most consecutive "
              "frames with state TRACKING and box area > 4x the truth area (worst sequence). LOST within 10: events "
              "where the target leaves the view and the state is LOST within 10 frames / all such events.",
              "", "Success AUC per sequence" + (" (Δ = tracker - csrt)" if "csrt" in names else "") + ":", "",
              "| sequence | " + " | ".join(f"{n} | Δ" if "csrt" in names and n != "csrt" else n for n in names)
              + " |", "|---|" + "---:|" * (len(names) + (len(names) - 1 if "csrt" in names else 0))]
    for seq_name, vals in per_seq.items():
        cells = []
        for n in names:
            cells.append(f"{vals[n]['auc']:.3f}")
            if "csrt" in names and n != "csrt":
                cells.append(f"{vals[n]['auc'] - vals['csrt']['auc']:+.3f}")
        lines.append(f"| {seq_name} | " + " | ".join(cells) + " |")
    lines += ["", "Failure modes per sequence (failure AUROC / longest >4x TRACKING run / LOST within 10 of "
              "leave-view events):", "", "| sequence | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for seq_name, vals in per_seq.items():
        lines.append(f"| {seq_name} | " + " | ".join(
            f"{_fmt(vals[n]['auroc'])} / {vals[n]['oversize_run']} / "
            + (f"{vals[n]['leave'][1]}/{vals[n]['leave'][0]}" if vals[n]['leave'][0] else "—") for n in names) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    json.dump({n: {**{k: v for k, v in r.items() if k != "curves"},
                   "per_sequence": {sq: vals[n] for sq, vals in per_seq.items()}} for n, r in results.items()},
              open(out / "results.json", "w"), indent=1)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
