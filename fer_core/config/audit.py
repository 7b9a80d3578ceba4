"""(ours) The label audit's config: k-fold out-of-sample probabilities of a fast model,
ranked by cleanlab (fer_core.audit.labels)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from fer_core.config.base import Config


class AuditConfig(Config):
    splits: tuple[str, ...] = ("train", "val")  # the labelled images that are audited
    model: Literal["cnn", "hog_logreg"] = "cnn"
    folds: int = 5
    epochs: int = 8            # cnn: per fold
    batch_size: int = 128      # cnn
    size: int = 48             # faces are audited as size x size grey images
    device: str = "auto"       # cnn: auto (cuda, then mps, then cpu) | cpu | cuda | mps
    threads: int = 1           # torch CPU threads (the machine is shared)
    seed: int = 0
    top_per_class: int = 8     # faces per class in the figure

    @field_validator("splits", mode="before")
    @classmethod
    def _one_split(cls, value):
        return (value,) if isinstance(value, str) else value
