"""Evaluation: metrics against hand counts, predictions, reports on disk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from fer_core import store
from fer_core.evaluate.score import classification_metrics, predict_proba
from fer_core.models.registry import create_model
from tests.fer_core._trainfix import fer_run, trained  # noqa: F401  (fixtures)

CLASSES = ("angry", "happy", "sad")


def test_metrics_match_hand_counts():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0, 0, 1])  # 'sad' is never predicted
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert m["accuracy"] == pytest.approx(4 / 8)
    assert m["confusion"] == [[2, 1, 0], [0, 2, 0], [2, 1, 0]]
    angry = m["per_class"]["angry"]
    assert angry == pytest.approx({"precision": 2 / 4, "recall": 2 / 3,
                                   "f1": 2 * (1 / 2 * 2 / 3) / (1 / 2 + 2 / 3), "support": 3})
    happy = m["per_class"]["happy"]
    assert happy["precision"] == pytest.approx(2 / 4) and happy["recall"] == 1.0
    assert m["per_class"]["sad"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3}
    # The never-predicted class still counts in the macro average.
    assert m["macro_f1"] == pytest.approx((angry["f1"] + happy["f1"] + 0) / 3)


def test_predict_proba_is_softmax_of_the_model_on_scaled_pixels():
    torch.manual_seed(0)
    model = create_model("compact_cnn", num_classes=3).eval()
    images = np.random.default_rng(0).integers(0, 256, (5, 96, 96, 3), dtype=np.uint8)
    proba = predict_proba(model, images, device="cpu", batch_size=2)
    assert proba.shape == (5, 3) and proba.dtype == np.float32
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1).numpy()
    assert np.allclose(proba, expected, atol=1e-5)
    tta = predict_proba(model, images, device="cpu", tta="hflip")
    assert tta.shape == (5, 3) and not np.allclose(tta, proba)
    with pytest.raises(ValueError, match="uint8"):
        predict_proba(model, images.astype(np.float32) / 255, device="cpu")


def test_reports_are_written_for_val_and_test(fer_run, trained):  # noqa: F811
    reports = trained.out_dir / "reports"
    metrics = store.read_json(reports / "metrics.json")
    assert metrics["classes"] == ["angry", "happy", "neutral", "surprise"]
    assert metrics["best_epoch"] == trained.best_epoch
    # the headline keys at the top are the held-out test split's
    assert metrics["split"] == "test"
    assert {k: metrics[k] for k in ("accuracy", "macro_f1", "per_class")} == \
        {k: metrics["test"][k] for k in ("accuracy", "macro_f1", "per_class")}
    for split in ("val", "test"):
        m = metrics[split]
        assert {"accuracy", "macro_f1", "per_class"} <= set(m)
        assert set(m["per_class"]) == set(metrics["classes"])
        n = len(store.load_set(fer_run, split).images)
        assert sum(c["support"] for c in m["per_class"].values()) == n
        cm = pd.read_csv(reports / f"confusion_{split}.csv")
        assert cm["true"].tolist() == metrics["classes"]
        assert cm.drop(columns="true").to_numpy().sum() == n
        assert np.trace(cm.drop(columns="true").to_numpy()) / n == pytest.approx(m["accuracy"])
        assert (reports / f"confusion_{split}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = pd.read_csv(reports / "history.csv")
    assert history["epoch"].tolist() == list(range(1, trained.last_epoch + 1))
    assert {"train_loss", "val_loss", "train_acc", "val_acc", "val_macro_f1"} <= set(history)
    assert (reports / "training_curves.png").stat().st_size > 1000


# ---------------------------------------------------------------- named subsets, other data


def _argmax(model, images: np.ndarray) -> np.ndarray:
    """The oracle's predictions: the model's forward on pixels / 255, nothing of evaluate."""
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return model(x).argmax(dim=1).numpy()


def _sklearn(y_true, y_pred, n_classes: int) -> dict:
    labels = list(range(n_classes))
    return {"accuracy": accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro",
                                 zero_division=0),
            "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist()}


def _every_third_test_row(run_dir, out_dir):
    """A copy of the run (its arrays hard-linked) whose sets name a subset of test."""
    src, dst = store.sets_dir(run_dir), store.sets_dir(out_dir)
    for path in src.rglob("*.npy"):
        store.copy_file(path, dst / path.relative_to(src))
    meta = store.read_json(src / store.SETS_META)
    rows = np.arange(0, meta["splits"]["test"], 3)
    store.write_array(dst / "every_third" / "index.npy", rows)
    store.write_json(dst / store.SETS_META, {**meta, "subsets": {"every_third": {
        "parent": "test", "index": "every_third/index.npy", "n": len(rows)}}})
    return rows


def test_a_subset_is_scored_from_its_parents_predictions(fer_run, trained, tmp_path):  # noqa: F811
    from fer_core.evaluate.score import evaluate_sets
    from fer_core.models.checkpoint import load_model

    rows = _every_third_test_row(fer_run, tmp_path)
    model, _ = load_model(trained.best_checkpoint)
    seen = []
    model.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    sets = {s: store.load_set(tmp_path, s) for s in store.evaluation_splits(tmp_path)}
    assert list(sets) == ["val", "test", "every_third"]
    metrics = evaluate_sets(model, sets, device="cpu", batch_size=64)
    assert sum(seen) == len(sets["val"].images) + len(sets["test"].images), \
        "the subset's images are not classified a second time"
    test = store.load_set(fer_run, "test")
    oracle = _sklearn(test.targets[rows], _argmax(model, test.images[rows]), 4)
    got = metrics["every_third"]
    assert got["n"] == len(rows) == len(range(0, len(test.images), 3))
    assert got["accuracy"] == pytest.approx(oracle["accuracy"])
    assert got["macro_f1"] == pytest.approx(oracle["macro_f1"])
    assert got["confusion"] == oracle["confusion"]
    # scored alone (its parent not among the sets), it is classified from its own pixels
    alone = evaluate_sets(model, {"every_third": sets["every_third"]}, device="cpu")
    assert alone["every_third"] == got


def test_fit_scores_every_subset_beside_val_and_test(fer_run, tmp_path):  # noqa: F811
    from fer_core.models.checkpoint import load_model
    from fer_core.train.loop import TrainConfig, fit
    from tests.fer_core._trainfix import LEARN_CONFIG

    rows = _every_third_test_row(fer_run, tmp_path / "run")
    result = fit(tmp_path / "run", TrainConfig(**{**LEARN_CONFIG, "epochs": 1}),
                 out_dir=tmp_path / "out", resume=False)
    reports = tmp_path / "out" / "reports"
    metrics = store.read_json(reports / "metrics.json")
    assert metrics["splits"] == ["val", "test", "every_third"]
    assert metrics["split"] == "test" and metrics["accuracy"] == metrics["test"]["accuracy"]
    model, _ = load_model(result.best_checkpoint)
    test = store.load_set(fer_run, "test")
    oracle = _sklearn(test.targets[rows], _argmax(model, test.images[rows]), 4)
    assert metrics["every_third"]["accuracy"] == pytest.approx(oracle["accuracy"])
    assert metrics["every_third"]["macro_f1"] == pytest.approx(oracle["macro_f1"])
    cm = pd.read_csv(reports / "confusion_every_third.csv").drop(columns="true").to_numpy()
    assert cm.tolist() == oracle["confusion"]
    assert (reports / "confusion_every_third.png").read_bytes()[:4] == b"\x89PNG"
    assert store.read_json(result.best_checkpoint.with_suffix(".json"))[
        "metrics"]["every_third"]["n"] == len(rows)


def test_data_with_some_classes_is_scored_over_them_both_ways(fer_run, trained):  # noqa: F811
    from fer_core.evaluate.score import present_class_metrics
    from fer_core.models.checkpoint import load_model

    model, meta = load_model(trained.best_checkpoint)
    classes = meta["classes"]  # angry, happy, neutral, surprise
    test = store.load_set(fer_run, "test")
    present = ["angry", "surprise"]
    keep = np.isin(test.targets, [classes.index(c) for c in present])
    x = torch.from_numpy(np.array(test.images[keep])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        logits = model(x).numpy()
    y = test.targets[keep]
    scores = present_class_metrics(logits, y, classes, present)
    idx = [classes.index(c) for c in present]
    full = logits.argmax(axis=1)
    masked = np.where(np.isin(np.arange(len(classes)), idx), logits, -np.inf).argmax(axis=1)
    for name, y_pred in (("all_classes", full), ("present_classes", masked)):
        got = scores[name]
        assert got["n"] == int(keep.sum())
        assert got["accuracy"] == pytest.approx(accuracy_score(y, y_pred))
        assert got["macro_f1"] == pytest.approx(
            f1_score(y, y_pred, labels=idx, average="macro", zero_division=0))
        assert list(got["per_class"]) == present
        assert got["per_class"]["surprise"]["recall"] == pytest.approx(
            recall_score(y, y_pred, labels=[idx[1]], average=None)[0])
    # all classes: rows are the present classes, a column for every class of the model
    assert scores["all_classes"]["confusion"] == confusion_matrix(
        y, full, labels=range(len(classes)))[idx].tolist()
    assert scores["all_classes"]["predicted_absent"] == int((~np.isin(full, idx)).sum())
    assert scores["all_classes"]["absent_classes"] == ["happy", "neutral"]
    assert scores["present_classes"]["confusion"] == confusion_matrix(y, masked,
                                                                      labels=idx).tolist()
    assert scores["present_classes"]["accuracy"] >= scores["all_classes"]["accuracy"]
    with pytest.raises(ValueError, match="'fear'"):
        present_class_metrics(logits, y, classes, ["angry", "fear"])


def test_an_evaluation_leaves_trainings_history_and_curves(trained, tmp_path):  # noqa: F811
    from fer_core.evaluate.score import write_reports

    reports = tmp_path / "reports"
    before = {}
    for name in ("history.csv", "training_curves.png"):
        store.copy_file(trained.out_dir / "reports" / name, reports / name)
        before[name] = (reports / name).read_bytes()
    metrics = store.read_json(trained.out_dir / "reports" / "metrics.json")
    write_reports(tmp_path, {"test": metrics["test"]}, None, metrics["classes"])
    assert {n: (reports / n).read_bytes() for n in before} == before
    assert store.read_json(reports / "metrics.json")["splits"] == ["test"]
