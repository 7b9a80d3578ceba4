"""Section 4's split config: the stratified 80/20 split after a shuffle, seed 0."""

from __future__ import annotations

from fer_core.config.base import Config


class SplitConfig(Config):
    val_fraction: float = 0.2
    random_state: int = 0
