"""Section 5's last step: one-hot labels for the saved training, validation and test sets."""

from __future__ import annotations

import numpy as np


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """uint8 (N, C) one-hot rows; uint8 because the trainer memory-maps them beside the images."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    return np.eye(n_classes, dtype=np.uint8)[labels.reshape(-1)]
