"""Plain PyTorch training: explicit epoch loops, no trainer framework.

The saved uint8 sets go to the device once; batches are cut, scaled (/255) and augmented
there (``fer_core.runtime.device``). Randomness is drawn per epoch from (random_state, epoch),
which makes a resumed run repeat the uninterrupted one exactly.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from torch import nn

from fer_core import UsageError, store
from fer_core.evaluate import majority
from fer_core.evaluate import score as ev
from fer_core.models import checkpoint as ckpt
from fer_core.models.registry import grey_input
from fer_core.models.spec import config_tta
from fer_core.models.transfer import set_backbone_frozen
from fer_core.runtime import device as dev
from fer_core.runtime.device import autocast, resolve_device, seed_everything, set_threads
from fer_core.runtime.progress import bar
from fer_core.train.config import RESUME_FREE, TrainConfig, validate
from fer_core.train.finetune import backbone_frozen, starting_model
from fer_core.train.optim import class_weights, make_optimizer, make_scheduler
from fer_core.train.targets import (
    TargetLoss,
    batch_source,
    epoch_targets,
    prepared_label_mode,
    resolve_label_mode,
)

__all__ = ["TrainConfig", "FitResult", "fit", "train_one_epoch", "evaluate"]

CHECKPOINTS = "checkpoints"


@dataclass(frozen=True, kw_only=True)
class FitResult:
    out_dir: Path
    best_checkpoint: Path
    best_epoch: int
    last_epoch: int
    stopped_early: bool
    metrics: dict  # split -> evaluate.classification_metrics of the best model
    history: tuple[dict, ...] = field(repr=False)
    train_images: int  # images stepped through in this call (not in resumed epochs)
    train_seconds: float
    device: str


# ---------------------------------------------------------------- the loops


def train_one_epoch(model: nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
                    criterion: nn.Module, device: torch.device, *, cfg: TrainConfig,
                    rng: np.random.Generator) -> dict:
    """One pass over ``loader`` (uint8 NHWC batches with class targets, or distributions
    for soft targets); returns mean loss, accuracy (against the targets' top class), speed."""
    model.train()
    net = getattr(model, "_orig_mod", model)  # torch.compile's wrapper keeps the module
    grey, size = net.grayscale, net.work_size
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen, t0 = 0, time.perf_counter()
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        x = grey_input(xb) if grey else ev.to_input(xb)  # grey before the warp: 1/3 the work
        if cfg.augment:  # straight to the backbone's size: the model's resize is then a no-op
            x = dev.augment(dev.shrink(x, size), rng, translate=cfg.crop_translate,
                            scale=cfg.crop_scale, rotate_deg=cfg.rotate_deg, hflip=cfg.hflip,
                            size=size)
        x, y2, lam = dev.mix(x, yb, rng, mixup_alpha=cfg.mixup_alpha,
                             cutmix_alpha=cfg.cutmix_alpha, prob=cfg.mix_prob)
        if cfg.channels_last:  # after the warp, whose output is plain NCHW
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, cfg.amp, cpu=cfg.cpu_amp):
            out = model(x)
            loss = criterion(out, yb) if lam == 1.0 else \
                lam * criterion(out, yb) + (1 - lam) * criterion(out, y2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        # Accumulate on the device: a .item() per step would stall a GPU every batch.
        loss_sum += loss.detach() * len(yb)
        correct += (out.detach().argmax(1) == (yb if yb.ndim == 1 else yb.argmax(1))).sum()
        seen += len(yb)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return {"loss": loss_sum.item() / max(seen, 1), "acc": correct.item() / max(seen, 1),
            "images": seen, "seconds": seconds, "images_per_s": seen / max(seconds, 1e-9)}


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
             criterion: nn.Module, device: torch.device, *, num_classes: int,
             cfg: TrainConfig) -> dict:
    """Loss, accuracy and macro-F1 over ``loader`` (the epoch-end validation pass)."""
    model.eval()
    logits, targets, tta = [], [], config_tta(cfg.model_dump())
    for xb, yb in loader:
        logits.append(ev.predict_logits(model, xb.to(device), device=device,
                                        batch_size=len(xb), tta=tta,
                                        amp=_amp(cfg, device),
                                        channels_last=cfg.channels_last))
        targets.append(yb.to(device))
    out, y = torch.cat(logits), torch.cat(targets)
    pred, y_np = out.argmax(1).cpu().numpy(), y.cpu().numpy()
    return {"loss": criterion(out, y).item(), "acc": float((pred == y_np).mean()),
            "macro_f1": float(f1_score(y_np, pred, labels=np.arange(num_classes),
                                       average="macro", zero_division=0))}


