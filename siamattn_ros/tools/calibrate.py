"""Calibrate the confidence thresholds of a model on annotated real sequences or on generated ones with exact truth.

    python -m siamattn_ros.tools.calibrate [--model embedded] --real data/annotations/<seq> ... [--verify]
    python -m siamattn_ros.tools.calibrate [--model embedded] [--sequences 6] [--frames 80] [--threads 1]

The raw score of a Siamese tracker is not a probability of "the target is here": a model may give background
0.7 and the target 0.95. So thresholds are per model. This runs the paper tracker (long_term off, so scores are
seen both on and off the target) on sequences where the target leaves and re-enters the frame and is occluded,
splits frames into on-target (IoU >= 0.5 with the truth) and off-target (IoU == 0 or target not visible), and
suggests:

* with --reference (models with a box-quality head): reference_confidence, the median over the sequences of the
  head's estimate of the init box on the init frame; each target's confidence is then scaled to that level
  (TrackerConfig.reference_confidence), and the thresholds below are computed on the scaled confidence. Without it
  the preset's reference_confidence is used as it is (0: off);
* confidence_threshold: the score that best separates the two groups (maximal balanced accuracy);
* lost_threshold: halfway between a typical wrong frame (off-target median) and a poor right one (on-target q5),
  and not above the 2 % quantile of on-target frames or confidence_threshold. A frame under it does not move the
  state and LOST holds it, so a false LOST costs the track while a late one costs a few frames; and the on-target
  level differs between targets (a tiny target in a low-resolution stream scores lower than the calibration
  sequences' targets), so LOST needs a clear drop, not the first frame under the on-target range;
* hysteresis: at most 0.1, and small enough that 90 % of on-target frames can still return to TRACKING (a target
  coming back into view is partly visible and scores lower).

With --verify it re-runs the sequences with the suggested values and long-term mode and reports how often the
state was right (TRACKING on target, LOW_CONFIDENCE/LOST off target). Put the values into
config/trackers/<preset>.yaml.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np

from siamattn_ros.interface.metrics import box_iou
from siamattn_ros.interface.states import TrackState


def collect(tracker, sequences) -> Tuple[np.ndarray, np.ndarray, List[list]]:
    """Scores of on-target and off-target frames, and per-sequence rows (state, on, off, IoU or None if the target
    is not visible)."""
    on: List[float] = []
    off: List[float] = []
    rows: List[list] = []
    for seq in sequences:
        tracker.init(seq.frames[0], seq.boxes_xywh[0])
        seq_rows = []
        for frame, box in zip(seq.frames[1:], seq.boxes_xywh[1:]):
            r = tracker.track(frame, want_mask=False)
            iou = float(np.nan_to_num(box_iou(r.box_xywh, box)[0], nan=0.0))  # target not visible: off-target
            if iou >= 0.5:
                on.append(r.confidence)
            elif iou == 0.0:
                off.append(r.confidence)
            seq_rows.append((r.state, iou >= 0.5, iou == 0.0, iou if np.isfinite(box).all() else None))
        rows.append(seq_rows)
    return np.array(on), np.array(off), rows


def reference_level(tracker, sequences) -> float:
    """Median over the sequences of the quality head's estimate of the init box on the init frame (the tracker's
    model must have the head; NaN for no sequences)."""
    levels = []
    for seq in sequences:
        tracker.init(seq.frames[0], seq.boxes_xywh[0])
        levels.append(tracker.measure_init_quality(seq.frames[0]))
    return float(np.median(levels)) if levels else float("nan")


def _mean_iou(rows: List[list]) -> float:
    ious = [row[3] for rs in rows for row in rs if row[3] is not None]
    return float(np.mean(ious)) if ious else float("nan")


def suggest(on: np.ndarray, off: np.ndarray) -> Dict[str, float]:
    if on.size == 0 or off.size == 0:
        raise ValueError(f"need on- and off-target frames, got {on.size} and {off.size}")
    cands = np.unique(np.concatenate((on, off)))
    bal = [((on >= t).mean() + (off < t).mean()) / 2 for t in cands]
    conf = float(cands[int(np.argmax(bal))])
    lost = float(min(conf, np.quantile(on, 0.02), (np.median(off) + np.quantile(on, 0.05)) / 2))
    # A target coming back into view is partly visible and scores below the fully visible one: the recovery level
    # (confidence_threshold + hysteresis) stays within reach of 90 % of on-target frames.
    hyst = float(np.clip(np.quantile(on, 0.10) - conf, 0.0, 0.1))
    return {"confidence_threshold": round(conf, 3), "lost_threshold": round(lost, 3), "hysteresis": round(hyst, 3),
            "balanced_accuracy": round(float(max(bal)), 3)}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m siamattn_ros.tools.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--config", default=None, help="preset the other values come from (default: the model's)")
    ap.add_argument("--sequences", type=int, default=6, help="number of generated sequences (without --real)")
    ap.add_argument("--real", nargs="+", default=None, metavar="DIR",
                    help="calibrate on these annotated real sequences (folders or roots of folders holding "
                         "groundtruth.txt, e.g. data/annotations/visp_mire2) instead of generated ones")
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--seed", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--reference", action="store_true",
                    help="also suggest reference_confidence (per-target confidence scale; quality-head models)")
    ap.add_argument("--use", default=None, metavar="CONF,LOST,HYST",
                    help="verify these thresholds instead of the suggested ones")
    args = ap.parse_args(argv)

    import torch

    from siamattn_ros.data import SequenceSpec, make_sequence
    from siamattn_ros.data.seqio import list_sequences, read_sequence
    from siamattn_ros.tracker.build import build_tracker

    torch.set_num_threads(args.threads)
    tracker = build_tracker(args.model, checkpoint=args.checkpoint, config=args.config)
    base = tracker.config
    if args.real:
        folders = [f for root in args.real for f in list_sequences(root)]
        if not folders:
            raise SystemExit(f"--real: no sequence folder (with groundtruth.txt) under {args.real}")
        seqs = [read_sequence(f, load_masks=False) for f in folders]
        print("real sequences: " + ", ".join(f"{f.name} ({len(q.frames)} frames)" for f, q in zip(folders, seqs)))
    else:
        spec = SequenceSpec(num_frames=args.frames, width=480, height=360, leave_reenter=True, occlusion=True,
                            distractor=True)
        seqs = [make_sequence(spec, seed=args.seed + i) for i in range(args.sequences)]
    if args.reference and not tracker.has_quality_head:
        raise SystemExit(f"--reference needs a model with a box-quality head; {args.model} has none")
    if args.reference and not args.use:
        ref = round(reference_level(tracker, seqs), 3)
        print(f"reference_confidence: {ref} (median init-box quality over {len(seqs)} sequences)")
        base = base.replace(reference_confidence=ref)
    if args.use:
        vals = [float(v) for v in args.use.split(",")]
        if len(vals) != 3:
            raise SystemExit(f"--use needs CONF,LOST,HYST, got {args.use!r}")
        s = dict(zip(("confidence_threshold", "lost_threshold", "hysteresis"), vals))
    else:
        tracker.config = base.replace(long_term=False)
        on, off, rows = collect(tracker, seqs)
        print(f"paper tracker (long_term off): mean IoU over visible frames {_mean_iou(rows):.3f}")
        q = [0.05, 0.25, 0.5, 0.75, 0.95]
        for name, v in (("on-target", on), ("off-target", off)):
            qs = ", ".join(f"q{int(p * 100)} {x:.3f}" for p, x in zip(q, np.quantile(v, q))) if v.size else "-"
            print(f"{name} frames: {v.size}, scores {qs}")
        s = suggest(on, off)
        print(f"suggested (balanced accuracy {s.pop('balanced_accuracy')}):")
        if base.reference_confidence > 0:
            s["reference_confidence"] = base.reference_confidence
        for k, v in s.items():
            print(f"{k}: {v}")
    if args.verify:
        print(f"verifying {s}")
        tracker.config = base.replace(long_term=True, **s)
        _, _, rows = collect(tracker, seqs)
        flat = [r for rs in rows for r in rs]
        on_ok = [st == TrackState.TRACKING for st, is_on, _, _ in flat if is_on]
        off_ok = [st in (TrackState.LOW_CONFIDENCE, TrackState.LOST) for st, _, is_off, _ in flat if is_off]
        lost_seen = sum(any(row[0] == TrackState.LOST for row in rs) for rs in rows)
        on_rate = np.mean(on_ok) if on_ok else float("nan")
        off_rate = np.mean(off_ok) if off_ok else float("nan")
        print(f"verify (long_term on): on-target frames TRACKING {on_rate:.2f} of {len(on_ok)}, off-target frames "
              f"LOW_CONFIDENCE/LOST {off_rate:.2f} of {len(off_ok)}, sequences that reached LOST "
              f"{lost_seen}/{len(rows)}, mean IoU over visible frames {_mean_iou(rows):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
