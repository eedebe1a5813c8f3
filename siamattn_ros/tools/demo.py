"""First thing to run: the tracker node on the bundled demo recording, with the shipped model.

    make demo          (or: python -m siamattn_ros.tools.demo [--recording NAME] [--model PATH] [--out DIR])

Starts `tracker_node` as a separate process, replays the recording into it over ROS 2 (frame by frame, header
stamps as recorded), initialises the track from the recording's first ground-truth box with an InitBox stamped
with that (past) frame, and collects /track/result and /track/overlay. Writes to demo_output/:
  <recording>_overlay.mp4   the node's overlay (box, mask, state) with the ground truth drawn in white
  <recording>_success.png   success plot (fraction of frames with IoU > threshold) and IoU per frame
  <recording>_results.csv   one line per frame: stamp, state, box, truth, IoU
  <recording>_node.log      the node's console output
and prints frames, FPS and mean IoU. Exit status: 0 done, 2 shipped model missing, 1 anything else failed.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RECORDING = "vtest_woman"
LEGEND = "white: truth | box, mask: green TRACKING, amber LOW_CONFIDENCE, red LOST | cyan: mask's rotated box"


def default_model() -> Path:
    """The shipped checkpoint where it is found (source tree, then a colcon install), else its source-tree path."""
    from siamattn_ros.tracker.build import EMBEDDED_FILE, model_dirs

    for d in model_dirs():
        if (d / EMBEDDED_FILE).is_file():
            return d / EMBEDDED_FILE
    return REPO / "models" / EMBEDDED_FILE


def _draw_frame(base: np.ndarray, truth: np.ndarray, line1: str, line2: str, scale: int) -> np.ndarray:
    import cv2

    img = cv2.resize(base, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    if np.isfinite(truth).all():
        x, y, w, h = (float(v) * scale for v in truth)
        cv2.rectangle(img, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))),
                      (255, 255, 255), 1, cv2.LINE_AA)
    bar = np.full((46, img.shape[1], 3), 32, np.uint8)
    cv2.putText(bar, line1, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(bar, line2, (8, 38), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (200, 200, 200), 1, cv2.LINE_AA)
    return np.vstack([img, bar])


def write_video(run, path: Path, fps: float, scale: int = 2) -> int:
    """The overlay video: node overlay per frame (or the plain frame, marked, if its overlay did not arrive)."""
    import cv2

    from siamattn_ros.interface.metrics import box_iou
    from siamattn_ros.interface.states import state_name

    rec = run.recording
    writer = None
    written = 0
    try:
        for i in range(run.init_index, run.last_index + 1):
            f = rec.frames[i]
            base = run.overlays.get(f.stamp_ns)
            note = ""
            if base is None:
                base, note = f.decode(), " (node overlay not received)"
            state = state_name(run.states[i], "-")
            iou = box_iou(run.boxes[i], rec.truth[i], missing_pred=np.nan)[0]
            iou_txt = "target out of view" if not np.isfinite(rec.truth[i]).all() else f"IoU {iou:.2f}"
            frame = _draw_frame(base, rec.truth[i], f"frame {i}/{len(rec) - 1}  {state}  {iou_txt}{note}", LEGEND,
                                scale)
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write mp4 video to {path}")
            writer.write(frame)
            written += 1
    finally:
        if writer is not None:
            writer.release()
    return written


def baseline_ious(run) -> np.ndarray:
    """IoUs of OpenCV's CSRT tracker (offline, same init box and frames) for comparison in the plot."""
    import cv2

    from siamattn_ros.interface.metrics import box_iou

    rec = run.recording
    tracker = cv2.TrackerCSRT_create()
    tracker.init(rec.frames[run.init_index].decode(), tuple(int(round(v)) for v in rec.truth[run.init_index]))
    pred = []
    for i in range(run.init_index + 1, run.last_index + 1):
        ok, box = tracker.update(rec.frames[i].decode())
        pred.append(box if ok else (np.nan,) * 4)
    truth = rec.truth[run.init_index + 1: run.last_index + 1]
    return box_iou(np.array(pred, np.float64), truth)  # a CSRT failure while in view counts 0