def _amp(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether this run computes in bf16 on ``device`` (cfg.amp on CUDA, cfg.cpu_amp on the
    CPU). Epoch-end validation follows it (it only selects the epoch); the final scores
    are computed in float32, as `fer evaluate` and `fer predict` compute them."""
    return cfg.amp if device.type == "cuda" else cfg.cpu_amp and device.type == "cpu"


# ---------------------------------------------------------------- fit


def _load_splits(run_dir: str | os.PathLike) -> dict[str, store.SavedSet]:
    """train and val, then every other set the run is scored on: test and the named
    subsets of it (``fer prepare --subset``, e.g. test_private)."""
    sets = {s: store.load_set(run_dir, s) for s in ("train", "val")}
    for s, use in (("train", "train on"), ("val", "select the epoch on")):
        if len(sets[s].targets) == 0:
            raise UsageError(
                f"{run_dir}: the {s} split is empty, so there is nothing to {use}; see "
                "reports/split.csv and reports/split_groups.csv (a group of near-duplicates "
                "is never split; split.group_near_duplicates: false turns that off)")
    for s in store.evaluation_splits(run_dir):
        if s not in sets:
            sets[s] = store.load_set(run_dir, s)
    return sets


def fit(run_dir: str | os.PathLike, cfg: TrainConfig, *, out_dir: str | os.PathLike | None = None,
        resume: bool = True, progress: Callable[[dict], None] | None = None,
        lineage: dict | None = None) -> FitResult:
    """Train ``cfg.model`` on RUN_DIR's saved sets; select on validation macro-F1.

    Writes ``checkpoints/{last,best}.{pt,json}`` and ``reports/`` under ``out_dir``
    (default ``run_dir``). With ``resume`` an existing ``last.pt`` is continued from its
    epoch. ``progress`` gets each epoch's history record. ``lineage`` goes into the
    checkpoints' metadata (fer_core.models.checkpoint.checkpoint_meta).
    """
    validate(cfg)
    out = Path(out_dir if out_dir is not None else run_dir)
    last_pt, best_pt = out / CHECKPOINTS / "last.pt", out / CHECKPOINTS / "best.pt"
    device = resolve_device(cfg.device)
    set_threads(cfg.num_threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
    sets = _load_splits(run_dir)
    prepared = store.prepared_config(run_dir)  # what the faces went through: the face spec
    classes, config = sets["train"].classes, cfg.to_dict()
    label_mode = resolve_label_mode(cfg.label_mode, prepared_label_mode(prepared),
                                    has_distribution=sets["train"].distribution is not None,
                                    run_dir=run_dir)

    # Judged on validation: it holds the dataset's faces as they are, where the training
    # split also holds noise-augmented copies whose noise differs per channel.
    seed_everything(cfg.random_state)
    model, grey, start = starting_model(cfg, classes, _grey_faces(sets["val"]))
    lineage = {**(lineage or {}), **({"start": start} if start else {})}
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    n_train = len(sets["train"].labels)
    scheduler = make_scheduler(optimizer, cfg, max(1, n_train // cfg.batch_size))
    # Class weights follow the one-hot (majority) labels whatever the label mode.
    balance = class_weights(sets["train"].labels) if cfg.class_weights else None
    weight = None if balance is None else torch.tensor(balance, dtype=torch.float32,
                                                       device=device)
    criterion = TargetLoss(weight, label_smoothing=cfg.label_smoothing)
    history: list[dict] = []
    best = {"epoch": 0, "score": -1.0, "bad_epochs": 0}
    if resume and last_pt.exists():
        history, best = _restore(last_pt, config, classes, model, optimizer, scheduler)

    step_model = torch.compile(model) if cfg.compile else model
    train_batches, val_batches = (batch_source(sets[s], device) for s in ("train", "val"))
    images, seconds = 0, 0.0
    stopped = 0 < cfg.patience <= best["bad_epochs"]
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        if stopped:
            break
        rng = np.random.default_rng([cfg.random_state, epoch])
        torch.manual_seed(cfg.random_state * 100_003 + epoch)  # dropout, per epoch
        set_backbone_frozen(model, backbone_frozen(cfg, epoch))
        order = dev.shuffled_order(n_train, cfg.batch_size, rng)
        targets = epoch_targets(sets["train"], label_mode, random_state=cfg.random_state,
                                epoch=epoch, class_weight=balance)
        steps = bar(train_batches(cfg.batch_size, order, targets),
                    total=math.ceil(len(order) / cfg.batch_size), desc=f"epoch {epoch}")
        tr = train_one_epoch(step_model, steps, optimizer, scheduler, criterion, device,
                             cfg=cfg, rng=rng)
        va = evaluate(model, val_batches(cfg.eval_batch_size, None, None), criterion, device,
                      num_classes=len(classes), cfg=cfg)
        images, seconds = images + tr["images"], seconds + tr["seconds"]
        record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": tr["loss"], "train_acc": tr["acc"], "val_loss": va["loss"],
                  "val_acc": va["acc"], "val_macro_f1": va["macro_f1"],
                  "train_seconds": tr["seconds"], "train_images_per_s": tr["images_per_s"]}
        history.append(record)
        meta = ckpt.checkpoint_meta(model_name=cfg.model, classes=classes, config=config,
                                    epoch=epoch, metrics={"val": va}, grayscale=grey,
                                    prepared=prepared, lineage=lineage)
        if va["macro_f1"] > best["score"]:
            best = {"epoch": epoch, "score": va["macro_f1"], "bad_epochs": 0}
            ckpt.save_checkpoint(best_pt, {"model": ckpt.cpu_state(model)}, meta)
        else:
            best["bad_epochs"] += 1
        stopped = 0 < cfg.patience <= best["bad_epochs"]
        ckpt.save_checkpoint(last_pt, {"model": ckpt.cpu_state(model), "epoch": epoch,
                                       "optimizer": optimizer.state_dict(),
                                       "scheduler": scheduler.state_dict(), "config": config,
                                       "classes": list(classes), "history": history,
                                       "best": best}, meta)
        if progress is not None:
            progress(record)

    return _finish(out, best_pt, model, sets, cfg, history, best, stopped=stopped,
                   images=images, seconds=seconds, device=device,
                   scored={"run_dir": run_dir, "label_mode": label_mode})


def _grey_faces(saved: store.SavedSet, sample: int = 512) -> bool:
    """Whether the training faces are grey (three equal channels), judged on rows spread
    over the whole set."""
    n = len(saved.labels)
    rows = np.unique(np.linspace(0, n - 1, min(n, sample)).astype(np.int64))
    if not len(rows):
        return False
    px = store.read_rows(saved.images.filename, rows)
    return bool((px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all())


def _restore(last_pt: Path, config: dict, classes: tuple[str, ...], model: nn.Module,
             optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler) -> tuple[list[dict], dict]:
    """Load last.pt into the live objects; (history, best) to continue with."""
    state, meta = ckpt.load_checkpoint(last_pt)
    changed = sorted(k for k in set(config) | set(meta["config"])
                     if k not in RESUME_FREE and config.get(k) != meta["config"].get(k))
    if changed or list(meta["classes"]) != list(classes):
        raise ckpt.CheckpointError(f"{last_pt}: cannot resume, the run differs in "
                                   f"{changed or ['classes']}; pass resume=False or another "
                                   "out_dir")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    try:
        scheduler.load_state_dict(state["scheduler"])
    except KeyError as e:  # a LambdaLR's state: last.pt of a version before SequentialLR
        raise ckpt.CheckpointError(f"{last_pt}: cannot resume, its learning-rate schedule "
                                   "was saved in another form; pass resume=False or another "
                                   "out_dir") from e
    return list(state["history"]), dict(state["best"])


def _finish(out: Path, best_pt: Path, model: nn.Module, sets: dict[str, store.SavedSet],
            cfg: TrainConfig, history: list[dict], best: dict, *, stopped: bool, images: int,
            seconds: float, device: torch.device, scored: dict) -> FitResult:
    """Reload the best weights, evaluate every split and subset, write reports and best.json."""
    state, meta = ckpt.load_checkpoint(best_pt)
    model.load_state_dict(state["model"])
    # A subset (test_private) is scored from its parent's predictions: no image twice.
    metrics = majority.annotate(ev.evaluate_sets(
        model, {s: v for s, v in sets.items() if s != "train"}, device=device,
        batch_size=cfg.eval_batch_size, tta=config_tta(cfg.model_dump())), scored["run_dir"])
    classes = sets["train"].classes
    ev.write_reports(out, metrics, pd.DataFrame(history), classes,
                     extra={"model": cfg.model, "best_epoch": best["epoch"],
                            "label_mode": scored["label_mode"]})
    brief = {s: {k: m[k] for k in ("accuracy", "macro_f1", "n", "excluded_n") if k in m}
             for s, m in metrics.items()}
    store.write_json(best_pt.with_suffix(".json"), {**meta, "metrics": brief})
    return FitResult(out_dir=out, best_checkpoint=best_pt, best_epoch=best["epoch"],
                     last_epoch=len(history), stopped_early=stopped, metrics=metrics,
                     history=tuple(history), train_images=images, train_seconds=seconds,
                     device=str(device))
