"""Section 5's alignment config: MTCNN, its retry passes and the checks on what they find
(fer_core.prepare.align, fer_core.prepare.detect)."""

from __future__ import annotations

from typing import Literal

from fer_core.config.base import Config, neutral


class AlignConfig(Config):
    enabled: bool = True
    batch_size: int = 256
    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # MTCNN's published P/R/O-Net
    device: str = "auto"  # auto: cuda when there is one, else cpu
    # Two batches in flight on one torch thread each: MTCNN's many small operations leave a
    # second intra-op thread mostly waiting. Measured on 2 idle cores, 2,048 FER2013 crops:
    # 251-255 img/s against 220-229 with one batch on two threads.
    workers: int = neutral(2, "alignment batches in flight; each batch's result is its own")
    # In keys: two threads move MTCNN's landmarks by ~1e-6 (tests/flows/test_neutral_settings).
    threads: int = 1
    # Replicated edges rather than black corners: a classifier should not learn the wedges.
    border: Literal["replicate", "constant", "reflect"] = "replicate"
    # Retries for the images plain MTCNN misses, and the checks on what they find
    # (fer_core.prepare.detect). Measured on 2,000 FER2013 training crops: plain 84.7%, with
    # these passes 98.5%.
    passes: tuple[str, ...] = ("mtcnn", "crop", "rotated")
    pad: float = 0.25  # the padded pass's border, a fraction of the image side
    crop_scales: tuple[float, ...] = (1.0, 0.85)  # box sides the crop pass tries
    crop_shift: float = 0.0  # and each also moved by this fraction up/down/left/right
    crop_threshold: float = 0.7  # O-Net's published threshold
    rotations: tuple[float, ...] = (-20.0, 20.0)
    eye_distance: tuple[float, float] = (0.2, 0.7)  # plausible eye distance / face box side
    nose_below: tuple[float, float] = (0.2, 1.3)  # nose under the eye line / eye distance
    nose_across: float = 0.75  # nose off the eyes' midpoint, along the eye line / distance
    refine: int = 1  # times landmarks are measured again on the levelled face (detect.py)
    refine_min_tilt: float = 8.0  # plain MTCNN's faces tilted less are not measured again
    max_tilt: float = 50.0  # eye line (degrees) beyond which landmarks are not trusted
