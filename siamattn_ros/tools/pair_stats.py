"""Statistics of the training pairs, next to those of real tracking (docs/TRAINING_DATA.md).

    python -m siamattn_ros.tools.pair_stats [--config config/train/embedded.yaml] [--pairs 300] [--seed 0]
                                            [--sequences data/annotations]

Samples N training pairs from the config's `sources:` (drawn by their weights, as training does; negative pairs are
left out: their template is from another pair) and prints, per source and over all pairs, a Markdown table of:
target size relative to the frame (sqrt(box area / frame area), box width / frame width, sqrt(wh) in pixels),
small and large targets, aspect, border contact of the template and search boxes, the motion between the template
and the search frame (centre displacement / sqrt(template box area), scale change |log area ratio|), how far the
target lies from the centre of the network's search crop and how much of that crop is outside the image (constant
padding), and grey images (frame, and crop after augmentation).

With --sequences, the same statistics for real annotated sequences (every frame where the target is in view;
motion and the search crop from each frame to the next, as a tracker that was right on the previous frame cuts it;
scale change from the first frame, whose box is the tracker's template), pooled over frames and per sequence.
Light on purpose: one thread, a few seconds per 100 pairs; real frames are decoded only for the first frame.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from siamattn_ros.data import box_stats as bs
from siamattn_ros.interface.paths import package_file

# Rows of the tables: (key, label). The values are filled by _row_values.
ROWS = (
    ("n", "pairs / frames"),
    ("frame", "frame W×H"),
    ("rel", "√(box area / frame area) p10 / med / p90"),
    ("wfrac", "box w / frame w p10 / med / p90"),
    ("side", "√(wh) px p10 / med / p90"),
    ("small_min", "shorter side ≤ 20 px"),
    ("small_side", "√(wh) ≤ 20 px"),
    ("wide", "box w > 50 % of frame w"),
    ("elong", "aspect beyond 1:3 (max)"),
    ("border_t", "template box at frame edge"),
    ("border_s", "search box at frame edge"),
    ("motion", "motion / √(wh) p10 / med / p90"),
    ("motion_px", "motion px med (> 20 px)"),
    ("scale_step", "scale change abs(ln area ratio) med / p90 (ratio ∉ [½, 2])"),
    ("scale_tmpl", "template→search scale change med / p90 (∉ [½, 2])"),
    ("offset", "target offset in search crop / √(wh) med / p90 (> 1)"),
    ("pad", "search crop outside image med / p90 (> 25 %)"),
    ("grey", "grey frames / grey crops"),
)


@dataclasses.dataclass
class Samples:
    """Per-pair (or per-frame) measurements of one source; NaN where a value does not apply."""

    name: str
    frame_wh: list = dataclasses.field(default_factory=list)        # search frame (W, H)
    tmpl_box: list = dataclasses.field(default_factory=list)        # the template box of each search box
    tmpl_at_border: list = dataclasses.field(default_factory=list)  # per template (real: one per sequence)
    box: list = dataclasses.field(default_factory=list)             # search box
    step_prev: list = dataclasses.field(default_factory=list)       # motion pairs: previous box ...
    step_cur: list = dataclasses.field(default_factory=list)        # ... and current box
    step_px: list = dataclasses.field(default_factory=list)
    offset: list = dataclasses.field(default_factory=list)          # target offset in the search crop / size
    pad: list = dataclasses.field(default_factory=list)             # search crop fraction outside the image
    grey_frame: list = dataclasses.field(default_factory=list)
    grey_crop: list = dataclasses.field(default_factory=list)
    visible: list = dataclasses.field(default_factory=list)         # real sequences: target in view, every frame

    def extend(self, other: "Samples") -> None:
        for f in dataclasses.fields(self):
            if f.name != "name":
                getattr(self, f.name).extend(getattr(other, f.name))


def _a(values: list, cols: int = 4) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, cols)


def _fmt3(q: tuple) -> str:
    return " / ".join("—" if np.isnan(v) else f"{v:.2f}" for v in q)


def _pct(v: float) -> str:
    return "—" if np.isnan(v) else f"{100 * v:.0f} %"


def summarise(s: Samples) -> dict:
    """Table cells (strings) of one column."""
    box, fwh = _a(s.box), _a(s.frame_wh, 2)
    tbox = _a(s.tmpl_box)
    prev, cur = _a(s.step_prev), _a(s.step_cur)
    side = bs.side_px(box)
    asp = bs.aspect(box)
    mot = bs.motion(prev, cur) if len(prev) else np.zeros(0)
    step_scale = bs.scale_change(prev, cur) if len(prev) else np.zeros(0)
    tmpl_scale = bs.scale_change(tbox, box) if len(tbox) else np.zeros(0)
    off = np.asarray(s.offset, np.float64)
    pad = np.asarray(s.pad, np.float64)
    px = np.asarray(s.step_px, np.float64)
    log2 = np.log(2.0)
    frames = sorted({f"{int(w)}×{int(h)}" for w, h in fwh})
    out = {
        "n": str(len(box)),
        "frame": ", ".join(frames) if len(frames) <= 3 else f"{len(frames)} sizes",
        "rel": _fmt3(bs.quantiles(bs.relative_size(box, fwh))),
        "wfrac": _fmt3(bs.quantiles(bs.width_fraction(box, fwh))),
        "side": " / ".join(f"{v:.0f}" for v in bs.quantiles(side)),
        "small_min": _pct(bs.fraction(np.minimum(box[:, 2], box[:, 3]) <= bs.SMALL_SIDE_PX)),
        "small_side": _pct(bs.fraction(side <= bs.SMALL_SIDE_PX)),
        "wide": _pct(bs.fraction(bs.width_fraction(box, fwh) > 0.5)),
        "elong": f"{_pct(bs.fraction(asp > bs.ELONGATED))} ({np.nanmax(asp):.1f})" if len(asp) else "—",
        "border_t": _pct(bs.fraction(s.tmpl_at_border)),
        "border_s": _pct(bs.fraction(bs.touches_border(box, fwh))),
        "motion": _fmt3(bs.quantiles(mot)),
        "motion_px": (f"{bs.quantiles(px)[1]:.1f} ({_pct(bs.fraction(px > 20.0))})" if px.size else "—"),
        "scale_step": (f"{_fmt3(bs.quantiles(step_scale)[1:])} ({_pct(bs.fraction(step_scale > log2))})"
                       if step_scale.size else "—"),
        "scale_tmpl": (f"{_fmt3(bs.quantiles(tmpl_scale)[1:])} ({_pct(bs.fraction(tmpl_scale > log2))})"
                       if tmpl_scale.size else "—"),
        "offset": (f"{_fmt3(bs.quantiles(off)[1:])} ({_pct(bs.fraction(off > 1.0))})" if off.size else "—"),
        "pad": (f"{_fmt3(bs.quantiles(pad)[1:])} ({_pct(bs.fraction(pad > 0.25))})" if pad.size else "—"),
        "grey": f"{_pct(bs.fraction(s.grey_frame))} / "
                + (_pct(bs.fraction(s.grey_crop)) if s.grey_crop else "—"),
    }
    return out


# Benchmark attributes computed from the truth (the thresholds of the OTB-100 and LaSOT attribute definitions,
# docs/TRAINING_DATA.md): (key, label). "Ratio" is read as the ratio of box areas, the first box being the template.
ATTRIBUTES = (
    ("lr_otb", "LR (OTB): box area < 400 px"),
    ("lr_lasot", "LR (LaSOT): box area < 1000 px"),
    ("fm_otb", "FM (OTB): centre motion > 20 px"),
    ("fm_lasot", "FM (LaSOT): centre motion > box size √(wh)"),
    ("sv", "SV: area ratio to the template ∉ [½, 2]"),
    ("arc", "ARC (LaSOT): aspect ratio change to the template ∉ [½, 2]"),
    ("border", "box at the frame edge (target cut by / touching it)"),
    ("absent", "target absent (out of view / fully hidden)"),
)


def attribute_flags(s: Samples) -> dict:
    """Per unit flags of ATTRIBUTES: one row per pair (template + search box, one motion step), or one row for a
    real sequence (any frame / any frame-to-frame step)."""
    box, tbox, fwh = _a(s.box), _a(s.tmpl_box), _a(s.frame_wh, 2)
    prev, cur = _a(s.step_prev), _a(s.step_cur)
    area = box[:, 2] * box[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = area / (tbox[:, 2] * tbox[:, 3])
        arc = (box[:, 2] / box[:, 3]) / (tbox[:, 2] / tbox[:, 3])
    px = np.asarray(s.step_px, np.float64)
    flags = {
        "lr_otb": area < 400.0, "lr_lasot": area < 1000.0,
        "sv": (ratio < 0.5) | (ratio > 2.0), "arc": (arc < 0.5) | (arc > 2.0),
        "border": bs.touches_border(box, fwh),
    }
    step = {"fm_otb": px > 20.0, "fm_lasot": bs.motion(prev, cur) > 1.0 if len(prev) else np.zeros(0, bool)}
    if s.visible:   # a real sequence: one unit
        out = {k: bool(np.any(v)) for k, v in {**flags, **step}.items()}
        out["border"] = out["border"] or bool(np.any(s.tmpl_at_border))
        out["absent"] = not all(s.visible)
        return out
    # pairs: one step per pair, the template box counts for the border too
    out = {**flags, **step}
    out["border"] = flags["border"] | np.asarray(s.tmpl_at_border, bool)
    out["absent"] = np.zeros(len(box), bool)   # a pair always shows its target (negatives are another pair's)
    return out


def attribute_table(pair_cols: list[Samples], seqs: list[Samples]) -> list[str]:
    """Markdown table: fraction of pairs per pair source; for real sequences, how many have the attribute."""
    heads = [f"{c.name} (% of pairs)" for c in pair_cols]
    cells = [{k: _pct(bs.fraction(v)) for k, v in attribute_flags(c).items()} for c in pair_cols]
    if seqs:
        per_seq = [attribute_flags(q) for q in seqs]
        heads.append(f"real: sequences of {len(seqs)}")
        cells.append({k: str(sum(f[k] for f in per_seq)) for k, _ in ATTRIBUTES})
        heads += [q.name for q in seqs]
        cells += [{k: "yes" if f[k] else "·" for k, _ in ATTRIBUTES} for f in per_seq]
    lines = ["| attribute | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for key, label in ATTRIBUTES:
        lines.append(f"| {label} | " + " | ".join(c[key] for c in cells) + " |")
    return lines


def table(columns: list[Samples]) -> list[str]:
    """Markdown table: one row per statistic, one column per source / sequence."""
    cells = [summarise(c) for c in columns]
    lines = ["| statistic | " + " | ".join(c.name for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(c[key] for c in cells) + " |")
    return lines


# ----------------------------------------------------------------------------------------------------------------------
# Training pairs
# ----------------------------------------------------------------------------------------------------------------------
def _crop_view(pair, crop: dict, instance_size: int) -> tuple[float, float]:
    """(target offset from the search crop's centre / target size, fraction of the crop outside the image)."""
    xb = np.asarray(crop["search_box"], np.float64)   # x1 y1 x2 y2 in crop pixels
    centre = instance_size / 2.0
    d = np.hypot((xb[0] + xb[2]) / 2 - centre, (xb[1] + xb[3]) / 2 - centre)
    off = d / np.sqrt((xb[2] - xb[0]) * (xb[3] - xb[1]))
    x1, y1, x2, y2 = np.asarray(crop["search_image_box"], np.float64)
    inside = max(0.0, min(x2, instance_size) - max(x1, 0.0)) * max(0.0, min(y2, instance_size) - max(y1, 0.0))
    return float(off), float(1.0 - inside / instance_size ** 2)


def source_names(specs: list) -> list[str]:
    """Column names of the configured sources: their type, numbered when a type occurs twice."""
    kinds = [str(dict(s).get("type", "?")) for s in specs]
    return [k if kinds.count(k) == 1 else f"{k}#{i}" for i, k in enumerate(kinds)]


def sample_pairs(config: str, n: int, seed: int = 0) -> list[Samples]:
    """Per-source Samples of `n` pairs drawn from the training config's sources by their weights."""
    from siamattn_ros.data.pairs import crop_pair
    from siamattn_ros.model.config import get_config
    from siamattn_ros.train.config import TrainConfig
    from siamattn_ros.train.dataset import build_sources

    cfg = TrainConfig.from_yaml(config)
    mc = get_config(cfg.model)
    sources, weights = build_sources(cfg.sources)
    out = [Samples(name) for name in source_names(cfg.sources)]
    aug = dataclasses.replace(cfg.augment, flip=0.0)   # a mirrored crop has the same statistics; off to read it back
    rng = np.random.default_rng(seed)
    for _ in range(n):
        k = int(rng.choice(len(sources), p=weights))
        pair = sources[k].sample(rng)
        crop = crop_pair(rng, pair, aug, mc.exemplar_size, mc.instance_size)
        s = out[k]
        th, tw = pair.template_image.shape[:2]
        h, w = pair.search_image.shape[:2]
        tb, sb = np.asarray(pair.template_box, float), np.asarray(pair.search_box, float)
        s.tmpl_at_border.append(bool(bs.touches_border(tb, (tw, th))[0]))
        s.frame_wh.append((w, h))
        s.tmpl_box.append(tb)
        s.box.append(sb)
        s.step_prev.append(tb)
        s.step_cur.append(sb)
        s.step_px.append(float(np.hypot(*(sb[:2] + sb[2:] / 2 - tb[:2] - tb[2:] / 2))))
        off, pad = _crop_view(pair, crop, mc.instance_size)
        s.offset.append(off)
        s.pad.append(pad)
        s.grey_frame.append(bs.is_grey(pair.search_image))
        s.grey_crop.append(bs.is_grey(crop["search"]))
    return [s for s in out if s.box]


# ----------------------------------------------------------------------------------------------------------------------
# Real sequences
# ----------------------------------------------------------------------------------------------------------------------
def _first_frame(folder: Path, seq) -> np.ndarray:
    """The sequence's first frame, decoding only what is needed (a folder of frames or the named footage)."""
    from siamattn_ros.data.seqio import footage_source, resolve_footage
    from siamattn_ros.data.sources import video_frames

    named = footage_source(folder)
    if named is not None:
        return video_frames(resolve_footage(named[0]), named[1], 1)[0]
    img = cv2.imread(str(seq.frames[0]), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{folder}: cannot read the first frame {seq.frames[0]}")
    return img


def sequence_samples(folder: Path) -> Samples:
    """Per-frame Samples of one annotated sequence (GOT-10k / LaSOT folder or annotation-only folder)."""
    from siamattn_ros.data.seqio import read_sequence

    seq = read_sequence(folder, load_frames=False, load_masks=False)
    f0 = _first_frame(folder, seq)
    h, w = f0.shape[:2]
    grey = bs.is_grey(f0)
    b = np.asarray(seq.boxes_xywh, np.float64)
    vis = np.asarray(seq.visible, bool) & ~np.isnan(b).any(axis=1)
    s = Samples(seq.name or folder.name)
    s.visible = vis.tolist()
    if not vis.any():
        return s
    first = b[np.flatnonzero(vis)[0]]
    for i in np.flatnonzero(vis):
        s.frame_wh.append((w, h))
        s.box.append(b[i])
        s.tmpl_box.append(first)
        s.grey_frame.append(grey)
    s.tmpl_at_border.append(bool(bs.touches_border(first, (w, h))[0]))
    steps = np.flatnonzero(vis[1:] & vis[:-1])   # frame i -> i + 1, both in view
    if steps.size:
        prev, cur = b[steps], b[steps + 1]
        s.step_prev.extend(prev)
        s.step_cur.extend(cur)
        s.step_px.extend(np.hypot(*(cur[:, :2] + cur[:, 2:] / 2 - prev[:, :2] - prev[:, 2:] / 2).T))
        # A tracker that was right on frame i centres frame i+1's search crop on box i.
        s.offset.extend(bs.motion(prev, cur))
        s.pad.extend(bs.outside_fraction(bs.search_windows(prev), (w, h)))
    return s


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(package_file("config/train/embedded.yaml")),
                    help="TrainConfig YAML whose sources are sampled (default: the embedded model's)")
    ap.add_argument("--pairs", type=int, default=300, help="number of training pairs (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sequences", nargs="*", default=[], help="folders of real annotated sequences (optional)")
    args = ap.parse_args(argv)
    if args.pairs < 0:
        raise SystemExit(f"--pairs must be >= 0, got {args.pairs}")
    if not Path(args.config).is_file():
        raise SystemExit(f"--config {args.config!r}: no such file")
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # the sources do not need torch; build_sources' module imports it
        pass
    cols: list[Samples] = []
    if args.pairs:
        per_source = sample_pairs(args.config, args.pairs, args.seed)
        cols = list(per_source)
        if len(per_source) > 1:
            total = Samples("all pairs")
            for s in per_source:
                total.extend(s)
            cols.append(total)
        print(f"## Training pairs: {args.pairs} from {args.config} (seed {args.seed})\n")
        print("\n".join(table(cols)))
    if args.sequences:
        from siamattn_ros.data.seqio import list_sequences

        folders = [f for root in args.sequences for f in list_sequences(root)]
        if not folders:
            raise SystemExit(f"no sequence folders (with groundtruth.txt) under {args.sequences}")
        seqs = [sequence_samples(f) for f in folders]
        pooled = Samples("real (all frames)")
        for s in seqs:
            pooled.extend(s)
        print(f"\n## Real sequences: {len(seqs)} under {' '.join(args.sequences)} (target in view)\n")
        print("\n".join(table([pooled] + seqs)))
    else:
        seqs = []
    print("\n## Benchmark attributes (OTB-100 / LaSOT definitions, docs/TRAINING_DATA.md)\n")
    print("\n".join(attribute_table(cols, seqs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
