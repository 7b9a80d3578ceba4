"""Training and evaluation as a Prefect flow: class-weighted training, then the paper's
measures (macro-F1, per-class metrics, confusion matrix) on validation and test."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from fer_core import store
from fer_core.config import build_config
from fer_core.train import TrainConfig
from flows.prepare import prepare_sets
from tasks.train import (
    evaluate_task,
    publish_model_task,
    publish_training_artifacts,
    train_task,
)


def train_config(config_file: str | None = None, **overrides) -> TrainConfig:
    """A config file (YAML) with the non-None keyword overrides on top."""
    values = TrainConfig.from_file(config_file).to_dict() if config_file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)


def train_and_evaluate(run_dir: str, cfg: TrainConfig, store_root: str | None = None) -> dict:
    store_root = store_root or str(Path(run_dir) / "store")
    trained = train_task(run_dir, cfg, store_root)                # 8: class-weighted training
    published = publish_model_task(trained, run_dir)              # 9: macro-F1, confusion
    publish_training_artifacts(run_dir, published["metrics"])
    return {**published, "reports": str(Path(run_dir) / "reports"),
            "data_warnings": data_warnings(run_dir)}


def data_warnings(run_dir: str) -> list[str]:
    """The preparation's warnings (e.g. a blurred training split), repeated beside the
    scores they explain."""
    prepared = Path(run_dir) / "prepare.json"
    warnings = store.read_json(prepared).get("warnings", []) if prepared.is_file() else []
    for line in warnings:
        print(f"WARNING from the preparation of {run_dir}: {line}")
    return warnings


@flow(name="train", log_prints=True)
def train(run_dir: str, model: str | None = None, epochs: int | None = None,
          batch_size: int | None = None, lr: float | None = None, device: str | None = None,
          weights: str | None = None, seed: int | None = None, config_file: str | None = None,
          store_root: str | None = None) -> dict:
    """Train on the sets `fer prepare` saved in ``run_dir`` and evaluate the best model."""
    cfg = train_config(config_file, model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                       device=device, weights=weights, random_state=seed)
    result = train_and_evaluate(run_dir, cfg, store_root)
    store.write_json(Path(run_dir) / "train.json", {"config": cfg.to_dict(), **result})
    return result


@flow(name="evaluate", log_prints=True)
def evaluate_run(run_dir: str, data: str | None = None, class_map: str | None = None,
                 checkpoint: str | None = None, store_root: str | None = None) -> dict:
    """Score a trained model on its run's sets, or on another dataset (cross-dataset):
    ``data`` goes through the same ingestion and pre-processing, alignment included."""
    checkpoint = checkpoint or str(Path(run_dir) / "model" / "best.pt")
    if data is None:
        return evaluate_task(checkpoint, run_dir, ("val", "test"))
    from fer_core.checkpoint import load_checkpoint

    classes = ",".join(load_checkpoint(checkpoint)[1]["classes"])
    target = str(Path(run_dir) / "cross" / Path(data).name)
    cfg = build_config(data, classes=classes, class_map=class_map, augment="none")
    prepare_sets(cfg, target, store_root or str(Path(run_dir) / "store"))
    metrics = evaluate_task(checkpoint, target, ("train", "val", "test"))
    store.write_json(Path(target) / "evaluate.json", {"checkpoint": checkpoint, "data": data,
                                                      "metrics": metrics})
    return metrics
