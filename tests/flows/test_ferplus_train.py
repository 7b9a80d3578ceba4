"""`fer train` on FER+ prepared with --labels-mode crossentropy, scored as FER+ reports it:
the accuracy in metrics.json equals one computed here from the model's own predictions and
majority labels derived from ferplus_votes.csv with pandas, and the faces left out for
having no majority are counted; `fer evaluate` says the same."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import torch

from fer_cli.main import main
from fer_core import store
from fer_core.models import checkpoint
from fer_core.models.spec import face_spec
from tests.flows.test_labels_flow import ferplus_small  # noqa: F401 - a shared fixture

VOTE_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF"]


def _ferplus_majority(votes: pd.DataFrame) -> pd.Series:
    """FER+'s majority rule written out independently: votes of 1 dropped, the top column
    the label if it holds more than half of the rest; a top unknown or NF is no label."""
    v = votes[VOTE_COLUMNS].where(votes[VOTE_COLUMNS] > 1, 0)
    top = v.idxmax(axis=1)
    labelled = (v.max(axis=1) > v.sum(axis=1) / 2) & ~top.isin(["unknown", "NF"])
    return top.where(labelled).str.capitalize()  # the preset's class names; NaN: none


def test_published_ferplus_accuracy_is_the_models_on_majority_labels(
        prefect_backend, ferplus_small, tmp_path):  # noqa: F811
    root, labels, _crossing = ferplus_small
    run = tmp_path / "run"
    assert main(["prepare", str(root), "--labels", str(labels), "--preset", "ferplus",
                 "--labels-mode", "crossentropy", "--no-align", "--augment", "none",
                 "--store", str(tmp_path / "store"), "--out", str(run)]) == 0
    # A label_mode the sets cannot serve fails at once, naming both modes (exit 2).
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("label_mode: majority\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["train", str(run), "--config", str(wrong)]) == 2
    assert "label_mode 'majority'" in err.getvalue()
    assert "prepared with labels mode 'crossentropy'" in err.getvalue()
    assert not (run / "train").exists()

    config = tmp_path / "train.yaml"
    config.write_text("batch_size: 16\naugment: false\ndevice: cpu\nnum_threads: 1\n"
                      "hflip_tta: true\n")
    assert main(["train", str(run), "--model", "compact_cnn", "--epochs", "2",
                 "--config", str(config)]) == 0
    published = store.read_json(run / "reports" / "metrics.json")
    assert published["label_mode"] == "crossentropy"  # followed the preparation
    assert len(published["classes"]) == 8

    # The oracle: labels from the CSV, predictions from the model (with its TTA).
    votes = pd.read_csv(labels).set_index("path")
    majority = _ferplus_majority(votes[votes["usage"] == "PrivateTest"])
    sources = pd.read_csv(run / "sets" / "test" / "sources.csv")["source"]
    model, meta = checkpoint.load_model(run / "model" / "best.pt")
    images = np.load(run / "sets" / "test" / "images.npy")
    with torch.inference_mode():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        logits = model(x)
        tta = face_spec(meta).tta
        assert tta in ("none", "hflip")  # the oracle's views
        if tta == "hflip":
            logits = (logits + model(x.flip(3))) / 2
    predicted = np.array(meta["classes"])[logits.argmax(dim=1).numpy()]
    truth = majority.loc[sources].to_numpy()
    assert not pd.isna(truth).any()  # the test split holds majority-labelled faces only
    test = published["test"]
    assert test["n"] == majority.notna().sum() == len(sources)
    assert test["accuracy"] == float(np.mean(predicted == truth))
    assert test["labels"] == "majority"
    assert test["excluded_n"] == majority.isna().sum() > 0
    assert sum(test["excluded"].values()) == test["excluded_n"]
    assert len(test["confusion"]) == 8 and "Contempt" in test["per_class"]

    # `fer evaluate` scores the same model the same way.
    assert main(["evaluate", str(run)]) == 0
    again = store.read_json(run / "reports" / "metrics.json")["test"]
    assert {k: again[k] for k in ("accuracy", "n", "excluded", "excluded_n")} == \
        {k: test[k] for k in ("accuracy", "n", "excluded", "excluded_n")}
