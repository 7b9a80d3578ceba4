"""The preparation config: one frozen section per stage, loadable from a YAML/JSON file."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fer_core import store
from fer_core.align import AlignConfig
from fer_core.augment import AugmentConfig
from fer_core.duplicates import DedupConfig
from fer_core.ingest import IngestConfig, resolve_class_map, resolve_classes
from fer_core.quality import QualityConfig
from fer_core.resize import ResizeConfig
from fer_core.split import SplitConfig

SECTIONS = {"ingest": IngestConfig, "dedup": DedupConfig, "split": SplitConfig,
            "quality": QualityConfig, "align": AlignConfig, "resize": ResizeConfig,
            "augment": AugmentConfig}


@dataclass(frozen=True, kw_only=True)
class PrepareConfig:
    ingest: IngestConfig
    dedup: DedupConfig = field(default_factory=DedupConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    resize: ResizeConfig = field(default_factory=ResizeConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _section(cls, values: Mapping, where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    tuples = {f.name for f in dataclasses.fields(cls) if "tuple" in str(f.type)}
    return cls(**{k: tuple(v) if k in tuples and isinstance(v, list) else v
                  for k, v in values.items()})


def build_config(data: str, *, file: str | Path | None = None, classes=None, class_map=None,
                 augment: str | None = None, align: bool | None = None,
                 overrides: Mapping[str, Mapping] | None = None) -> PrepareConfig:
    """Config from a file (if any), then command-line options on top."""
    raw = {k: dict(v) for k, v in (store.read_yaml(file) or {} if file else {}).items()}
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{file}: unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
    for name, values in (overrides or {}).items():
        raw.setdefault(name, {}).update(values)
    ing = raw.setdefault("ingest", {})
    ing["root"] = str(data)
    if class_map is not None:
        ing["class_map"] = class_map
    ing["class_map"] = resolve_class_map(ing.get("class_map"))
    if classes is not None:
        ing["classes"] = classes
    ing["classes"] = resolve_classes(ing.get("classes"))
    if augment is not None:
        raw.setdefault("augment", {})["plan"] = augment
    if align is not None:
        raw.setdefault("align", {})["enabled"] = align
    where = str(file or "options")
    return PrepareConfig(**{name: _section(cls, raw.get(name, {}), f"{where} [{name}]")
                            for name, cls in SECTIONS.items()})
