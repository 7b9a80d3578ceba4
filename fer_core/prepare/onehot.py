"""Section 5's last step: one-hot labels for the saved training, validation and test sets."""

from __future__ import annotations

import numpy as np


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """uint8 (N, C) one-hot rows; uint8 because the trainer memory-maps them beside the images."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    out = np.zeros((labels.size, n_classes), np.uint8)
    out[np.arange(labels.size), labels] = 1
    return out
