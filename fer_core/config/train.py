"""The training config: everything that decides a run, loadable from a YAML file.

The model names and devices are kept here as plain tuples, so that a config is checked
without importing torch: tests/fer_core/config checks that they are
fer_core.models.registry.REGISTRY's names and fer_core.runtime.device.DEVICES.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import get_args

from fer_core import UsageError
from fer_core.config.base import Config
from fer_core.config.labels import LabelsConfig

# The names of fer_core.models.registry.REGISTRY, in its order.
MODEL_NAMES = ("compact_cnn", "vgg_faces", "resnet18", "resnet50", "vit_tiny")
DEFAULT_MODEL = "resnet18"
DEVICES = ("auto", "cpu", "cuda", "mps")  # fer_core.runtime.device.DEVICES

# Fields that change where or how fast a run goes, not what it computes: a resumed run may
# differ in these from the run it continues.
RESUME_FREE = frozenset({"device", "num_threads", "compile", "eval_batch_size"})

OPTIMIZERS, SCHEDULES = ("adamw", "sgd"), ("cosine", "onecycle")
# How a face's label distribution (a labels file's votes) becomes its training target: the
# preparation's modes (labels.mode).
LABEL_MODES: tuple[str, ...] = get_args(LabelsConfig.model_fields["mode"].annotation)
MAJORITY = "majority"


def prepared_label_mode(prepared: Mapping | None) -> str | None:
    """The labels mode a run's sets were prepared with (prepare.json's
    ``ingest.labels.mode``), or None when they came from no labels file (or no record)."""
    labels = ((prepared or {}).get("ingest") or {}).get("labels") or {}
    return labels.get("mode", MAJORITY) if labels.get("file") else None


def _keeps(mode: str) -> str:
    # probability and crossentropy keep the same faces with the same distributions
    # (fer_core.prepare.votes): they differ only in the loss.
    return MAJORITY if mode == MAJORITY else "distribution"


def resolve_label_mode(requested: str | None, prepared: str | None, *,
                       has_distribution: bool, run_dir: object = "") -> str:
    """The mode a training uses: ``requested`` (the config's ``label_mode``), else the
    preparation's, else majority. A mode the sets cannot serve is an error saying why."""
    mode = requested or prepared or MAJORITY
    if mode not in LABEL_MODES:
        raise UsageError(f"unknown label_mode {mode!r}; known: {', '.join(LABEL_MODES)}")
    if mode != MAJORITY and not has_distribution:
        raise UsageError(f"{run_dir}: label_mode {mode!r} needs label distributions, and the "
                         "saved sets have none (sets/train/distribution.npy); prepare them "
                         f"from a file of votes: fer prepare DATA --labels FILE --labels-mode "
                         f"{mode}")
    if prepared is not None and _keeps(mode) != _keeps(prepared):
        raise UsageError(f"{run_dir}: label_mode {mode!r} does not match the sets, prepared "
                         f"with labels mode {prepared!r} (which decides the training faces: "
                         "majority drops those without a majority); prepare again with "
                         f"--labels-mode {mode}, or leave label_mode out to train as prepared")
    return mode


class TrainConfig(Config):
    """Everything that decides a training run; YAML files load into it (``from_file``)."""

    model: str = DEFAULT_MODEL
    weights: str | None = None  # a local state_dict to start from; None = from scratch
    epochs: int = 30
    batch_size: int = 128
    eval_batch_size: int = 512
    optimizer: str = "adamw"  # adamw | sgd (Nesterov)
    lr: float = 1e-3  # peak learning rate
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.05  # not applied to norm scales and biases
    schedule: str = "cosine"  # cosine (after linear warmup) | onecycle
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # 0 = off
    cutmix_alpha: float = 0.0  # 0 = off
    mix_prob: float = 1.0  # share of batches mixed when an alpha is on
    augment: bool = True
    crop_translate: float = 0.1  # random shift, fraction of the side (crop with padding)
    crop_scale: float = 0.1  # random zoom in [1 - s, 1 + s]
    rotate_deg: float = 10.0
    hflip: bool = True
    class_weights: bool = True  # 'balanced' class-weighted cross-entropy
    # majority: the one-hot labels; probability: a one-hot target drawn from the face's
    # distribution each epoch; crossentropy: the distribution itself (soft targets).
    # None: the mode the sets were prepared with (prepare.json's ingest.labels.mode).
    label_mode: str | None = None
    patience: int = 10  # epochs without a better val macro-F1 before stopping; 0 = off
    hflip_tta: bool = False  # average with the mirrored image when evaluating
    # Average over five crops at the working size too (fer_core.models.tta): with
    # hflip_tta, ten views. Recorded in the checkpoint's face spec, as hflip_tta is.
    crop_tta: bool = False
    device: str = "auto"  # auto | cpu | cuda | mps
    random_state: int = 0
    num_threads: int | None = None  # CPU threads; None = the cores this process may use
    compile: bool = False  # torch.compile the training step (CUDA)
    channels_last: bool = False
    amp: bool = True  # bf16 autocast on CUDA
    cpu_amp: bool = False  # bf16 autocast on the CPU too: fast only with native bf16
    # Grey models turn every input grey (recorded in the checkpoint, so evaluate, predict
    # and export do the same to colour faces); None: grey when the training faces are.
    grayscale: bool | None = None
    # Fine-tuning from ``weights``: the backbone learns at lr * backbone_lr_scale (the head
    # at lr), and the first freeze_epochs epochs train the head only.
    backbone_lr_scale: float = 1.0
    freeze_epochs: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from plain values; unknown keys and wrong types are errors, not ignored."""
        known = cls.model_fields
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise UsageError(f"unknown TrainConfig keys {unknown}; known keys: "
                             f"{', '.join(known)}")
        cfg = cls(**{k: _coerce(k, known[k].annotation, v) for k, v in values.items()})
        validate(cfg)
        return cfg

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
        import yaml

        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
        if not isinstance(values, dict):
            raise UsageError(f"{path}: expected a mapping of TrainConfig keys")
        try:
            return cls.from_dict(values)
        except ValueError as e:
            raise UsageError(f"{path}: {e}") from None


def _coerce(name: str, hint: object, value: object) -> object:
    options = get_args(hint) or (hint,)
    if value is None and type(None) in options:
        return None
    kind = next(t for t in options if t is not type(None))
    if kind is float and isinstance(value, str):
        # YAML 1.1 reads 1e-3 (no dot) as a string.
        try:
            return float(value)
        except ValueError:
            pass
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise UsageError(f"TrainConfig.{name}: expected {kind.__name__}, got {value!r}")
    return value


def validate(cfg: TrainConfig) -> None:
    """Raise one ValueError naming every bad field."""
    if cfg.model not in MODEL_NAMES:  # as fer_core.models.registry.model_spec says it
        raise UsageError(f"unknown model {cfg.model!r}; known models: {', '.join(MODEL_NAMES)}")
    checks = {
        "optimizer": cfg.optimizer in OPTIMIZERS, "schedule": cfg.schedule in SCHEDULES,
        "device": cfg.device in DEVICES, "epochs": cfg.epochs >= 1,
        "label_mode": cfg.label_mode is None or cfg.label_mode in LABEL_MODES,
        "batch_size": cfg.batch_size >= 2, "eval_batch_size": cfg.eval_batch_size >= 1,
        "lr": cfg.lr > 0, "weight_decay": cfg.weight_decay >= 0,
        "warmup_epochs": 0 <= cfg.warmup_epochs <= cfg.epochs,
        "label_smoothing": 0 <= cfg.label_smoothing < 1,
        "mixup_alpha": cfg.mixup_alpha >= 0, "cutmix_alpha": cfg.cutmix_alpha >= 0,
        "mix_prob": 0 <= cfg.mix_prob <= 1, "patience": cfg.patience >= 0,
        "crop_translate": 0 <= cfg.crop_translate < 0.5, "crop_scale": 0 <= cfg.crop_scale < 1,
        "rotate_deg": 0 <= cfg.rotate_deg <= 180,
        "num_threads": cfg.num_threads is None or cfg.num_threads >= 1,
        "backbone_lr_scale": 0 < cfg.backbone_lr_scale <= 1,
        "freeze_epochs": 0 <= cfg.freeze_epochs < cfg.epochs,
    }
    bad = [f"{k}={getattr(cfg, k)!r}" for k, ok in checks.items() if not ok]
    if bad:
        raise UsageError(f"invalid TrainConfig values: {', '.join(bad)} (choices: optimizer "
                         f"{OPTIMIZERS}, schedule {SCHEDULES}, device {DEVICES}, "
                         f"label_mode {LABEL_MODES})")
