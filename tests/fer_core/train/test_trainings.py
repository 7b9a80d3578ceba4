"""(ours) What makes two trainings the same one, and the one model reference: checked on
records and paths alone (the trainings themselves: tests/flows/test_trainings.py)."""

from __future__ import annotations

import pytest

from fer_core import store
from fer_core.config.train import TrainConfig
from fer_core.models.reference import resolve_model
from fer_core.models.weights import DEFAULT_CHECKPOINT
from fer_core.train import trainings


def test_a_name_reused_differently_is_refused_naming_what_differs_unless_replaced(tmp_path):
    cfg = TrainConfig(model="compact_cnn", epochs=2)
    old = trainings.identity(cfg, "a" * 64, None)
    store.write_json(trainings.training_dir(tmp_path, "x") / trainings.RECORD,
                     {"name": "x", **old})
    assert trainings.check_existing(tmp_path, "x", old, replace=False)  # the same: a hit
    assert not trainings.check_existing(tmp_path, "new", old, replace=False)
    other = trainings.identity(cfg.model_copy(update={"epochs": 3, "weights": "w.pt"}),
                               "b" * 64, "c" * 64)
    with pytest.raises(ValueError) as e:
        trainings.check_existing(tmp_path, "x", other, replace=False)
    assert "epochs: 2 -> 3" in str(e.value) and "sets: content aaaaaaaaaaaa" in str(e.value)
    assert "starting checkpoint: None -> w.pt" in str(e.value) and "--replace" in str(e.value)
    assert not trainings.check_existing(tmp_path, "x", other, replace=True)


def test_default_names_differ_by_recipe_and_bad_names_are_refused():
    a, b = TrainConfig(model="compact_cnn"), TrainConfig(model="compact_cnn", lr=0.01)
    assert trainings.default_name(a).startswith("compact_cnn-")
    assert trainings.default_name(a) != trainings.default_name(b)
    assert trainings.recipe(b.to_dict()) == "model=compact_cnn lr=0.01"
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="training name"):
            trainings.check_name(bad)


def test_one_model_reference(tmp_path):
    assert resolve_model("fer2013") == DEFAULT_CHECKPOINT
    assert resolve_model(DEFAULT_CHECKPOINT.stem) == DEFAULT_CHECKPOINT
    assert resolve_model(str(DEFAULT_CHECKPOINT)) == DEFAULT_CHECKPOINT
    (tmp_path / "train" / "t" / "model").mkdir(parents=True)
    (tmp_path / "train" / "t" / "model" / "best.pt").write_bytes(b"x")
    assert resolve_model(tmp_path / "train" / "t") == tmp_path / "train" / "t" / "model" / "best.pt"
    with pytest.raises(FileNotFoundError, match="without a model"):
        resolve_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a shipped model .*fer2013"):
        resolve_model("nosuch")
