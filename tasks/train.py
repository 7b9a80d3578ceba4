"""Thin Prefect tasks over fer_core's trainer and evaluation (the paper's class weights)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task

from fer_core import checkpoint, evaluate, models, store, train
from fer_core import device as dev
from fer_core.store import Ref
from tasks.caching import result_dir, task_options

TRAIN_MODULES = [train, models, dev, evaluate, checkpoint]


def _train_dir(a) -> Path:
    # Keyed by the saved sets' content and the training config: new training parameters
    # rerun training and evaluation only; the preparation stays cached.
    sets = store.folder_fingerprint(store.sets_dir(a["run_dir"]))
    return result_dir(a["store_root"], "train", [sets], a["cfg"], TRAIN_MODULES)


@task(name="train", task_run_name="train-{cfg.model}-{cfg.epochs}ep", **task_options(_train_dir))
def train_task(run_dir: str, cfg: train.TrainConfig, store_root: str) -> Ref:
    def make(out: Path) -> dict:
        # An interrupted run left last.pt here: fit resumes from it.
        result = train.fit(run_dir, cfg, out_dir=out, resume=True,
                           progress=_epoch_reporter(cfg.epochs))
        return {"best_epoch": result.best_epoch, "last_epoch": result.last_epoch,
                "stopped_early": result.stopped_early, "device": result.device,
                "train_images_per_s": result.train_images / max(result.train_seconds, 1e-9)}

    return store.run_stage(_train_dir(locals()), make)[0]


def _epoch_reporter(epochs: int):
    """Each epoch: a log line, the progress artifact and the history table artifact."""
    from prefect import get_run_logger
    from prefect.artifacts import (
        create_progress_artifact,
        create_table_artifact,
        update_progress_artifact,
    )

    progress = create_progress_artifact(0.0, key="training-progress",
                                        description="epochs done")
    history: list[dict] = []

    def report(record: dict) -> None:
        get_run_logger().info("epoch %(epoch)d: train loss %(train_loss).4f acc %(train_acc).3f"
                              " | val loss %(val_loss).4f acc %(val_acc).3f macro-F1 "
                              "%(val_macro_f1).3f", record)
        update_progress_artifact(progress, 100.0 * record["epoch"] / epochs)
        history.append({k: round(v, 4) if isinstance(v, float) else v
                        for k, v in record.items()})
        create_table_artifact(history, key="training-history",
                              description="per-epoch loss, accuracy and validation macro-F1")

    return report


def best_checkpoint(trained: Ref) -> str:
    return str(Path(trained.path) / train.CHECKPOINTS / "best.pt")


@task(name="evaluate", task_run_name="evaluate-{splits}", **task_options(None))
def evaluate_task(checkpoint_path: str, run_dir: str,
                  splits: tuple[str, ...] = ("val", "test")) -> dict:
    """Macro-F1, per-class metrics and confusion matrices of a checkpoint on the saved
    splits of ``run_dir``; reports (and the model, after training) under ``run_dir``."""
    model, meta = checkpoint.load_model(checkpoint_path)
    device = dev.resolve_device("auto")
    model = model.to(device)
    tta = bool(meta.get("config", {}).get("hflip_tta", False))  # as the model was selected
    metrics = {}
    for split in splits:
        try:
            saved = store.load_set(run_dir, split)
        except FileNotFoundError:
            continue
        if len(saved.labels) == 0:
            continue
        if tuple(saved.classes) != tuple(meta["classes"]):
            raise ValueError(f"{run_dir}: classes {saved.classes} differ from the model's "
                             f"{meta['classes']}; prepare it with the model's classes")
        metrics[split] = evaluate.evaluate(model, saved, device=device, hflip_tta=tta)
    evaluate.write_reports(run_dir, metrics, pd.DataFrame(), meta["classes"],
                           extra={"model": meta["model"], "checkpoint": str(checkpoint_path)})
    return {s: {k: m[k] for k in ("accuracy", "macro_f1")} for s, m in metrics.items()}


@task(name="publish-model", task_run_name="publish-model", **task_options(None))
def publish_model_task(trained: Ref, run_dir: str) -> dict:
    """The best checkpoint to RUN_DIR/model and its reports to RUN_DIR/reports.

    fit() already scored the best model on every split (with the run's test-time flip),
    inside the cached training result: publishing them avoids scoring it twice.
    """
    best = Path(best_checkpoint(trained))
    for name in ("best.pt", "best.json"):
        store.link_or_copy(best.with_name(name), Path(run_dir) / "model" / name)
    for report in sorted((Path(trained.path) / evaluate.REPORTS).iterdir()):
        store.link_or_copy(report, Path(run_dir) / evaluate.REPORTS / report.name)
    metrics = store.read_json(Path(run_dir) / evaluate.REPORTS / "metrics.json")
    return {"checkpoint": str(Path(run_dir) / "model" / "best.pt"),
            "metrics": {s: {k: m[k] for k in ("accuracy", "macro_f1")}
                        for s, m in metrics.items() if s in ("train", "val", "test")}}


def publish_training_artifacts(run_dir: str, metrics: dict) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from tasks.reports import figures_markdown

    rows = [{"split": s, **{k: round(v, 4) for k, v in m.items()}} for s, m in metrics.items()]
    create_table_artifact(rows, key="metrics", description="accuracy and macro-F1 per split")
    rep = Path(run_dir) / evaluate.REPORTS
    pngs = [rep / n for n in ["training_curves.png", *(f"confusion_{s}.png" for s in metrics)]]
    create_markdown_artifact(figures_markdown(f"Training of `{run_dir}`",
                                              [p for p in pngs if p.is_file()]),
                             key="training-report",
                             description="training curves and confusion matrices")

