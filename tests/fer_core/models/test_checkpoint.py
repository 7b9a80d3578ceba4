"""Checkpoints: plain-data payloads, metadata beside them, refusal of pickled code."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from fer_core import store
from fer_core.evaluate import score as ev
from fer_core.models.checkpoint import (
    CheckpointError,
    checkpoint_meta,
    code_version,
    load_model,
    load_weights,
    safe_load,
    save_checkpoint,
)
from fer_core.models.registry import create_model
from tests.fer_core._trainfix import LEARN_CONFIG, fer_run, trained  # noqa: F401  (fixtures)


class _TouchOnLoad:
    """Unpickling this creates a file: proof of code running at load time."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_with_a_pickled_object_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    torch.save({"model": {}, "extra": _TouchOnLoad(marker)}, path)
    store.write_json(path.with_suffix(".json"), {"format": 1})
    for load in (safe_load, load_model):
        with pytest.raises(CheckpointError, match="refused.*arbitrary code"):
            load(path)
    assert not marker.exists()


def test_payload_must_be_a_dict_and_metadata_must_exist(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="expected a dict"):
        safe_load(tmp_path / "list.pt")
    torch.save({"model": {}}, tmp_path / "alone.pt")
    with pytest.raises(CheckpointError, match="no metadata file alone.json"):
        load_model(tmp_path / "alone.pt")


def test_save_and_load_round_trip_without_training(tmp_path):
    torch.manual_seed(0)
    model = create_model("compact_cnn", num_classes=3).eval()
    classes = ("a", "b", "c")
    meta = checkpoint_meta(model_name="compact_cnn", classes=classes, config={"epochs": 1},
                           epoch=1, metrics={})
    save_checkpoint(tmp_path / "m.pt", {"model": model.state_dict()}, meta)
    loaded, got = load_model(tmp_path / "m.pt")
    x = torch.rand(4, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert got["classes"] == list(classes) and not loaded.training


def test_best_checkpoint_reproduces_the_reported_metrics(fer_run, trained):  # noqa: F811
    model, meta = load_model(trained.best_checkpoint)
    for split in ("val", "test"):
        again = ev.evaluate(model, store.load_set(fer_run, split), batch_size=64)
        assert again == trained.metrics[split]


def test_best_json_describes_the_model(trained):  # noqa: F811
    meta = store.read_json(trained.best_checkpoint.with_suffix(".json"))
    assert meta["model"] == "compact_cnn" and meta["epoch"] == trained.best_epoch
    assert meta["classes"] == ["angry", "happy", "neutral", "surprise"]
    pre = meta["preprocessing"]
    assert pre["image_size"] == [96, 96] and pre["scale"] == 255
    assert set(pre["normalization"]) >= {"mean", "std"}
    assert meta["config"]["epochs"] == LEARN_CONFIG["epochs"]
    assert meta["metrics"]["test"]["accuracy"] == trained.metrics["test"]["accuracy"]
    assert meta["code_version"] == code_version()
    assert re.fullmatch(r"[0-9a-f]{64}", meta["code_version"]["source_sha256"])
    assert meta["code_version"]["fer_core"]


def test_last_checkpoint_holds_everything_to_resume(trained):  # noqa: F811
    last = safe_load(trained.out_dir / "checkpoints" / "last.pt")
    assert {"model", "optimizer", "scheduler", "epoch", "config", "classes"} <= set(last)
    assert last["epoch"] == LEARN_CONFIG["epochs"] == trained.last_epoch
    assert last["classes"] == ["angry", "happy", "neutral", "surprise"]
    assert last["optimizer"]["state"]  # AdamW moments, not an empty shell
    model, meta = load_model(trained.out_dir / "checkpoints" / "last.pt")
    assert meta["epoch"] == trained.last_epoch


def test_checkpoint_loads_as_starting_weights(trained, tmp_path):  # noqa: F811
    copy = tmp_path / "start.pt"
    shutil.copy(trained.best_checkpoint, copy)
    model = create_model("compact_cnn", num_classes=4)
    load_weights(model, copy)
    best, _ = load_model(trained.best_checkpoint)
    for k, v in best.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