def write_plot(run, ious: np.ndarray, path: Path, title: str, baseline: np.ndarray | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from siamattn_ros.interface.metrics import SUCCESS_THRESHOLDS, auc, success_curve
    from siamattn_ros.interface.states import TrackState

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(SUCCESS_THRESHOLDS, success_curve(ious), lw=2, label=f"tracker_node (AUC {auc(ious):.3f})")
    if baseline is not None:
        a.plot(SUCCESS_THRESHOLDS, success_curve(baseline), lw=1.2, ls="--", color="grey",
               label=f"OpenCV CSRT, for reference (AUC {auc(baseline):.3f})")
    a.set_xlabel("overlap threshold (IoU)")
    a.set_ylabel("fraction of frames with IoU > threshold")
    a.set_title("success plot")
    a.set_xlim(0, 1)
    a.set_ylim(0, 1.02)
    a.grid(alpha=0.3)
    a.legend(loc="lower left")
    idx = np.arange(run.init_index + 1, run.last_index + 1)
    b.plot(idx, ious, lw=1.2, label="IoU with ground truth")
    if baseline is not None:
        b.plot(idx, baseline, lw=0.8, ls="--", color="grey", label="CSRT")
    absent = ~np.isfinite(run.recording.truth[idx]).all(axis=1)
    if absent.any():
        b.fill_between(idx, 0, 1, where=absent, color="grey", alpha=0.25, step="mid", label="target out of view")
    lost = run.states[idx] == TrackState.LOST
    if lost.any():
        b.plot(idx[lost], np.full(lost.sum(), 0.02), "r|", ms=8, label="node reports LOST")
    b.set_xlabel("frame")
    b.set_ylabel("IoU")
    b.set_ylim(0, 1.02)
    b.set_title("per frame")
    b.grid(alpha=0.3)
    b.legend(loc="lower left", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_csv(run, ious: np.ndarray, path: Path) -> None:
    from siamattn_ros.interface.states import state_name

    rec = run.recording
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "stamp_ns", "state", "x", "y", "w", "h", "truth_x", "truth_y", "truth_w", "truth_h",
                    "iou"])
        for k, i in enumerate(range(run.init_index, run.last_index + 1)):
            iou = "" if k == 0 or not np.isfinite(ious[k - 1]) else f"{ious[k - 1]:.4f}"
            w.writerow([i, rec.frames[i].stamp_ns, state_name(run.states[i], "none")]
                       + [f"{v:.2f}" for v in run.boxes[i]] + [f"{v:.2f}" for v in rec.truth[i]] + [iou])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recording", default=DEFAULT_RECORDING, help="bundled recording name or bag folder")
    ap.add_argument("--model", type=Path, default=None,
                    help="checkpoint (default: the shipped model, models/siamattn_mnv2_embedded.pth)")
    ap.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output/)")
    ap.add_argument("--transport", choices=("compressed", "raw"), default="compressed",
                    help="feed the node the JPEG CompressedImage topic (default) or decoded sensor_msgs/Image")
    ap.add_argument("--baseline", action="store_true",
                    help="also run OpenCV's CSRT tracker (offline) on the same frames and add its curve to the plot "
                         "for reference (slow: about 1 minute per 200 frames on a busy 2-core machine)")
    ap.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (default: all)")
    ap.add_argument("--domain-id", type=int, default=None,
                    help="ROS_DOMAIN_ID for the demo's node and replay (default: a private one derived from the "
                         "process id, so the demo neither disturbs nor hears another ROS graph on this machine)")
    args = ap.parse_args(argv)

    if args.model is None:
        args.model = default_model()
    if not args.model.is_file():
        print(f"The shipped model is not there: {args.model} does not exist.\n"
              f"The demo needs it. Get the repository's models/ folder (git pull / git lfs pull), or train one "
              f"(see README.md) and pass it with --model PATH.", file=sys.stderr)
        return 2
    import os

    domain = args.domain_id if args.domain_id is not None else 150 + os.getpid() % 80
    os.environ["ROS_DOMAIN_ID"] = str(domain)  # read by rclpy.init and inherited by the node process
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from siamattn_ros.interface.metrics import auc
    from siamattn_ros.replay.recording import load_recording
    from siamattn_ros.interface.states import TrackState
    from siamattn_ros.replay.session import run_tracker

    rec = load_recording(args.recording)
    name = rec.path.name
    print(f"siamattn_ros demo: tracker_node on recording '{name}' ({len(rec)} frames "
          f"{rec.info.get('width', '?')}x{rec.info.get('height', '?')}, {rec.info.get('source', '')})")
    print(f"  ROS_DOMAIN_ID={domain}, discovery {os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}")
    print(f"  model {args.model}; the node runs as a separate process on the CPU; frames are replayed over ROS 2 "
          f"one at a time (the next frame is sent when the result for the previous one arrived)")
    x, y, w, h = rec.truth[0]
    print(f"  init: /track/init with frame 0's stamp and its ground-truth box x={x:.1f} y={y:.1f} w={w:.1f} "
          f"h={h:.1f} (sent after 3 more frames, so the node initialises on a past frame and catches up)")
    t0 = time.monotonic()

    def progress(i: int, n: int) -> None:
        if i % 25 == 0 or i == n - 1:
            print(f"  frame {i + 1}/{n}  ({time.monotonic() - t0:.0f} s)", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    node_log = args.out / f"{name}_node.log"
    try:
        run = run_tracker(rec, args.model, transport=args.transport, collect_overlays=True, progress=progress,
                          max_frames=args.max_frames,
                          log_path=node_log)
    except RuntimeError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    ious = run.evaluated_ious()
    visible = np.isfinite(ious)
    proc = [r.processing_s for r in run.results if r.init_id >= 1 and r.frames_since_init > 0]
    args.out.mkdir(parents=True, exist_ok=True)
    video, plot, table = (args.out / f"{name}_overlay.mp4", args.out / f"{name}_success.png",
                          args.out / f"{name}_results.csv")
    n_video = write_video(run, video, float(rec.info.get("fps", 10.0)))
    base = baseline_ious(run) if args.baseline else None
    write_plot(run, ious, plot, f"{name}: {args.model.name}, {run.tracked_frames} frames after init", base)
    write_csv(run, ious, table)
    lost = int((run.states[run.init_index + 1: run.last_index + 1] == TrackState.LOST).sum())
    print()
    print(f"frames tracked     {run.tracked_frames} (after the init frame; every frame answered, none dropped)")
    print(f"FPS                {run.fps:.1f} end to end over ROS (lock-step replay, includes DDS round trips); "
          f"{1.0 / np.mean(proc):.1f} from the node's own processing_time" if proc else "")
    print(f"mean IoU           {np.nanmean(ious):.3f} over {int(visible.sum())} frames with the target in view "
          f"(a LOST frame counts 0)")
    print(f"success AUC        {auc(ious):.3f}" + ("" if base is None else
          f"   (OpenCV CSRT on the same frames, for reference: mean IoU {np.nanmean(base):.3f}, AUC {auc(base):.3f})"))
    print(f"LOST reported      {lost} frames")
    print(f"overlay video      {video} ({n_video} frames)")
    print(f"success plot       {plot}")
    print(f"per-frame results  {table}")
    print(f"node log           {node_log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
