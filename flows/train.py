"""Training and evaluation as a Prefect flow: class-weighted training, then the paper's
measures (macro-F1, per-class metrics, confusion matrix) on validation and test."""

# No ``from __future__ import annotations``: Prefect resolves the flow's parameter types
# (typed forms in its UI) in the namespace of the wrapper ``rerun_table`` puts around it.

from pathlib import Path

from prefect import flow

from fer_core import UsageError, store
from fer_core.models.reference import resolve_model, start_model
from fer_core.prepare.config import evaluation_config
from fer_core.store.gc import records_run
from fer_core.train import tracking, trainings
from fer_core.train.loop import TrainConfig
from flows.prepare import prepare_sets
from tasks.caching import rerun_table
from tasks.train import (
    cross_evaluate_task,
    evaluate_task,
    lineage,
    publish_metrics_table,
    publish_model_task,
    publish_training_artifacts,
    publish_trainings_table,
    track_task,
    train_task,
)


def train_config(config_file: str | None = None, options: TrainConfig | None = None,
                 **overrides) -> TrainConfig:
    """A config file (YAML), then the keys set in ``options``, then the non-None keyword
    overrides on top."""
    values = TrainConfig.from_file(config_file).model_dump(exclude_unset=True) \
        if config_file else {}
    values.update(options.model_dump(exclude_unset=True) if options else {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("weights"):  # fine-tuning: the checkpoint's architecture by default
        values["weights"] = str(resolve_model(values["weights"]))
        values["model"] = start_model(values["weights"], values.get("model")) \
            or values.get("model")
    return TrainConfig.from_dict({k: v for k, v in values.items() if v is not None})


@records_run("train", run="run_dir")
def train_and_evaluate(run_dir: str, cfg: TrainConfig, store_root: str | None = None,
                       name: str | None = None, replace: bool = False,
                       sets: dict | None = None, mlflow: str | None = None) -> dict:
    """Train into RUN/train/NAME (default: the model and a short config hash); an existing
    NAME trained differently is an error naming what differs, unless ``replace``.

    ``sets``: the save task's result, when this flow saved them (preparation -> training in
    the run graph). ``mlflow``: a tracking URI (else $MLFLOW_TRACKING_URI) the training is
    also logged to."""
    store_root = store_root or str(Path(run_dir) / "store")
    name = trainings.check_name(name or trainings.default_name(cfg))
    identity = lineage(run_dir, cfg, store_root)                  # (ours) sets, start: by
    identity = trainings.identity(cfg, identity["sets_sha256"],   #   content
                                  identity["start_checkpoint"]["sha256"])
    same = trainings.check_existing(run_dir, name, identity, replace)
    trained = train_task(run_dir, cfg, store_root, sets)          # 8: class-weighted training
    published = publish_model_task(trained, run_dir, name, identity)  # 9: macro-F1, confusion
    publish_training_artifacts(run_dir, published["metrics"], published["training"])
    publish_trainings_table(run_dir)
    uri = tracking.tracking_uri(mlflow)
    tracked = track_task(run_dir, name, uri) if uri else None
    if published["headline"]:
        print(published["headline"])
    return {**published, "cache_hit": same, "mlflow": tracked,
            "reports": str(Path(published["training"]) / "reports"),
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
@rerun_table
def train(run_dir: str, model: str | None = None, epochs: int | None = None,
          batch_size: int | None = None, lr: float | None = None, device: str | None = None,
          weights: str | None = None, seed: int | None = None, config_file: str | None = None,
          store_root: str | None = None, options: TrainConfig | None = None,
          name: str | None = None, replace: bool = False, label_mode: str | None = None,
          mlflow: str | None = None) -> dict:
    """Train on the sets `fer prepare` saved in ``run_dir`` and evaluate the best model.

    ``options``: any TrainConfig keys; those set override ``config_file``'s, and the
    parameters above (when given) override both. ``name``: the training's folder,
    RUN/train/NAME (default: the model and a short config hash); ``replace``: overwrite a
    training of that name trained differently. ``weights``: a model reference (a shipped
    model's name, a checkpoint, RUN/train/NAME). ``label_mode``: majority, probability or
    crossentropy (default: as the sets were prepared). ``mlflow``: an MLflow tracking URI the
    training is also logged to (default $MLFLOW_TRACKING_URI; needs the ``mlflow`` extra)."""
    if weights is not None:
        weights = str(resolve_model(weights))
    cfg = train_config(config_file, options, model=model, epochs=epochs, batch_size=batch_size,
                       lr=lr, device=device, weights=weights, random_state=seed,
                       label_mode=label_mode)
    result = train_and_evaluate(run_dir, cfg, store_root, name, replace, mlflow=mlflow)
    store.write_json(Path(run_dir) / "train.json", {"config": cfg.to_dict(), **result})
    return result


def own_or_shipped_model(run_dir: str) -> str:
    """The run's trained model, else the shipped one (a run that was only prepared)."""
    own = Path(run_dir) / "model" / "best.pt"
    if own.is_file():
        return str(own)
    from fer_core.models.reference import shipped_path

    shipped = shipped_path("fer2013")
    print(f"{run_dir} has no trained model ({own}); scoring the shipped model {shipped}")
    return str(shipped)


@flow(name="evaluate", log_prints=True)
def evaluate_run(run_dir: str, data: str | None = None, class_map: str | None = None,
                 checkpoint: str | None = None, store_root: str | None = None,
                 classes: str | None = None, name: str | None = None) -> dict:
    """Score a trained model on its run's sets (val, test and the named subsets), or on
    another dataset (cross-dataset): all of ``data`` is one test set, prepared with the
    run's alignment and resizing, and scored over the classes it holds. Returns
    {set or scoring: {"accuracy", "macro_f1"}}; training's reports are left alone."""
    checkpoint = str(resolve_model(checkpoint)) if checkpoint else own_or_shipped_model(run_dir)
    if data is None:
        metrics = evaluate_task(checkpoint, run_dir)
        publish_metrics_table(metrics)
        return metrics
    from fer_core.models.checkpoint import load_checkpoint

    model_classes = tuple(load_checkpoint(checkpoint)[1]["classes"])
    name = _check_name(name or other_dataset_name(data))
    target = str(Path(run_dir) / "cross" / name)
    prepared = Path(run_dir) / "prepare.json"
    run_config = store.read_json(prepared).get("config") if prepared.is_file() else None
    if run_config is None:
        print(f"WARNING: {prepared} not found: {data} is prepared with the default alignment "
              "and resizing, which may not be the run's")
    cfg = evaluation_config(data, run_config, class_map=class_map, classes=classes)
    prepare_sets(cfg, target, store_root or str(Path(run_dir) / "store"),
                 known_classes=model_classes)
    scores = cross_evaluate_task(checkpoint, target, run_dir, name, data)
    publish_metrics_table(scores, key="cross-metrics",
                          description=f"the model of {run_dir} on {data}")
    return {v: {k: m[k] for k in ("accuracy", "macro_f1")} for v, m in scores.items()}


def other_dataset_name(data: str) -> str:
    """The name another dataset's reports go under: its folder's (or CSV file's) name."""
    p = Path(data).resolve()
    return p.stem if p.is_file() else p.name


def _check_name(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise UsageError(f"cross-dataset name {name!r}: give a plain name with --name")
    return name
