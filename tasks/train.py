"""Thin Prefect tasks over fer_core's trainer and evaluation (the paper's class weights)."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import task

from fer_core import store
from fer_core.evaluate import checkpoints
from fer_core.evaluate import score as evaluate
from fer_core.models import checkpoint
from fer_core.models import registry as models
from fer_core.runtime import device as dev
from fer_core.store import Ref
from fer_core.store.keys import content_fingerprint
from fer_core.train import loop as train
from fer_core.train import trainings
from tasks.caching import result_dir, task_options

# The seeds of training's key: fer_core.store.keys adds every module they import (train_config,
# ...) and the versions of the libraries among them.
TRAIN_MODULES = [train, models, dev, evaluate, checkpoint]
# File hashes remembered between runs (fer_core.store.keys.content_fingerprint).
HASH_MEMO = "content_hashes.json"


def lineage(run_dir: str, cfg: train.TrainConfig, store_root: str) -> dict:
    """What a training learns from, by content: the saved sets (fer_core.store.keys'
    content_fingerprint of RUN/sets) and the starting checkpoint's sha256."""
    memo = Path(store_root) / HASH_MEMO
    start = store.file_sha256(cfg.weights) if cfg.weights is not None else None
    return {"sets_sha256": content_fingerprint(store.sets_dir(run_dir), memo),
            "start_checkpoint": {"ref": cfg.weights, "sha256": start}}


def _train_dir(a) -> Path:
    # Keyed by the content training reads (the saved sets' bytes, the starting weights'
    # bytes; not their paths or file times: `fer prepare` may publish the same sets again)
    # and the training config: new training parameters rerun training and evaluation only;
    # the preparation stays cached.
    cfg = a["cfg"]
    memo = Path(a["store_root"]) / HASH_MEMO
    inputs = [content_fingerprint(store.sets_dir(a["run_dir"]), memo)]
    if cfg.weights is not None:
        inputs.append(f"weights:{content_fingerprint(cfg.weights, memo)}")
        cfg = cfg.model_copy(update={"weights": "<content in inputs>"})
    return result_dir(a["store_root"], "train", inputs, cfg, TRAIN_MODULES)


@task(name="train", task_run_name="train-{cfg.model}-{cfg.epochs}ep", **task_options(_train_dir))
def train_task(run_dir: str, cfg: train.TrainConfig, store_root: str,
               sets: dict | None = None) -> Ref:
    """``sets``: the save task's result when the sets were saved in this run; training
    reads them from ``run_dir`` (keyed by their bytes), so it only links the two in the
    run graph."""
    def make(out: Path) -> dict:
        start = time.perf_counter()
        # An interrupted run left last.pt here: fit resumes from it.
        result = train.fit(run_dir, cfg, out_dir=out, resume=True,
                           progress=_epoch_reporter(cfg.epochs),
                           lineage=lineage(run_dir, cfg, store_root))
        return {"best_epoch": result.best_epoch, "last_epoch": result.last_epoch,
                "stopped_early": result.stopped_early, "device": result.device,
                "train_images_per_s": result.train_images / max(result.train_seconds, 1e-9),
                "wall_seconds": round(time.perf_counter() - start, 1)}

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


@task(name="evaluate", task_run_name="evaluate", **task_options(None))
def evaluate_task(checkpoint_path: str, run_dir: str,
                  splits: tuple[str, ...] | None = None) -> dict:
    """Macro-F1, per-class metrics and confusion matrices of a checkpoint on the saved sets
    of ``run_dir`` (default: every evaluation split, val, test and the named subsets such as
    test_private); reports under the named training's folder when the checkpoint is one's
    (RUN/train/NAME/model/best.pt), else under ``run_dir``. Training's history.csv and
    curves stay."""
    metrics, meta = checkpoints.score_run(checkpoint_path, run_dir, splits)
    evaluate.write_reports(trainings.reports_home(run_dir, checkpoint_path), metrics, None,
                           meta["classes"],
                           extra={"model": meta["model"], "checkpoint": str(checkpoint_path),
                                  "epoch": meta.get("epoch")})
    return {s: {k: m[k] for k in ("accuracy", "macro_f1")} for s, m in metrics.items()}


@task(name="evaluate-other-dataset", task_run_name="evaluate-other-dataset-{name}",
      **task_options(None))
