"""Evaluation: metrics against hand counts, predictions, reports on disk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from fer_core import store
from fer_core.evaluate import (
    classification_metrics,
    confusion_figure,
    confusion_frame,
    curves_figure,
    predict_proba,
)
from fer_core.models import create_model
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


def test_confusion_frame_rows_are_true_classes():
    df = confusion_frame([[2, 1, 0], [0, 2, 0], [2, 1, 0]], CLASSES)
    assert list(df.columns) == ["true", *CLASSES]
    assert df.set_index("true").loc["sad"].tolist() == [2, 1, 0]


def test_figures_are_returned_not_written():
    fig = confusion_figure([[2, 1], [0, 3]], ("a", "b"), title="t")
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "t"
    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.8], "val_loss": [1.1, 0.9],
                         "train_acc": [0.3, 0.4], "val_acc": [0.3, 0.35],
                         "val_macro_f1": [0.2, 0.3]})
    assert len(curves_figure(hist).axes) == 3


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
    tta = predict_proba(model, images, device="cpu", hflip_tta=True)
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
