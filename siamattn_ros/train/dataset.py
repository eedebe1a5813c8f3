"""One dataset interface over all pair sources, with deterministic per-index sampling (resumable, shardable)."""
from __future__ import annotations

from typing import Iterator, Sequence as Seq

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from siamattn_ros.data.pairs import (AugmentConfig, PairSource, PlanarPairSource, StillPairSource,
                                     SyntheticPairSource, VideoPairSource, crop_pair)
from siamattn_ros.train.targets import AnchorTargets


def build_sources(specs: Seq[dict]) -> tuple[list[PairSource], np.ndarray]:
    """Sources from config entries {type: synthetic|planar|got10k|lasot|coco|youtube_vos, weight, ...}."""
    from siamattn_ros.data import formats

    out, weights = [], []
    for spec in specs:
        spec = dict(spec)
        kind = spec.pop("type", None)
        w = float(spec.pop("weight", 1.0))
        if kind == "synthetic":
            src: PairSource = SyntheticPairSource(**spec)
        elif kind == "planar":
            src = PlanarPairSource(**spec)
        elif kind in ("got10k", "lasot"):
            src = VideoPairSource(formats.load_got10k(spec.pop("root")), **spec)
        elif kind == "youtube_vos":
            src = VideoPairSource(formats.load_youtube_vos(spec.pop("root")), **spec)
        elif kind == "coco":
            src = StillPairSource(formats.load_coco(spec.pop("annotations"), spec.pop("images")), **spec)
        else:
            raise ValueError(f"unknown data source type {kind!r} (synthetic, planar, got10k, lasot, coco, youtube_vos)")
        out.append(src)
        weights.append(w)
    if not out:
        raise ValueError("no data sources configured")
    p = np.asarray(weights, dtype=np.float64)
    return out, p / p.sum()


class PairDataset(Dataset):
    """Item i is a fully determined training sample (seeded by (seed, i)): crops, RPN labels, box and mask truth."""

    def __init__(self, sources: Seq[PairSource], weights: np.ndarray, targets: AnchorTargets, aug: AugmentConfig,
                 exemplar_size: int, instance_size: int, neg_prob: float, length: int, seed: int = 0) -> None:
        self.sources = list(sources)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.targets = targets
        self.aug = aug
        self.exemplar_size = exemplar_size
        self.instance_size = instance_size
        self.neg_prob = neg_prob
        self.length = length
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def _source(self, rng: np.random.Generator) -> PairSource:
        return self.sources[int(rng.choice(len(self.sources), p=self.weights))]

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, int(index)])
        pair = self._source(rng).sample(rng)
        negative = rng.random() < self.neg_prob
        other = self._source(rng).sample(rng) if negative else None
        s = crop_pair(rng, pair, self.aug, self.exemplar_size, self.instance_size, template_pair=other)
        cls, delta, weight = self.targets(s["search_box"], negative, rng)
        n = self.instance_size
        mask = s["search_mask"]
        return {
            "template": torch.from_numpy(s["template"].transpose(2, 0, 1).astype(np.float32)),
            "search": torch.from_numpy(s["search"].transpose(2, 0, 1).astype(np.float32)),
            "label_cls": torch.from_numpy(cls),
            "label_loc": torch.from_numpy(delta),
            "label_loc_weight": torch.from_numpy(weight),
            "box": torch.from_numpy(s["search_box"].astype(np.float32)),
            "image_box": torch.from_numpy(s["search_image_box"].astype(np.float32)),
            "mask": torch.from_numpy(mask.astype(np.float32)) if mask is not None else torch.zeros(n, n),
            "has_mask": torch.tensor(mask is not None and not negative),
            "negative": torch.tensor(bool(negative)),
        }


class ShardSampler(Sampler[int]):
    """Indices for one process: step t, rank r, slot j -> (t * world + r) * batch + j. Resumes at any step."""

    def __init__(self, start_step: int, steps: int, batch_size: int, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.start_step, self.steps, self.batch = start_step, steps, batch_size
        self.rank, self.world = rank, world_size

    def __iter__(self) -> Iterator[int]:
        for t in range(self.start_step, self.steps):
            base = (t * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step) * self.batch
