"""The sharpness-per-split config (fer_core.prepare.quality)."""

from __future__ import annotations

from fer_core.config.base import Config


class QualityConfig(Config):
    # At 96x96, FER2013's sharp test faces score a median of ~100 and its blurred train
    # ones ~1.8 (55x). On the test faces a Gaussian blur of sigma 0.7 px (at 48x48)
    # divides the median by ~4, sigma 1 by ~10, sigma 3.3 by ~60: 10 flags blur of a
    # pixel or more and leaves ordinary variety alone.
    max_sharpness_ratio: float = 10.0
    min_images: int = 20  # fewer images per split make the median noise
