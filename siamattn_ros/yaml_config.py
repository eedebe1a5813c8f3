"""Dataclass configs that read and write YAML: one implementation for ModelConfig, TrackerConfig and TrainConfig."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Type, TypeVar, Union

C = TypeVar("C", bound="YamlConfig")


class YamlConfig:
    """Mixin for @dataclass configs: to_dict / from_dict (unknown keys are an error) / from_yaml / to_yaml."""

    def to_dict(self) -> Dict[str, Any]:
        # Tuples become lists so that yaml.safe_dump (and checkpoint metadata) accept the result.
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls: Type[C], data: Dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_yaml(cls: Type[C], path: Union[str, Path]) -> C:
        import yaml  # only needed when reading files

        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
        if data is None:  # an empty file: all defaults
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
        return cls.from_dict(data)

    def to_yaml(self, path: Union[str, Path]) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
