"""Evaluation of a trained run on another dataset through the flows: one test set scored
over the classes it holds, against the model's own forward pass and scikit-learn."""

from __future__ import annotations

import json

import pytest

from fer_cli.main import main
from fer_core import store
from tests.flows._private_run import LIST, extract_fer2013, private_run  # noqa: F401


@pytest.mark.fer2013
def test_another_dataset_is_one_test_set_scored_over_its_classes(
        private_run, tmp_path, capsys):  # noqa: F811
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    data, run = private_run
    # train/ and test/ of another folder, with two of the model's three classes
    other = extract_fer2013(tmp_path / "other", {("train", "angry", "Training"): (200, 6),
                                                 ("test", "happy", "PublicTest"): (100, 6)})
    (other / LIST).unlink()
    files = sorted(other.rglob("*.jpg"))
    trained = (run / "reports" / "metrics.json").read_bytes()
    assert main(["evaluate", str(run), "--data", str(other)]) == 0  # the run's class map
    out = run / "reports" / "cross" / "other"
    cross = json.loads((out / "metrics.json").read_text())
    assert cross["n"] == len(files) == 12, "no split: every image is scored"
    assert cross["classes"] == ["Anger", "Happiness"]
    assert cross["absent_classes"] == ["Surprise"]
    assert cross["model_classes"] == ["Anger", "Happiness", "Surprise"]
    prepared = store.read_json(run / "cross" / "other" / "sets" / "meta.json")
    assert prepared["splits"] == {"train": 0, "val": 0, "test": 12}
    assert json.loads((run / "cross" / "other" / "prepare.json").read_text())[
        "config"]["align"] == json.loads((run / "prepare.json").read_text())["config"]["align"]

    # the oracle: the model's own forward pass on the prepared images, sklearn's scores
    saved = store.load_set(run / "cross" / "other", "test")
    import torch

    from fer_core.models.checkpoint import load_model

    model, _ = load_model(run / "model" / "best.pt")
    x = torch.from_numpy(np.array(saved.images)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        logits = model(x).numpy()
    y = saved.targets  # Anger=0, Happiness=1 in both the data's and the model's order
    full = logits.argmax(axis=1)
    restricted = logits[:, :2].argmax(axis=1)
    for name, y_pred in (("all_classes", full), ("present_classes", restricted)):
        assert cross[name]["accuracy"] == pytest.approx(accuracy_score(y, y_pred)), name
        assert cross[name]["macro_f1"] == pytest.approx(
            f1_score(y, y_pred, labels=[0, 1], average="macro", zero_division=0)), name
    assert cross["scoring"] == "all_classes" and cross["accuracy"] == \
        cross["all_classes"]["accuracy"]
    cm = store.read_csv(out / "confusion_all_classes.csv")
    assert list(cm.columns) == ["true", "Anger", "Happiness", "Surprise"]
    assert cm.drop(columns="true").to_numpy().tolist() == \
        confusion_matrix(y, full, labels=[0, 1, 2])[:2].tolist()
    cm = store.read_csv(out / "confusion_present_classes.csv")
    assert list(cm.columns) == ["true", "Anger", "Happiness"]
    assert cm.drop(columns="true").to_numpy().tolist() == \
        confusion_matrix(y, restricted, labels=[0, 1]).tolist()
    summary = json.loads((run / "reports" / "cross" / "summary.json").read_text())
    assert summary["other"]["present_classes"]["accuracy"] == \
        cross["present_classes"]["accuracy"]
    assert (run / "reports" / "metrics.json").read_bytes() == trained, \
        "training's reports are not touched"

    # a class the model does not know is an error naming it
    unknown = extract_fer2013(tmp_path / "unknown", {("test", "fear", "PublicTest"): (0, 2),
                                                     ("test", "happy", "PublicTest"): (0, 2)})
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(unknown)]) == 2
    assert "['Fear'] are not among the model's classes" in capsys.readouterr().err