def cross_evaluate_task(checkpoint_path: str, prepared_dir: str, run_dir: str, name: str,
                        data: str) -> dict:
    """A checkpoint on another dataset prepared as one test set (``prepared_dir``), scored
    over the classes it holds, with the model's full argmax and restricted to those classes;
    reports under RUN_DIR/reports/cross/<name>/ and a line in reports/cross/summary.json."""
    scores, meta = checkpoints.score_other(checkpoint_path, prepared_dir)
    evaluate.write_cross_reports(run_dir, name, scores, extra={
        "data": str(Path(data).resolve()), "prepared": str(prepared_dir),
        "checkpoint": str(checkpoint_path),
        "model": meta["model"], "model_classes": list(meta["classes"])})
    return {v: {k: m[k] for k in ("accuracy", "macro_f1", "n")} for v, m in scores.items()}


@task(name="publish-model", task_run_name="publish-model-{name}", **task_options(None))
def publish_model_task(trained: Ref, run_dir: str, name: str, identity: dict) -> dict:
    """The best checkpoint and its reports to RUN_DIR/train/NAME, RUN_DIR/model and
    RUN_DIR/reports following the latest training (or the promoted one); the index.

    fit() already scored the best model on every split and subset (with the run's test-time
    flip), inside the cached training result: publishing them avoids scoring it twice.
    """
    meta = store.result_meta(trained)
    record = {**identity, **{k: meta.get(k) for k in ("best_epoch", "last_epoch",
                                                     "wall_seconds", "device")},
              "code": checkpoint.code_label(checkpoint.code_version()),
              "result": str(trained.path)}
    folder = trainings.publish(trained.path, best_checkpoint(trained), run_dir, name, record)
    current = trainings.alias(run_dir, name)
    trainings.write_index(run_dir)
    metrics = store.read_json(folder / evaluate.REPORTS / "metrics.json")
    return {"checkpoint": str(folder / "model" / "best.pt"), "training": str(folder),
            "name": name, "alias": {"checkpoint": str(Path(run_dir) / "model" / "best.pt"),
                                    "training": current},
            "headline": evaluate.headline_line(metrics),
            "metrics": {s: {k: m[k] for k in ("accuracy", "macro_f1")}
                        for s, m in evaluate.split_metrics(metrics).items()}}


@task(name="track", task_run_name="track-{name}", **task_options(None))
def track_task(run_dir: str, name: str, uri: str) -> dict:
    """The published training RUN_DIR/train/NAME logged to MLflow at ``uri`` too
    (fer_core.train.tracking); the training's folder stays the record."""
    from fer_core.train import tracking

    logged = tracking.log_training(uri, run_dir, name)
    said = "logged" if logged["logged"] else "already logged"
    print(f"MLflow: training {name} {said} as run {logged['run_id']} of experiment "
          f"{logged['experiment']!r} at {uri}; model {logged['model_uri']}")
    return logged


def publish_trainings_table(run_dir: str) -> None:
    """Every training on this prepared set, best first, as a table in the Prefect UI."""
    from prefect.artifacts import create_table_artifact

    table = trainings.ranked(trainings.index(run_dir))
    create_table_artifact(table.astype(object).where(table.notna(), None).to_dict("records"),
                          key="trainings", description=f"the trainings of {run_dir}, best "
                          "first (RUN/train/index.csv)")


def publish_metrics_table(metrics: dict, *, key: str = "metrics",
                          description: str = "accuracy and macro-F1 per split") -> None:
    """One row per scored set (val, test, test_private, ...) in the Prefect UI."""
    from prefect.artifacts import create_table_artifact

    rows = [{"split": s, **{k: round(v, 4) if isinstance(v, float) else v
                            for k, v in m.items()}} for s, m in metrics.items()]
    if "test" not in metrics and "val" in metrics:
        description += f"; headline: {evaluate.headline_note('val')}"
    create_table_artifact(rows, key=key, description=description)


def publish_training_artifacts(run_dir: str, metrics: dict,
                               training: str | None = None) -> None:
    from prefect.artifacts import create_markdown_artifact

    from tasks.reports import figures_markdown

    publish_metrics_table(metrics)
    rep = Path(training or run_dir) / evaluate.REPORTS
    pngs = [rep / n for n in ["training_curves.png", *(f"confusion_{s}.png" for s in metrics)]]
    create_markdown_artifact(figures_markdown(f"Training of `{training or run_dir}`",
                                              [p for p in pngs if p.is_file()]),
                             key="training-report",
                             description="training curves and confusion matrices")
