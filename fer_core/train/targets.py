"""Training targets from label distributions: three of the FER+ paper's four ways of using
crowd votes (Barsoum et al. 2016, section 3), ``label_mode`` of the training config.

- ``majority``: the one-hot labels (``labels.npy``);
- ``probability``: each epoch, every face's target is one class drawn from its distribution
  (``distribution.npy``), from a generator seeded by (random_state, epoch): a resumed run
  draws what the uninterrupted one drew;
- ``crossentropy``: the distribution itself, a soft target for the cross-entropy.

Class weights follow the majority labels: under the last two a face weighs its one-hot
label's class weight (whatever class is drawn, and over its whole distribution), so the
balance changes how much a face counts, never what it is trained towards. A distribution
target carries that weight as its sum (``TargetLoss``), so batching, mixup and cutmix
handle one tensor as they do class targets.

Which faces a set holds is decided by the preparation's ``labels.mode`` (majority drops the
faces without a majority, the other two keep them), so a training mode must match it
(``resolve_label_mode``, torch-free in fer_core.config.train so the command line checks it
before torch loads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_core import store
from fer_core.runtime import device as dev
from fer_core.train.config import (
    LABEL_MODES,
    MAJORITY,
    prepared_label_mode,
    resolve_label_mode,
)

__all__ = ["LABEL_MODES", "BatchSource", "TargetLoss", "batch_source", "draw_labels",
           "epoch_targets", "prepared_label_mode", "resolve_label_mode"]

# A third entry in the seed keeps the draws apart from the epoch's shuffle and augmentation.
_DRAW_STREAM = 1


def draw_labels(distribution: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class per row of ``distribution`` (N, C), drawn with its probabilities: int64 (N,).

    Inverse transform sampling, one uniform number a row (vectorised)."""
    cdf = np.cumsum(np.asarray(distribution, dtype=np.float64), axis=1)
    u = rng.random(len(cdf)) * cdf[:, -1]  # rows summing to 1 up to float32 rounding
    return np.minimum((cdf <= u[:, None]).sum(axis=1), cdf.shape[1] - 1).astype(np.int64)


def epoch_targets(saved: store.SavedSet, mode: str, *, random_state: int, epoch: int,
                  class_weight: np.ndarray | None = None) -> np.ndarray:
    """The training targets of ``epoch`` under ``mode``: int64 classes (N,) for majority;
    float32 (N, C) for the others, each row the face's drawn class one-hot (probability) or
    its distribution (crossentropy), times the class weight of its one-hot label."""
    if mode == MAJORITY:
        return saved.targets.astype(np.int64)
    if saved.distribution is None:
        raise ValueError(f"label_mode {mode!r}: the training set has no distributions")
    dist = np.asarray(saved.distribution, dtype=np.float32)
    if mode == "probability":
        drawn = draw_labels(dist, np.random.default_rng([random_state, epoch, _DRAW_STREAM]))
        dist = np.eye(dist.shape[1], dtype=np.float32)[drawn]
    if class_weight is None:
        return np.ascontiguousarray(dist)
    return dist * np.asarray(class_weight, np.float32)[saved.targets][:, None]


class TargetLoss(nn.Module):
    """Cross-entropy on class targets (int64: ``nn.CrossEntropyLoss`` with the class
    weights) or on weighted distributions (float (N, C), ``epoch_targets``: a row sums to
    its face's weight, and the loss is the weighted mean over faces). Label smoothing mixes
    a distribution with the uniform one, as for class targets."""

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        self.classes = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self.smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 1:
            return self.classes(logits, target)
        mass = target.sum(dim=1, keepdim=True)
        soft = target * (1 - self.smoothing) + mass * (self.smoothing / target.shape[1])
        return -(soft * F.log_softmax(logits.float(), dim=1)).sum() / mass.sum()


# (batch_size, order, targets) -> (uint8 NHWC images, targets) batches; targets default to
# the set's one-hot labels as classes.
BatchSource = Callable[[int, np.ndarray | None, np.ndarray | None],
                       Iterable[tuple[torch.Tensor, torch.Tensor]]]


def batch_source(saved: store.SavedSet, device: torch.device) -> BatchSource:
    """``(batch_size, order, targets=None) -> batches`` of a saved set, with ``targets``
    (an epoch's, ``epoch_targets``) or the set's classes.

    On an accelerator the uint8 set is copied there once: the fastest feed, and device
    memory is large. On the CPU a copy would double the set in RAM (4.1 GB peak on
    FER2013), so batches are read from the file as they are needed, a few ahead: memory
    then stays flat however large the set.
    """
    if device.type != "cpu":
        images = dev.to_device_uint8(saved.images, device)
        classes = torch.from_numpy(saved.targets).to(device)

        def on_device(bs, order, targets=None):
            y = classes if targets is None else torch.from_numpy(targets).to(device)
            return dev.batches(images, y, bs, order=order)

        return on_device
    path = saved.images.filename
    return lambda bs, order, targets=None: dev.file_batches(
        lambda rows: store.read_rows(path, rows),
        saved.targets if targets is None else targets, bs, order=order)
