"""Experiment tracking (the ``mlflow`` extra): `fer train --mlflow URI` (or
$MLFLOW_TRACKING_URI) also logs the training to MLflow. Read back through MLflow's own
client, its run holds the training's metrics.json and history.csv, its config and lineage
(training.json) and figures, and a model that predicts the checkpoint's classes on real
faces; a training logged once is not logged again."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest
import torch

from fer_cli.main import main
from fer_core import store
from fer_core.models.checkpoint import load_model
from tests.conftest import in_ci
from tests.fer_core._trainfix import fer_run, fer_tiny_run  # noqa: F401  (fixtures)
from tests.flows.test_train_flow import predicted

RECIPE = ("model: compact_cnn\nepochs: 2\nbatch_size: 32\nlr: 0.003\nweight_decay: 0.0\n"
          "augment: false\npatience: 0\ndevice: cpu\nnum_threads: 1\nwarmup_epochs: 0\n")


@pytest.fixture
def mlflow(monkeypatch):
    try:
        import mlflow
    except ImportError:
        if in_ci():  # the dev extra holds it: a skip in CI would hide the feature untested
            pytest.fail("mlflow is not installed (pip install -e '.[dev]')", pytrace=False)
        pytest.skip("mlflow is not installed (pip install -e '.[mlflow]')")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # no calls out of the machine
    return mlflow


@pytest.fixture
def no_mlflow(monkeypatch):
    """mlflow as if it were not installed (an import of it raises ImportError)."""
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.fer2013
def test_tracking_without_mlflow_fails_in_one_line_before_training(fer_tiny_run, no_mlflow,  # noqa: F811
                                                                   monkeypatch, capsys,
                                                                   tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fer_tiny_run / "sets", run / "sets")
    assert main(["train", str(run), "--mlflow", "sqlite:///x.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--mlflow sqlite:///x.db" in err, err
    assert "pip install 'fer-pipeline[mlflow]'" in err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///y.db")
    assert main(["train", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "MLFLOW_TRACKING_URI=sqlite:///y.db" in err, err
    assert "unset MLFLOW_TRACKING_URI" in err
    assert not (run / "train").exists()


def assert_holds(client, logged, folder) -> None:
    """The MLflow run ``logged`` holds the training RUN/train/NAME (``folder``): its final
    scores (metrics.json), its history per epoch, its config, lineage and figures."""
    record = store.read_json(folder / "training.json")
    metrics = store.read_json(folder / "reports" / "metrics.json")
    history = store.read_csv(folder / "reports" / "history.csv")
    for split in metrics["splits"]:
        for key in ("accuracy", "macro_f1"):
            best = client.get_metric_history(logged.info.run_id, f"best_{split}_{key}")
            assert [(m.step, m.value) for m in best] == [
                (record["best_epoch"], pytest.approx(metrics[split][key]))]
    for column in ("train_loss", "val_acc", "val_macro_f1", "lr"):
        steps = sorted((m.step, m.value) for m in
                       client.get_metric_history(logged.info.run_id, column))
        assert [s for s, _ in steps] == list(history["epoch"])
        assert [v for _, v in steps] == pytest.approx(list(history[column]))
    params = logged.data.params
    for key, value in record["config"].items():
        assert (params[key] if isinstance(value, str) else json.loads(params[key])) == value
    tags = logged.data.tags
    assert tags["fer.sets_sha256"] == record["sets_sha256"]
    assert tags["fer.code"] == record["code"] and tags["fer.start_checkpoint"] == "scratch"
    assert tags["fer.model_sha256"] == store.file_sha256(folder / "model" / "best.pt")
    shown = {a.path for a in client.list_artifacts(logged.info.run_id, "reports")}
    assert {"reports/training_curves.png", "reports/confusion_val.png",
            "reports/metrics.json"} <= shown


@pytest.mark.fer2013
@pytest.mark.slow
def test_the_mlflow_run_holds_the_training_and_its_model_predicts_the_same(
        prefect_backend, mlflow, fer_tiny_run, tmp_path, monkeypatch, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(fer_tiny_run / "sets", run / "sets")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    uri = f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}"
    (tmp_path / "tracking").mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["train", str(run), "--config", str(recipe), "--name", "tracked",
                 "--mlflow", uri]) == 0
    assert "MLflow: logged as run" in capsys.readouterr().out

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("run")  # the run folder's name
    (logged,) = client.search_runs([experiment.experiment_id])
    folder = run / "train" / "tracked"
    assert logged.info.run_name == "tracked"
    assert_holds(client, logged, folder)
    tags = logged.data.tags
    assert not (elsewhere / "mlruns").exists()  # beside the SQLite file, not in the cwd

    # The logged model on the run's real faces: the checkpoint's classes, face by face.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # where models:/ URIs are looked up
    model = mlflow.pytorch.load_model(tags["fer.model_uri"])
    classes = mlflow.models.get_model_info(tags["fer.model_uri"]).metadata["classes"]
    val = store.load_set(run, "val")
    x = torch.from_numpy(np.array(val.images)).permute(0, 3, 1, 2).float() / 255
    best = folder / "model" / "best.pt"
    with torch.no_grad():
        logits = model(x)
        np.testing.assert_allclose(logits, load_model(best)[0](x), atol=1e-4)
    got = np.asarray(classes)[logits.argmax(1).numpy()]
    assert list(got) == list(np.asarray(val.classes)[predicted(best, val)])

    # The same training again, the store named by the environment: a cache hit, and the
    # MLflow run already there is not doubled.
    assert main(["train", str(run), "--config", str(recipe), "--name", "tracked"]) == 0
    assert "already logged as run " + logged.info.run_id in capsys.readouterr().out
    assert len(client.search_runs([experiment.experiment_id])) == 1


@pytest.mark.fer2013
@pytest.mark.slow
def test_fer_pipeline_logs_its_training_as_fer_train_does(prefect_backend, mlflow,
                                                           fer_tiny_run, tmp_path,  # noqa: F811
                                                           monkeypatch):
    """The other door: `fer pipeline DATA --mlflow URI` on a folder of real faces."""
    val = store.load_set(fer_tiny_run, "val")  # 8 faces a class, written as PNG files
    for k, face in enumerate(np.asarray(val.images)):
        store.write_image(tmp_path / "data" / val.classes[val.targets[k]] / f"{k}.png", face)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["pipeline", str(tmp_path / "data"), "--out", str(tmp_path / "piped"),
                 "--no-align", "--augment", "none", "--config", str(recipe),
                 "--mlflow", uri]) == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("piped").experiment_id])
    (folder,) = (tmp_path / "piped" / "train").glob("*/training.json")
    assert logged.info.run_name == folder.parent.name
    assert_holds(client, logged, folder.parent)


def test_tracking_turns_mlflow_telemetry_off_unless_the_user_set_it(mlflow, monkeypatch):
    from fer_core.train import tracking

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")
    assert tracking._mlflow() is mlflow
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    tracking._mlflow()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"
