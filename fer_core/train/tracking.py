"""(ours) Optional experiment tracking: a published training (RUN/train/NAME) also logged to
MLflow, with the ``mlflow`` extra installed and a tracking URI given (``--mlflow URI``, else
``MLFLOW_TRACKING_URI``).

The training's folder and RUN/train/index.csv stay the record; MLflow gets a copy of it:
the config as params, the per-epoch history and the best model's scores on every split as
metrics (``best_SPLIT_accuracy``: history.csv has ``val_acc`` and ``val_macro_f1`` per epoch),
the lineage as tags (the sets' content hash, the code version, the starting checkpoint and
its sha256), the reports and figures, the checkpoint, and the model as an MLflow PyTorch
model (fer_core.models.export's graph: float32 NCHW RGB in [0, 1], logits out; the classes
and face spec in its metadata). A training already logged (same name, same best.pt) is not
logged twice. mlflow is imported only here, and only when tracking is asked for; the
command line's check (``check``) imports nothing heavy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from fer_core import UsageError

ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
INSTALL = "pip install 'fer-pipeline[mlflow]'"
MODEL = "model"  # the logged model's name
TAG = "fer."  # the lineage tags' prefix


def tracking_uri(uri: str | None = None) -> str | None:
    """Where trainings are logged: ``uri``, else $MLFLOW_TRACKING_URI, else nowhere."""
    return uri or os.environ.get(ENV) or None


def check(uri: str | None) -> None:
    """Tracking asked for (``uri`` or the environment) needs mlflow: one line saying how
    to get it. Finds the package without importing it (a command line check)."""
    wanted = tracking_uri(uri)
    if wanted and importlib.util.find_spec("mlflow") is None:
        where = f"--mlflow {uri}" if uri else f"{ENV}={wanted}"
        raise UsageError(f"{where}: MLflow tracking needs mlflow, which is not installed: "
                         f"{INSTALL}" + ("" if uri else f", or unset {ENV}"))


def _mlflow():
    # MLflow reports usage over the network unless told not to; a run here reaches nothing
    # but the package registries, and sends nothing (a user's own setting wins).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError:
        raise UsageError(f"MLflow tracking needs mlflow, which is not installed: {INSTALL}") \
            from None
    return mlflow


def params(config: dict) -> dict[str, str]:
    """The training config as MLflow params: strings as they are, other values as JSON
    (None as ``null``)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def final_metrics(metrics_json: dict) -> dict[str, float]:
    """``best_SPLIT_accuracy`` and ``best_SPLIT_macro_f1`` of every split of a metrics.json
    (the best model's), named apart from the per-epoch series."""
    from fer_core.evaluate.score import split_metrics

    return {f"best_{split}_{k}": float(m[k]) for split, m in split_metrics(metrics_json).items()
            for k in ("accuracy", "macro_f1")}


def lineage_tags(record: dict, model_sha256: str) -> dict[str, str]:
    """What the training learnt from, as tags (training.json's lineage)."""
    start = record.get("start_checkpoint") or {}
    return {f"{TAG}training": record["name"], f"{TAG}sets_sha256": record["sets_sha256"],
            f"{TAG}code": record.get("code") or "", f"{TAG}model_sha256": model_sha256,
            f"{TAG}start_checkpoint": start.get("ref") or "scratch",
            f"{TAG}start_sha256": start.get("sha256") or ""}


