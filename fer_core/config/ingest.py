"""Section 4's ingestion config, the paper's class names and the class-map presets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import Field, field_validator

from fer_core import UsageError
from fer_core.config.base import Config, neutral
from fer_core.config.labels import LabelsConfig

# fer_core.store.IMAGE_SUFFIXES (tests/fer_core/config checks that they agree).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# One pixel limit, read from a file's header before a pixel is decoded
# (fer_core.store.header): ingest's and prediction's. A 390 KB PNG can hold 400 megapixels.
MAX_PIXELS = 100_000_000

# The paper's six basic expressions (Ekman), in its names.
PAPER_CLASSES = ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")
CLASS_MAPS: dict[str, dict[str, str]] = {
    "fer2013": {"angry": "Anger", "disgust": "Disgust", "fear": "Fear", "happy": "Happiness",
                "sad": "Sadness", "surprise": "Surprise", "neutral": "Neutral"},
}
CLASS_SETS: dict[str, tuple[str, ...]] = {"paper": PAPER_CLASSES}


def resolve_class_map(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """A preset name (``fer2013``), ``a=B,c=D`` pairs, or a mapping."""
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        return dict(spec)
    if spec in CLASS_MAPS:
        return dict(CLASS_MAPS[spec])
    pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
    if not all(len(p) == 2 for p in pairs):
        raise UsageError(f"class map {spec!r}: expected a preset {sorted(CLASS_MAPS)} or a=B,c=D")
    return {a.strip(): b.strip() for a, b in pairs}


def resolve_classes(spec: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if spec is None or spec == "" or spec == "all":
        return None
    if isinstance(spec, str):
        return CLASS_SETS.get(spec) or tuple(c.strip() for c in spec.split(",") if c.strip())
    return tuple(spec)


class IngestConfig(Config):
    # Where the data lies: ingest is keyed on its files' content and relative paths.
    root: str = neutral(..., "the data folder; its content, not its path, keys ingest")
    # A preset name, a=B,c=D pairs or a mapping (resolve_class_map) is read as the mapping.
    class_map: Mapping[str, str] = Field(default_factory=dict)
    # After mapping; None keeps every class. ``paper``, a,b,c or ``all`` is read as such.
    classes: tuple[str, ...] | None = None
    min_size: int = 16
    max_pixels: int = MAX_PIXELS  # a file past it is rejected, with its size, undecoded
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS
    workers: int = neutral(2, "threads reading files; each file's inspection is its own")
    # A labels file as the dataset (fer_core.prepare.labels): a path, or its options.
    labels: LabelsConfig | None = None

    @field_validator("class_map", mode="before")
    @classmethod
    def _class_map(cls, value):
        return resolve_class_map(value) if value is None or isinstance(value, str) else value

    @field_validator("classes", mode="before")
    @classmethod
    def _classes(cls, value):
        return resolve_classes(value) if isinstance(value, str) else value
