"""Tracker hyper-parameters as a dataclass, loadable from the YAML presets in config/trackers/.

The first block are the paper's inference constants (spec §9.2); the second block are additions for robots
(confidence states with hysteresis, long-term re-detection) and for speed. ``long_term: false`` plus the paper
constants reproduces the authors' tracker exactly; the confidence state is then still reported but never changes
the boxes.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from siamattn_ros.interface.paths import package_dirs
from siamattn_ros.yaml_config import YamlConfig

PRESETS = ("otb100", "vot2018", "embedded")

# Fields that may be changed while tracking (the ROS node exposes them as dynamic parameters).
RUNTIME_FIELDS = (
    "confidence_threshold", "hysteresis", "lost_threshold", "lost_frames", "low_confidence_frames", "long_term",
    "lost_search_rings", "lost_search_step", "lost_window_influence", "lost_follow", "penalty_k", "window_influence",
    "lr", "mask_threshold", "box_from_mask", "template_search_trust", "template_search_margin",
    "template_search_frames",
)


@dataclass
class TrackerConfig(YamlConfig):
    """Inference settings. Geometry (exemplar/instance size, anchors) comes from the model's config, not from here."""

    # --- paper (spec §9.2; defaults = config_vot2018.yaml) --------------------------------------------------------
    penalty_k: float = 0.10
    window_influence: float = 0.25
    lr: float = 0.45
    context_amount: float = 0.5
    mask_threshold: float = 0.2
    # --- confidence states (robot addition) ------------------------------------------------------------------------
    # TRACKING -> LOW_CONFIDENCE when score < confidence_threshold; back to TRACKING only when
    # score >= confidence_threshold + hysteresis (avoids flicker around the threshold).
    confidence_threshold: float = 0.5
    hysteresis: float = 0.1
    # LOST after lost_frames consecutive frames with score < lost_threshold.
    lost_threshold: float = 0.2
    lost_frames: int = 5
    # LOST after this many consecutive frames in LOW_CONFIDENCE (0 = never): a target that could not be confirmed for
    # that long is treated as gone, so long-term re-detection starts and a consumer stops following the box. Catches
    # the background that a confidence rates between lost_threshold and the recovery level after the target left.
    low_confidence_frames: int = 0
    # --- long-term re-detection (robot addition) -------------------------------------------------------------------
    # When true: a frame with score < lost_threshold does not move the target state, and while LOST the search
    # window scans a widening neighbourhood of the last confident position, step by step: every other frame it
    # looks at the last position again (occlusions usually end where they began), the frames in between visit the
    # 8 windows of ring 1, then the 16 of ring 2, ... up to lost_search_rings, then start over. Windows are
    # lost_search_step × the score map's extent apart. The crop keeps the normal scale and instance size, so the
    # network sees the target at the size it was trained for and input shapes never change (CUDA-graph friendly).
    # The target is re-acquired when a frame scores >= confidence_threshold + hysteresis. While LOST in this mode the
    # mask is all zero and the polygon is the box (with long_term false both are computed on every frame, as in the
    # paper).
    long_term: bool = True
    lost_search_rings: int = 2
    lost_search_step: float = 0.75
    # While LOST the target may be anywhere in the search window: weaker cosine window.
    lost_window_influence: float = 0.05
    # While LOST: a frame searched at the last position (not a ring window) whose best candidate scores at least
    # lost_threshold and lies within one target size (sqrt(w*h)) of it moves that position there (centre only; size
    # and state stay, LOST until the recovery level). A target that comes back from an occlusion partly hidden,
    # scoring under the recovery level, and moves on would otherwise leave the frozen window before it is seen whole;
    # but the LOST box then drifts with whatever scores above lost_threshold (measured: MODEL_CARD, off in the presets).
    lost_follow: bool = False
    # --- box-quality head (models that have one: the embedded model) -----------------------------------------------
    # Choose the box of each frame among the refined box, the RPN box and the refined centre at the previous size by
    # the head's predicted IoU (instead of always the refined box): the head has seen boxes grown over the
    # out-of-image padding in training, the RPN / refinement of a large or border-touching target tend to grow.
    quality_select: bool = False
    # With quality_select: how much better (in predicted IoU) the refined or RPN box must be rated than the box at
    # the previous size for the size to change. The head's ratings of boxes 10 % apart in size are within its noise,
    # and a refinement that overshoots a little on every frame would otherwise ratchet the size up frame by frame.
    quality_margin: float = 0.0
    # Per-target confidence scale (0 = off). The head's estimate for a correct box depends on the target: a 45x17 px
    # target in a 176x144 stream scores ~0.54, a pedestrian in 768x576 ~0.74, so one fixed threshold declares the
    # first LOST while the box is still right (and LOST holds the state). With a value r > 0 each init measures the
    # head's estimate of the init box on the init frame (r0, where the box is right by definition) and the published
    # confidence becomes min(1, quality * r / r0), the factor r / r0 kept within [2/3, 1.5]: thresholds then mean the
    # same for every target (at the price of one more network pass per init: ~110 ms on one CPU core for the
    # embedded model). r is the model's typical r0 (`tools.calibrate --reference` prints it).
    reference_confidence: float = 0.0
    # --- template check of size changes (siamattn_ros.tracker.size_check) ----------------------------------------
    # Keep the previous size unless the frame resampled at the new size matches the init template at least as well
    # (backbone features, one batch of two exemplar crops on a checked frame). Stops the box of a large rigid target
    # from growing frame by frame where box and quality heads both prefer a larger box.
    verify_size: bool = False
    # The check decides only while the template matches the previous size at least this well (cosine, -1..1): a
    # deforming or turning target no longer resembles its template, and then the similarity says little about size.
    verify_trust: float = 0.5
    # Sizes within this relative change (width or height) of the last checked size pass without a check: the check
    # costs ~0.2 of a frame, and most frames barely change the size. Bounds the unchecked drift.
    verify_step: float = 0.02
    # --- template search of the state box (siamattn_ros.tracker.template_search) ------------------------------------
    # On every frame, rate boxes around the state against the init template on the search step's own features (50
    # boxes: centre moved by up to 0.2 of the box, then width and height scaled 0.8-1.25; ~2 ms on one CPU core), and
    # let the best one replace the state once it has matched at least template_search_trust and template_search_margin
    # better than the state box on template_search_frames consecutive frames. Corrects a state that the box heads
    # keep too large or off-centre on a rigid target. Read at init (the reference is taken there).
    template_search: bool = False
    template_search_trust: float = 0.5
    template_search_margin: float = 0.02
    template_search_frames: int = 3
    # Only for targets the template does not enlarge more than this (exemplar crop pixels per source pixel): on a
    # small target one source pixel is several template pixels, and the search moved the box by pixels the template
    # cannot place (carphone_bowtie, 45x17 px, zoom 2.1: 0.805 -> 0.741 success AUC).
    template_search_max_zoom: float = 1.5
    # --- reported box ----------------------------------------------------------------------------------------------
    # Report the bounding box of the mask's largest component (the component the polygon describes) instead of the
    # state box, where that component is larger than MIN_POLYGON_AREA and overlaps the state box with IoU >=
    # MASK_BOX_MIN_IOU (a mask that split or leaked is not allowed to move the box). The state, and so the next
    # frame, is unchanged: only what is reported. The mask head then runs on every frame, also when track() is
    # called with want_mask=False. The mask follows the target's outline where the box regression overshoots (a
    # walking person's legs, a rigid target under perspective change); feeding it back into the state made a
    # person's box collapse (bikes_walker 0.47 -> 0.32). Measured: MODEL_CARD.
    box_from_mask: bool = False
    # Trim the mask to the pixels whose colour is likely on the target (siamattn_ros.tracker.colour_model: histograms
    # of the init box and of the ring around it, P(target | colour) >= colour_threshold), for targets whose colour
    # tells them from their surroundings on the init frame: the trimmed region there must overlap the init box with
    # IoU >= colour_min_fit, otherwise the mask stays as the network gives it for this target. Mask, polygon and (with
    # box_from_mask) the reported box follow the trimmed mask; the state does not. Read at init.
    colour_mask: bool = False
    colour_threshold: float = 0.3
    colour_min_fit: float = 0.5
    # --- speed -----------------------------------------------------------------------------------------------------
    # Capture the fixed-shape part (network + decode + box refinement, and the mask head) in CUDA graphs on CUDA.
    cuda_graph: bool = True
    # Run template + one search frame at construction so the first real frame is not slow.
    warmup: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the offending field and value."""
        def unit(name: str, lo: float = 0.0, hi: float = 1.0) -> None:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"TrackerConfig.{name} must be a number in [{lo}, {hi}], got {v!r}")

        def integer(name: str, lo: int, hi: Optional[int] = None, note: str = "") -> None:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
                bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
                raise ValueError(f"TrackerConfig.{name} must be an integer {bounds}{note}, got {v!r}")

        for name in ("window_influence", "lr", "mask_threshold", "confidence_threshold", "lost_threshold",
                     "lost_window_influence"):
            unit(name)
        unit("hysteresis", 0.0, 1.0)
        unit("quality_margin", 0.0, 1.0)
        unit("reference_confidence", 0.0, 1.0)
        unit("verify_trust", -1.0, 1.0)
        unit("verify_step", 0.0, 1.0)
        unit("template_search_trust", -1.0, 1.0)
        unit("template_search_margin", 0.0, 2.0)
        integer("template_search_frames", 1)
        unit("template_search_max_zoom", 0.0, 100.0)
        unit("colour_threshold")
        unit("colour_min_fit")
        unit("penalty_k", 0.0, 10.0)
        unit("context_amount", 0.0, 10.0)
        unit("lost_search_step", 0.1, 2.0)
        integer("lost_search_rings", 0, 10)
        integer("lost_frames", 1)
        integer("low_confidence_frames", 0, note=" (0 = off)")
        if self.lost_threshold > self.confidence_threshold:
            raise ValueError(f"TrackerConfig.lost_threshold ({self.lost_threshold}) must not exceed "
                             f"confidence_threshold ({self.confidence_threshold})")
        for name in ("long_term", "lost_follow", "cuda_graph", "warmup", "quality_select", "verify_size",
                     "template_search", "box_from_mask", "colour_mask"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TrackerConfig.{name} must be true/false, got {getattr(self, name)!r}")

    @property
    def recover_threshold(self) -> float:
        """Score needed to return to TRACKING (from LOW_CONFIDENCE or LOST)."""
        return min(1.0, self.confidence_threshold + self.hysteresis)

    def replace(self, **changes: Any) -> "TrackerConfig":
        """A validated copy with some fields changed."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown TrackerConfig keys {unknown}; known keys: {sorted(known)}")
        return dataclasses.replace(self, **changes)


def _config_dirs() -> list:
    """Where config/trackers/*.yaml may live: the source checkout, then an ament (colcon) install."""
    return package_dirs("config/trackers")


def load_preset(name_or_path: Union[str, Path]) -> TrackerConfig:
    """TrackerConfig of a preset name ("otb100", "vot2018", "embedded") or of a YAML file path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise FileNotFoundError(f"tracker config file {str(p)!r} does not exist")
        return TrackerConfig.from_yaml(p)
    if str(name_or_path) not in PRESETS:
        raise ValueError(f"unknown tracker preset {name_or_path!r}: expected one of {PRESETS} or a .yaml path")
    for d in _config_dirs():
        f = d / f"{name_or_path}.yaml"
        if f.is_file():
            return TrackerConfig.from_yaml(f)
    raise FileNotFoundError(f"tracker preset {name_or_path!r} not found in {[str(d) for d in _config_dirs()]}")