def _artifact_root(uri: str) -> str | None:
    """A SQLite store keeps its artifacts beside its file (MLflow's default is ./mlruns of
    whatever folder the command ran in); other stores choose their own."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or parsed.path in ("", "/:memory:"):
        return None
    return (Path(unquote(parsed.path[1:])).resolve().parent / "mlartifacts").as_uri()


@contextmanager
def _using(mlflow, uri: str):
    """MLflow's fluent API at ``uri`` for the block; the process's setting back after
    (``set_tracking_uri`` also sets the environment variable)."""
    before = os.environ.get(ENV)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        if before is not None:
            os.environ[ENV] = before


def experiment_name(run_dir: str | os.PathLike) -> str:
    """$MLFLOW_EXPERIMENT_NAME, else the run folder's name: one experiment per prepared
    set, as RUN/train/index.csv compares the trainings of one."""
    return os.environ.get(EXPERIMENT_ENV) or Path(run_dir).resolve().name


def log_training(uri: str, run_dir: str | os.PathLike, name: str) -> dict:
    """Log the published training RUN/train/NAME to the MLflow store at ``uri``; returns
    {"run_id", "experiment", "model_uri", "logged"} (``logged`` False: it already was)."""
    from fer_core import store
    from fer_core.train import trainings

    mlflow = _mlflow()
    folder = trainings.training_dir(run_dir, name)
    best_pt = folder / trainings.MODEL / "best.pt"
    record = store.read_json(folder / trainings.RECORD)
    tags = lineage_tags(record, store.file_sha256(best_pt))
    experiment = experiment_name(run_dir)
    with _using(mlflow, uri):
        found = mlflow.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found else mlflow.create_experiment(
            experiment, artifact_location=_artifact_root(uri))
        done = mlflow.search_runs([exp_id], output_format="list", max_results=1,
                                  filter_string=_same_training(tags))
        if done:
            run_id = done[0].info.run_id
            return {"run_id": run_id, "experiment": experiment, "logged": False,
                    "model_uri": done[0].data.tags.get(f"{TAG}model_uri", "")}
        commit = (store.read_json(best_pt.with_suffix(".json")).get("code_version") or {}) \
            .get("git_commit")
        if commit:
            tags["mlflow.source.git.commit"] = commit
        with mlflow.start_run(experiment_id=exp_id, run_name=name, tags=tags) as run:
            _log_record(mlflow, folder, record)
            info = _log_model(mlflow, best_pt)
            mlflow.set_tag(f"{TAG}model_uri", info.model_uri)
    return {"run_id": run.info.run_id, "experiment": experiment, "logged": True,
            "model_uri": info.model_uri}


def _same_training(tags: dict[str, str]) -> str:
    keys = (f"{TAG}training", f"{TAG}model_sha256")
    return " and ".join(f"tags.\"{k}\" = '{tags[k]}'" for k in keys)


def _log_record(mlflow, folder: Path, record: dict) -> None:
    from mlflow.entities import Metric

    from fer_core import store
    from fer_core.evaluate.score import REPORTS
    from fer_core.train import trainings

    reports = folder / REPORTS
    mlflow.log_params(params(record["config"]))
    history = store.read_csv(reports / "history.csv")
    series = [c for c in history.columns if c != "epoch"]
    client, run_id = mlflow.MlflowClient(), mlflow.active_run().info.run_id
    stamp = int(time.time() * 1000)  # one for all: the epoch is the step
    steps = [Metric(c, float(row[c]), stamp, int(row["epoch"]))
             for _, row in history.iterrows() for c in series]
    best = int(record.get("best_epoch") or 0)  # the epoch of the model scored
    final = [Metric(k, v, stamp, best) for k, v in
             final_metrics(store.read_json(reports / "metrics.json")).items()]
    for start in range(0, len(steps) + len(final), 1000):  # MLflow's batch limit
        client.log_batch(run_id, metrics=(steps + final)[start:start + 1000])
    mlflow.log_artifacts(str(reports), REPORTS)
    mlflow.log_artifact(str(folder / trainings.RECORD))
    for suffix in (".pt", ".json"):
        mlflow.log_artifact(str(folder / trainings.MODEL / f"best{suffix}"), "checkpoint")


def _log_model(mlflow, best_pt: Path):
    """The checkpoint as an MLflow PyTorch model: the exported graph (its preprocessing and
    the face spec's flip TTA inside), traced for any batch size."""
    import mlflow.pytorch
    import torch

    from fer_core.models import checkpoint
    from fer_core.models.export import ExportConfig, ExportGraph, example_input
    from fer_core.models.spec import face_spec

    model, meta = checkpoint.load_model(best_pt)
    spec = face_spec(meta)
    graph = ExportGraph(model, input_size=spec.input_size, tta=spec.tta).eval()
    example = example_input(spec.input_size, ExportConfig()).numpy()
    return mlflow.pytorch.log_model(
        graph, name=MODEL, input_example=example,
        # Stated, not inferred (inference loads the model in a subprocess); the release
        # without its build tag (+cpu, +cu130), which any build of it satisfies.
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        metadata={"classes": meta["classes"], "fer_model": meta["model"],
                  "input": "float32 NCHW RGB in [0, 1] (uint8 / 255), "
                           f"{spec.input_size}x{spec.input_size}; output: logits",
                  "face_spec": spec.model_dump(mode="json")})
