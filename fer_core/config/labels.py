"""A labels file as a dataset (``ingest.labels``): how its columns are read, and how crowd
votes become labels (fer_core.prepare.labels, fer_core.prepare.votes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator

from fer_core import UsageError
from fer_core.config.base import Config

FERPLUS_CLASSES = {"neutral": "Neutral", "happiness": "Happiness", "surprise": "Surprise",
                   "sadness": "Sadness", "anger": "Anger", "disgust": "Disgust", "fear": "Fear",
                   "contempt": "Contempt"}
# Presets: the options that read a known labels file (each key a LabelsConfig field, plus
# ``class_map`` for the ingest section).
PRESETS: dict[str, dict] = {
    "ferplus": {"split_column": "usage",
                "split_map": {"Training": "train", "PublicTest": "val", "PrivateTest": "test"},
                "ignore_columns": ("unknown", "NF"), "class_map": FERPLUS_CLASSES},
}


def pairs(spec: str | Mapping | None, what: str) -> dict[str, str]:
    """``a=B,c=D`` (or a mapping) as a dict of text."""
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        return {str(k): str(v) for k, v in spec.items()}
    items = [p.split("=", 1) for p in str(spec).split(",") if p.strip()]
    if not all(len(p) == 2 for p in items):
        raise UsageError(f"{what} {spec!r}: expected a=B,c=D pairs")
    return {a.strip(): b.strip() for a, b in items}


def names(spec: str | tuple | list | None) -> tuple[str, ...] | None:
    if spec is None or spec == "":
        return None
    items = spec.split(",") if isinstance(spec, str) else spec
    return tuple(str(c).strip() for c in items if str(c).strip())


class LabelsConfig(Config):
    # The labels file; its paths are relative to the data folder (required: None only
    # while other options wait for a config file's, fer_core.prepare.config).
    file: str | None = None
    # A headerless whitespace-separated list: its column names (``path,label``).
    columns: tuple[str, ...] | None = None
    # Integer class codes to names (``1=Surprise,2=Fear``); a code or name outside is unknown.
    label_names: Mapping[str, str] = Field(default_factory=dict)
    # The column holding each row's split, and its values (or patterns: train_*=train) mapped
    # to train/val/test.
    split_column: str | None = None
    split_map: Mapping[str, str] = Field(default_factory=dict)
    # Face box columns x, y, width, height (pixels): the image is cropped to it first.
    box_columns: tuple[str, str, str, str] | None = None
    # Vote columns that are not classes (FER+'s unknown and NF): counted, never a label.
    ignore_columns: tuple[str, ...] = ()
    # Columns that are neither votes nor anything above (AffectNet's valence, arousal).
    skip_columns: tuple[str, ...] = ()
    # How votes become the training labels; val and test are always labelled by majority.
    mode: Literal["majority", "probability", "crossentropy"] = "majority"
    # Whether the vote columns hold counts (the outlier rule applies) or probabilities.
    votes: Literal["auto", "counts", "probabilities"] = "auto"
    # The preset these options came from (``ferplus``), for the record.
    preset: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _file_only(cls, value):
        return {"file": value} if isinstance(value, str) else value

    @field_validator("label_names", "split_map", mode="before")
    @classmethod
    def _pairs(cls, value, info):
        return pairs(value, info.field_name)

    @field_validator("columns", "box_columns", "ignore_columns", "skip_columns", mode="before")
    @classmethod
    def _names(cls, value, info):
        got = names(value)
        return () if got is None and info.field_name in ("ignore_columns", "skip_columns") \
            else got

    @field_validator("split_map")
    @classmethod
    def _splits(cls, value):
        bad = sorted(v for v in value.values() if v not in ("train", "val", "test"))
        if bad:
            raise UsageError(f"split_map values must be train, val or test, got {bad}")
        return value


def with_preset(ingest: Mapping) -> dict:
    """An ingest section (a mapping) with its ``labels.preset``'s options filled in where
    not given (``class_map`` included); an unknown preset is an error naming the known."""
    out = dict(ingest)
    labels = out.get("labels")
    if isinstance(labels, str):
        labels = {"file": labels}
    if not isinstance(labels, Mapping) or not labels.get("preset"):
        return out
    name = labels["preset"]
    if name not in PRESETS:
        raise UsageError(f"unknown labels preset {name!r}; known: {sorted(PRESETS)}")
    preset = dict(PRESETS[name])
    if not out.get("class_map"):
        out["class_map"] = preset["class_map"]
    preset.pop("class_map")
    out["labels"] = {**preset, **{k: v for k, v in labels.items()
                                  if v is not None and v != "" and v != () and v != {}}}
    return out
