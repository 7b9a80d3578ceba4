"""Section 5: apply the alignment, resize to 96x96; normalisation (/255) happens at load.

Images stay uint8 here and on disk: dividing by 255 when a batch is loaded gives exactly
the paper's values at a quarter of the memory, and no float32 copy of a whole set exists.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from fer_core.config.resize import ResizeConfig
from fer_core.prepare.align import align_face

SCALE = 255.0


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    # Area averaging when shrinking avoids aliasing; cubic when enlarging (48 -> 96) keeps edges.
    interp = cv2.INTER_AREA if min(h, w) >= size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


def preprocess_image(image: np.ndarray, row, cfg: ResizeConfig) -> np.ndarray:
    """Align (when MTCNN found the eyes) and resize one image to cfg.size, uint8 RGB."""
    if bool(row["aligned"]):
        image = align_face(image, (row["left_eye_x"], row["left_eye_y"]),
                           (row["right_eye_x"], row["right_eye_y"]), border=cfg.border)
    return resize_image(image, cfg.size)


def resize_batch(images: list[np.ndarray], rows: pd.DataFrame, cfg: ResizeConfig) -> np.ndarray:
    out = np.empty((len(images), cfg.size, cfg.size, 3), np.uint8)
    for i, (img, (_, row)) in enumerate(zip(images, rows.iterrows(), strict=True)):
        out[i] = preprocess_image(img, row, cfg)
    return out


def normalize(images: np.ndarray) -> np.ndarray:
    """The paper's normalisation: pixels divided by 255 into [0, 1] (float32)."""
    return images.astype(np.float32) / SCALE
