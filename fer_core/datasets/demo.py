"""The embedded default dataset: a small labelled face set the project makes itself, offline.

Each of the paper's six classes gets drawn cartoon faces whose mouth and brows carry the
expression (a signal a classifier can learn), plus real photographic faces cut from
scikit-image's ``astronaut`` at random tilts (so MTCNN really detects and aligns some), a
byte-for-byte duplicate, and two bad files, so every stage and report has work to do.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_core.config.demo import DemoConfig
from fer_core.prepare.ingest import PAPER_CLASSES

# (mouth curvature, mouth openness, brow tilt) per expression.
_SHAPES = {"Anger": (-0.3, 0.1, 0.6), "Disgust": (-0.5, 0.0, 0.3), "Fear": (-0.1, 0.6, -0.5),
           "Happiness": (0.8, 0.2, 0.0), "Sadness": (-0.8, 0.0, -0.4), "Surprise": (0.0, 1.0, -0.7)}


def demo_images(cfg: DemoConfig) -> list[tuple[str, np.ndarray | bytes]]:
    """(relative path, RGB image or raw bytes) for the whole demo dataset."""
    from skimage import data

    rng = np.random.default_rng(cfg.random_state)
    photo = data.astronaut()[30:210, 135:315]  # the astronaut's face with some context
    files: list[tuple[str, np.ndarray | bytes]] = []
    for cls in PAPER_CLASSES:
        n_photo = round(cfg.per_class * cfg.photo_fraction)
        for i in range(cfg.per_class):
            img = (_tilted(photo, rng, cfg.size) if i < n_photo
                   else _cartoon(_SHAPES[cls], rng, cfg.size))
            files.append((f"{cls}/{cls.lower()}_{i:03d}.png", img))
    files.append(("Disgust/disgust_copy.png", files[PAPER_CLASSES.index("Disgust")
                                                     * cfg.per_class + cfg.per_class - 1][1]))
    files.append(("Fear/corrupt.jpg", b"\xff\xd8\xff\xe0 this is not really a jpeg"))
    files.append(("Surprise/tiny.png", _cartoon(_SHAPES["Surprise"], rng, 8)))
    return files


def _tilted(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    angle = rng.uniform(-20, 20)
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, rng.uniform(0.95, 1.1))
    img = cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    img = cv2.convertScaleAbs(img, alpha=rng.uniform(0.8, 1.2), beta=rng.uniform(-20, 20))
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def _cartoon(shape: tuple[float, float, float], rng: np.random.Generator, size: int) -> np.ndarray:
    curve, opening, brow = shape
    s = size / 128.0
    img = np.full((size, size, 3), rng.integers(40, 90, 3), np.uint8)
    skin = tuple(int(v) for v in rng.integers(150, 230, 3))
    cx, cy = size / 2 + rng.normal(0, 3 * s), size / 2 + rng.normal(0, 3 * s)
    cv2.ellipse(img, (int(cx), int(cy)), (int(40 * s), int(52 * s)), 0, 0, 360, skin, -1)
    for side in (-1, 1):
        ex, ey = cx + side * 16 * s, cy - 12 * s
        cv2.circle(img, (int(ex), int(ey)), max(1, int(5 * s)), (30, 30, 30), -1)
        tilt = brow * side * 6 * s
        cv2.line(img, (int(ex - 8 * s), int(ey - 10 * s - tilt)),
                 (int(ex + 8 * s), int(ey - 10 * s + tilt)), (40, 30, 20), max(1, int(2 * s)))
    mw, my = 18 * s, cy + 22 * s
    xs = np.linspace(-mw, mw, 15)
    ys = my - curve * 10 * s * (1 - (xs / mw) ** 2)
    pts = np.stack([cx + xs, ys], axis=1).astype(np.int32)
    cv2.polylines(img, [pts], False, (120, 30, 40), max(1, int(3 * s)))
    if opening > 0.05:
        cv2.ellipse(img, (int(cx), int(my)), (int(8 * s), int(opening * 10 * s)), 0, 0, 360,
                    (60, 10, 20), -1)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)
