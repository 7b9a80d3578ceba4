"""The embedded demo dataset's config (fer_core.datasets.demo)."""

from __future__ import annotations

from fer_core.config.base import Config


class DemoConfig(Config):
    per_class: int = 30
    photo_fraction: float = 0.34  # of each class: tilted real faces for MTCNN
    size: int = 128
    random_state: int = 0
