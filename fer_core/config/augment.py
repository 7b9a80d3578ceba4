"""Section 5's augmentation config, Tables 4-5: Poisson, speckle and Gaussian noise to
balance the training classes, seed 0 (fer_core.prepare.augment)."""

from __future__ import annotations

from collections.abc import Mapping

from fer_core.config.base import Config

NOISES = ("poisson", "speckle", "gaussian")


class AugmentConfig(Config):
    # "auto": the paper's preset for the paper's six classes, "balance" otherwise;
    # or a mapping class -> {"fraction": f, "mode": "add"|"replace"}.
    plan: str | Mapping[str, Mapping] = "auto"
    noises: tuple[str, ...] = NOISES
    # Under "balance", the largest class has this fraction replaced per noise, as the
    # paper did for Sadness, so every class sees noise.
    largest_replace_fraction: float = 0.1
    random_state: int = 0
