"""Model definitions as plain dataclasses (one per network variant), loadable from / dumpable to YAML.

There is no global config object: every module receives the values it needs from a ``ModelConfig`` instance.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

from siamattn_ros.yaml_config import YamlConfig

BACKBONES = ("resnet50_atrous", "mobilenet_v2")


@dataclass
class ModelConfig(YamlConfig):
    """Everything needed to build a SiamAttn network and to interpret its outputs."""

    name: str = "siamattn_r50"
    # --- backbone ---------------------------------------------------------------------------------------------
    backbone: str = "resnet50_atrous"
    # Load ImageNet weights into the backbone at build time (only the MobileNetV2 variant has weights available).
    backbone_pretrained: bool = False
    # Convert BGR 0..255 input to ImageNet-normalised RGB inside the network (the paper model sees raw BGR).
    normalize_input: bool = False
    # --- neck / DSA / RPN / fusion widths -----------------------------------------------------------------------
    neck_channels: int = 256  # AdjustAllLayer output width = DSA width = RPN / fusion input width
    template_crop: int = 7  # centre crop of template maps narrower than crop_threshold
    crop_threshold: int = 20
    attention_key_channels: int = 32  # query/key width of the spatial self-attention
    rpn_hidden: int = 256  # hidden width of the depth-wise xcorr RPN branches
    fusion_channels: int = 256  # FeatureFusionNeck output width (box + mask feature width)
    # --- region refinement ------------------------------------------------------------------------------------
    mask_pool_size: int = 16
    bbox_pool_size: int = 4
    sample_per_part: int = 4
    trans_std: float = 0.1
    # The deformable RoI pool's offset MLP sees the first-pass pooled features average-pooled to this size
    # (equal to the pool size for the paper = no reduction). Smaller = far fewer parameters.
    mask_offset_input_size: int = 16
    mask_offset_hidden: int = 1024
    bbox_offset_input_size: int = 4
    bbox_offset_hidden: int = 1024
    mask_head_convs: int = 4
    mask_head_channels: int = 256
    mask_out_size: int = 64
    bbox_fc_hidden: int = 512
    bbox_stds: Tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
    # --- box-quality (IoU prediction) head: not in the paper; the embedded model's confidence ---------------------
    # Predicts the IoU of a box with the target from the box's RoI features modulated by a template descriptor, so
    # the published confidence can say when the box is off the target (the RPN score stays high on background that
    # resembles the template, and on a box grown over the image border). Off for the paper model (authors' keys).
    iou_head: bool = False
    iou_pool_size: int = 5
    iou_hidden: int = 128
    # > 0: the head also pools a window this many times the box's size around it (same centre), so it sees what
    # surrounds the box: a box that has swollen to the image edge has only out-of-image padding around it, one on the
    # target has the rest of the object's surroundings. 0 = the box alone (model v2).
    iou_context: float = 0.0
    # --- geometry (shared with the tracker) ----------------------------------------------------------------------
    exemplar_size: int = 127
    instance_size: int = 255
    anchor_stride: int = 8
    anchor_ratios: Tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    anchor_scales: Tuple[float, ...] = (8.0,)
    score_size: int = 25
    mask_feature_size: int = 63  # fused mask feature map side (search level 1)

    @property
    def anchor_num(self) -> int:
        return len(self.anchor_ratios) * len(self.anchor_scales)

    def __post_init__(self) -> None:
        # YAML gives lists; keep tuples so configs compare equal and stay hashable.
        self.anchor_ratios = tuple(float(r) for r in self.anchor_ratios)
        self.anchor_scales = tuple(float(s) for s in self.anchor_scales)
        self.bbox_stds = tuple(float(s) for s in self.bbox_stds)  # type: ignore[assignment]
        if self.backbone not in BACKBONES:
            raise ValueError(f"ModelConfig.backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if len(self.bbox_stds) != 4:
            raise ValueError(f"ModelConfig.bbox_stds needs 4 values, got {self.bbox_stds!r}")
        if self.mask_out_size % self.mask_pool_size != 0:
            raise ValueError(f"mask_out_size {self.mask_out_size} must be a multiple of mask_pool_size "
                             f"{self.mask_pool_size}")
        for attr, pool in (("mask_offset_input_size", self.mask_pool_size),
                           ("bbox_offset_input_size", self.bbox_pool_size)):
            size = getattr(self, attr)
            if size <= 0 or pool % size != 0:
                raise ValueError(f"ModelConfig.{attr}={size} must divide the pool size {pool}")
        expected = (self.instance_size - self.exemplar_size) // self.anchor_stride + 1 + 8
        if self.score_size != expected:
            raise ValueError(f"score_size {self.score_size} inconsistent with exemplar/instance/stride "
                             f"(expected {expected})")


def paper_config() -> ModelConfig:
    """The authors' network (state_dict identical to their released checkpoints)."""
    return ModelConfig()


def embedded_config() -> ModelConfig:
    """MobileNetV2-based variant for CPU / Jetson: same DSA / RPN / refinement design, narrow widths."""
    return ModelConfig(
        name="siamattn_mnv2",
        backbone="mobilenet_v2",
        backbone_pretrained=True,
        normalize_input=True,
        neck_channels=64,
        attention_key_channels=16,
        rpn_hidden=64,
        fusion_channels=64,
        mask_offset_input_size=4,
        mask_offset_hidden=256,
        bbox_offset_input_size=4,
        bbox_offset_hidden=256,
        mask_head_channels=64,
        bbox_fc_hidden=256,
        iou_head=True,
        iou_context=2.0,
    )


BUILTIN_CONFIGS = {"siamattn_r50": paper_config, "siamattn_mnv2": embedded_config}


def get_config(name: str) -> ModelConfig:
    """Config of a built-in model name, or of a YAML file path."""
    if name in BUILTIN_CONFIGS:
        return BUILTIN_CONFIGS[name]()
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return ModelConfig.from_yaml(p)
    raise ValueError(f"unknown model {name!r}: expected one of {sorted(BUILTIN_CONFIGS)} or a .yaml file")
