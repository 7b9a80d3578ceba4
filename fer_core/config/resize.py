"""Section 5's resize config: 96x96 (normalisation, /255, happens at load)."""

from __future__ import annotations

from fer_core.config.base import Config


class ResizeConfig(Config):
    size: int = 96
    border: str = "replicate"  # for the alignment rotation, as AlignConfig.border
