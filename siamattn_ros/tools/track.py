"""Track one object through a folder of frames or a video file and write per-frame results.

    python -m siamattn_ros.tools.track --images <folder | video> --init x,y,w,h [--model embedded] [--device cpu]
        [--checkpoint file.pth] [--config embedded] [--half] [--no-mask] [--box clipped|unclipped] --out results.csv
        [--overlay out.mp4]

results.csv: a header line, then `frame,x,y,w,h,score,state` per frame (the init frame has score 1 and state
INITIALIZING); boxes are top-left x, y, width, height in source pixels: by default the reported box (intersected with
the image); with --box unclipped the tracker's state box (may extend past the image), as the paper's OTB results are.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def parse_box(text: str) -> Tuple[float, float, float, float]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"--init needs x,y,w,h (4 comma-separated numbers), got {text!r}")
    try:
        return tuple(float(p) for p in parts)  # type: ignore[return-value]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--init: not a number in {text!r}") from e


def frame_source(path: Path) -> Tuple[int, Iterator[np.ndarray]]:
    """(frame count or -1, iterator of BGR frames) from an image folder (sorted by name) or a video file."""
    if path.is_dir():
        files: List[Path] = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise FileNotFoundError(f"no image files ({sorted(IMAGE_EXTS)}) in folder {str(path)!r}")

        def read_files() -> Iterator[np.ndarray]:
            for f in files:
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if img is None:
                    raise ValueError(f"cannot read image {str(f)!r}")
                yield img
        return len(files), read_files()
    if not path.is_file():
        raise FileNotFoundError(f"--images {str(path)!r} is neither a folder nor a file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video {str(path)!r}")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def read_video() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    return
                yield img
        finally:
            cap.release()
    return (count if count > 0 else -1), read_video()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m siamattn_ros.tools.track", description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True, type=Path, help="folder of frames (sorted by name) or a video file")
    ap.add_argument("--init", required=True, type=parse_box, help="first-frame box x,y,w,h (top-left, source px)")
    ap.add_argument("--model", default="embedded",
                    help="embedded | siamattn_r50 (needs --checkpoint) | path to one of our checkpoints")
    ap.add_argument("--checkpoint", default=None, help="weights for --model siamattn_r50 (the authors' file)")
    ap.add_argument("--config", default=None, help="tracker preset (otb100, vot2018, embedded) or YAML path")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--half", action="store_true", help="fp16 autocast (CUDA only)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch default)")
    ap.add_argument("--no-mask", action="store_true", help="skip the mask head (faster; boxes are unchanged)")
    ap.add_argument("--box", choices=("clipped", "unclipped"), default="clipped",
                    help="box written: 'clipped' = reported box inside the image (default); 'unclipped' = the state "
                         "box (the paper's OTB protocol)")
    ap.add_argument("--out", required=True, type=Path, help="CSV output: frame,x,y,w,h,score,state")
    ap.add_argument("--overlay", type=Path, default=None, help="also write an overlay video (e.g. out.mp4)")
    ap.add_argument("--fps", type=float, default=30.0, help="frame rate of the overlay video")
    args = ap.parse_args(argv)

    import torch
    from tqdm import tqdm

    from siamattn_ros.tracker import build_tracker
    from siamattn_ros.tracker.overlay import draw_overlay

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    count, frames = frame_source(args.images)
    tracker = build_tracker(args.model, checkpoint=args.checkpoint, device=args.device, half=args.half,
                            config=args.config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    with open(args.out, "w", newline="") as fcsv:
        out = csv.writer(fcsv)
        out.writerow(["frame", "x", "y", "w", "h", "score", "state"])
        for i, img in enumerate(tqdm(frames, total=count if count > 0 else None, unit="frame")):
            result = tracker.init(img, args.init) if i == 0 else tracker.track(img, want_mask=not args.no_mask)
            box = result.box_xywh if args.box == "clipped" else args.init if i == 0 else tracker.state_box_xywh
            x, y, w, h = (float(v) for v in box)
            out.writerow([i, f"{x:.2f}", f"{y:.2f}", f"{w:.2f}", f"{h:.2f}", f"{result.confidence:.4f}",
                          result.state.name])
            if args.overlay is not None:
                if writer is None:
                    first_size = img.shape[:2]
                    args.overlay.parent.mkdir(parents=True, exist_ok=True)
                    writer = cv2.VideoWriter(str(args.overlay), cv2.VideoWriter_fourcc(*"mp4v"), args.fps,
                                             (img.shape[1], img.shape[0]))
                    if not writer.isOpened():
                        raise RuntimeError(f"cannot write overlay video {str(args.overlay)!r}")
                frame = draw_overlay(img, result)
                if frame.shape[:2] != first_size:  # a video has one size: follow the first frame's
                    frame = cv2.resize(frame, (first_size[1], first_size[0]))
                writer.write(frame)
    if writer is not None:
        writer.release()
    print(f"wrote {args.out}" + (f" and {args.overlay}" if args.overlay else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
