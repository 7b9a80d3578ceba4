"""What training optimises and how: class weights for the loss, the optimiser (no weight
decay on norm scales and biases), and the per-step learning-rate schedule."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from fer_core.models.transfer import is_head
from fer_core.train.config import TrainConfig

__all__ = ["class_weights", "make_optimizer", "make_scheduler"]


def class_weights(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """n_samples / (n_classes * count_c), scikit-learn's 'balanced'; 0 for an absent class.

    ``labels`` is one-hot (N, C) or integer codes (N,) with ``num_classes``.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        codes, n_classes = labels.argmax(axis=1), labels.shape[1]
    else:
        codes = labels.astype(np.int64)
        n_classes = len(np.bincount(codes, minlength=num_classes or 0))
    if num_classes is not None and n_classes != num_classes:
        raise ValueError(f"labels have {n_classes} classes, expected {num_classes}")
    weights = np.zeros(n_classes)
    present = np.unique(codes)
    if not len(present):
        return weights
    # scikit-learn refuses a class that y lacks, and divides by the present classes only:
    # the factor makes it n_classes, so an absent class changes no other class's weight.
    weights[present] = compute_class_weight("balanced", classes=present, y=codes)
    if len(present) != n_classes:
        weights *= len(present) / n_classes
    return weights


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm/LayerNorm scales and biases: decaying them only hurts.
    # Fine-tuning (backbone_lr_scale < 1): the head's groups first at lr, the backbone's
    # at lr * scale; the schedules scale every group's rate alike.
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    parts = [(named, 1.0)]
    if cfg.backbone_lr_scale != 1.0:
        head = {n for n, _ in named if is_head(model, n)}
        parts = [([x for x in named if x[0] in head], 1.0),
                 ([x for x in named if x[0] not in head], cfg.backbone_lr_scale)]
    groups = [{"params": [p for _, p in part if (p.ndim > 1) == decays],
               "weight_decay": cfg.weight_decay if decays else 0.0, "lr": cfg.lr * scale}
              for part, scale in parts for decays in (True, False)]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedule: linear warmup + cosine, or one-cycle (warmup = its rising part).

    Warmup takes step k (0-based) to lr * (k + 1) / warm, so its last step is at lr; the
    cosine then starts at lr and reaches 0 after the last step.
    """
    sched = torch.optim.lr_scheduler
    total = cfg.epochs * steps_per_epoch
    warm = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)
    # OneCycleLR divides by each phase's length in steps: its rise needs 2 steps and its
    # fall 1 (it raised ZeroDivisionError below that). A training of fewer than 3 steps
    # (a smoke run on a few images) warms up and decays as the cosine schedule does.
    if cfg.schedule == "onecycle" and total >= 3:
        peaks = [g["lr"] for g in optimizer.param_groups]  # lr, or lr * backbone_lr_scale
        return sched.OneCycleLR(optimizer, max_lr=peaks, total_steps=total,
                                pct_start=min(max(warm, 2), total - 1) / total,
                                cycle_momentum=cfg.optimizer == "sgd")
    cosine = sched.CosineAnnealingLR(optimizer, T_max=total - warm, eta_min=0.0)
    if warm == 0:
        return cosine
    # One warmup step (warm == 1) is already at lr: LinearLR's factor stays 1 throughout.
    linear = sched.LinearLR(optimizer, start_factor=1 / warm, end_factor=1.0,
                            total_iters=max(warm - 1, 1))
    return sched.SequentialLR(optimizer, [linear, cosine], milestones=[warm])
