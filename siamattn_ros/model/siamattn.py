"""The SiamAttn network: backbone -> neck -> DSA -> RPN, plus the region-refinement module (fusion neck, box and
mask heads). Call order: ``template(z)`` once, then per frame ``track(x)``, ``bbox_refine(rois)``, ``mask_refine(rois)``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Union

import numpy as np
import torch
from torch import nn

from siamattn_ros.model.anchors import anchor_grid
from siamattn_ros.model.config import ModelConfig, get_config
from siamattn_ros.model.deform_conv import DeformConvPack
from siamattn_ros.model.dsa import FeatureEnhance, TemplateCache
from siamattn_ros.model.fusion import FeatureFusionNeck
from siamattn_ros.model.heads import BoxQualityHead, FCx2DetHead, FusedSemanticHead
from siamattn_ros.model.mobilenet import MobileNetV2Backbone
from siamattn_ros.model.neck import AdjustAllLayer
from siamattn_ros.model.resnet_atrous import ResNet50Atrous
from siamattn_ros.model.xcorr import MultiRPN


class SiamAttn(nn.Module):
    """Seven children (their names are the state_dict prefixes of the authors' model): backbone, neck, rpn_head,
    feature_enhance, feature_fusion, mask_head, bbox_head; plus iou_head (box quality) in models whose config asks
    for it (the embedded model; never the paper's).

    Inputs are BGR float 0..255 crops: template (B, 3, 127, 127), search (B, 3, 255, 255).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.backbone == "resnet50_atrous":
            if cfg.normalize_input:
                raise ValueError("normalize_input is not supported by the resnet50_atrous backbone (paper: raw BGR)")
            self.backbone: nn.Module = ResNet50Atrous()
        else:
            self.backbone = MobileNetV2Backbone(pretrained=cfg.backbone_pretrained,
                                                normalize_input=cfg.normalize_input)
        bb_ch = list(self.backbone.out_channels)
        c = cfg.neck_channels
        self.neck = AdjustAllLayer(bb_ch[2:], c, cfg.template_crop, cfg.crop_threshold)
        self.rpn_head = MultiRPN(cfg.anchor_num, c, cfg.rpn_hidden)
        self.feature_enhance = FeatureEnhance(c, cfg.attention_key_channels)
        self.feature_fusion = FeatureFusionNeck(bb_ch[:2] + [c, c, c], cfg.fusion_channels, cfg.fusion_channels)
        f = cfg.fusion_channels
        self.mask_head = FusedSemanticHead(
            f, cfg.mask_head_channels, cfg.mask_pool_size, 1.0 / (cfg.instance_size / cfg.mask_feature_size),
            cfg.mask_out_size, cfg.mask_head_convs, cfg.mask_offset_hidden, cfg.mask_offset_input_size,
            cfg.sample_per_part, cfg.trans_std)
        self.bbox_head = FCx2DetHead(
            f, cfg.bbox_pool_size, 1.0 / (cfg.instance_size / cfg.score_size), cfg.bbox_fc_hidden,
            cfg.bbox_offset_hidden, cfg.bbox_offset_input_size, cfg.sample_per_part, cfg.trans_std)
        self.iou_head: Optional[BoxQualityHead] = None
        if cfg.iou_head:
            self.iou_head = BoxQualityHead(f, 3 * c, cfg.iou_pool_size, 1.0 / (cfg.instance_size / cfg.score_size),
                                           cfg.iou_hidden, cfg.iou_context)
        # Per-sequence state (plain attributes, not modules/buffers: never saved).
        self._zf: Optional[List[torch.Tensor]] = None
        self._dsa_cache: Optional[List[TemplateCache]] = None
        self._box_feat: Optional[torch.Tensor] = None
        self._mask_feat: Optional[torch.Tensor] = None
        self._template_vec: Optional[torch.Tensor] = None
        self._search_feat: Optional[List[torch.Tensor]] = None

    # --- the four calls -------------------------------------------------------------------------------------------
    def extract(self, img: torch.Tensor) -> List[torch.Tensor]:
        """Backbone + neck: 5 levels (levels 2-4 adjusted to neck_channels and centre-cropped for templates)."""
        if img.dim() != 4 or img.size(1) != 3:
            raise ValueError(f"expected a (B, 3, H, W) BGR image batch, got shape {tuple(img.shape)}")
        return self.neck(self.backbone(img))

    def template(self, z: torch.Tensor) -> None:
        """Run backbone + neck on the exemplar crop(s) and cache the features for the following track() calls.

        In eval mode the search-independent part of the template's DSA enhancement is cached too; call template()
        again after changing the weights.
        """
        self._zf = self.extract(z)
        self._template_vec = None if self.iou_head is None else BoxQualityHead.template_descriptor(self._zf[2:])
        self._dsa_cache = None if self.training else self.feature_enhance.cache_template(self._zf[2:])

    def track(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Search crop(s) -> {'cls': (B, 2A, S, S), 'loc': (B, 4A, S, S)}; caches the refinement features."""
        if self._zf is None:
            raise RuntimeError("SiamAttn.track() called before template()")
        xf = self.extract(x)
        self._search_feat = xf[2:]
        if xf[2].size(0) != self._zf[2].size(0):
            raise ValueError(f"search batch {xf[2].size(0)} != template batch {self._zf[2].size(0)}")
        if self._dsa_cache is not None and not self.training:
            z_e, x_e = self.feature_enhance.forward_cached(self._dsa_cache, xf[2:])
        else:
            z_e, x_e = self.feature_enhance(self._zf[2:], xf[2:])
        cls, loc = self.rpn_head(z_e, x_e)
        zs = self._zf[:2] + z_e
        xs = xf[:2] + x_e
        self._box_feat, self._mask_feat = self.feature_fusion(zs, xs)
        return {"cls": cls, "loc": loc}

    def search_features(self) -> List[torch.Tensor]:
        """The adjusted feature levels (2-4, before attention) of the last track() call's search crop."""
        if self._search_feat is None:
            raise RuntimeError("SiamAttn.search_features() called before track()")
        return self._search_feat

    @staticmethod
    def _check_rois(rois: torch.Tensor) -> torch.Tensor:
        if rois.dim() == 1:
            rois = rois.unsqueeze(0)
        if rois.dim() != 2 or rois.size(1) != 5:
            raise ValueError(f"rois must be (n, 5) rows [batch_index, x1, y1, x2, y2], got {tuple(rois.shape)}")
        return rois

    def bbox_refine(self, rois: torch.Tensor) -> torch.Tensor:
        """(n, 5) RoIs in search-crop pixels -> (n, 4) normalised deltas (dx, dy, dw, dh); see cfg.bbox_stds."""
        if self._box_feat is None:
            raise RuntimeError("SiamAttn.bbox_refine() called before track()")
        return self.bbox_head(self._box_feat, self._check_rois(rois))

    def mask_refine(self, rois: torch.Tensor) -> torch.Tensor:
        """(n, 5) RoIs in search-crop pixels -> (n, 1, M, M) mask logits (apply sigmoid for probabilities)."""
        if self._mask_feat is None:
            raise RuntimeError("SiamAttn.mask_refine() called before track()")
        return self.mask_head(self._mask_feat, self._check_rois(rois))

    def box_quality(self, rois: torch.Tensor) -> torch.Tensor:
        """(n, 5) RoIs in search-crop pixels -> (n,) logits of their predicted IoU with the target (models with
        ``cfg.iou_head`` only; apply sigmoid for the IoU estimate)."""
        if self.iou_head is None:
            raise RuntimeError(f"model {self.cfg.name!r} has no box-quality head (ModelConfig.iou_head is False)")
        if self._box_feat is None or self._template_vec is None:
            raise RuntimeError("SiamAttn.box_quality() called before template() and track()")
        return self.iou_head(self._box_feat, self._template_vec, self._check_rois(rois))

    def forward(self, z: torch.Tensor, x: torch.Tensor, rois: Optional[torch.Tensor] = None,
                quality_rois: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """All calls in one (for training, e.g. under DistributedDataParallel, which hooks forward()):
        {'cls', 'loc'} plus {'bbox', 'mask'} (mask logits) when rois are given, plus 'iou' (logits) on
        quality_rois (default: rois) for a model with the box-quality head."""
        self.template(z)
        out = self.track(x)
        if rois is not None:
            out["bbox"] = self.bbox_refine(rois)
            out["mask"] = self.mask_refine(rois)
        q = quality_rois if quality_rois is not None else rois
        if q is not None and self.iou_head is not None:
            out["iou"] = self.box_quality(q)
        return out

    # --- helpers ---------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop the cached template / frame features."""
        self._zf = self._dsa_cache = self._box_feat = self._mask_feat = self._template_vec = None
        self._search_feat = None

    def anchors(self) -> np.ndarray:
        """(A, 4, S, S) anchors (cx, cy, w, h), centres relative to the crop centre, crop pixels."""
        c = self.cfg
        return anchor_grid(c.anchor_stride, c.anchor_ratios, c.anchor_scales, c.score_size)

    def set_deform_impl(self, impl: str) -> None:
        """Deformable-conv implementation: "auto" (default: torchvision on CUDA, grid_sample otherwise),
        "torchvision" or "grid_sample" (same results up to float rounding)."""
        for m in self.modules():
            if isinstance(m, DeformConvPack):
                m.set_impl(impl)


def build_model(name_or_config: Union[str, ModelConfig] = "siamattn_r50", pretrained: Optional[bool] = None
                ) -> SiamAttn:
    """Build "siamattn_r50" (the paper), "siamattn_mnv2" (embedded), a ModelConfig, or a ModelConfig YAML path.

    pretrained: override cfg.backbone_pretrained (ImageNet init of the MobileNetV2 backbone); False when the
    weights will come from a checkpoint anyway.
    """
    if isinstance(name_or_config, ModelConfig):
        cfg = name_or_config
    elif isinstance(name_or_config, str):
        cfg = get_config(name_or_config)
    else:
        raise TypeError(f"build_model expects a model name, a YAML path or a ModelConfig, got {name_or_config!r}")
    if pretrained is not None:
        cfg = ModelConfig.from_dict({**cfg.to_dict(), "backbone_pretrained": bool(pretrained)})
    return SiamAttn(cfg)
