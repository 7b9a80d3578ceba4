"""Shipping a FER+ model: bench/ship_model.py --model ferplus on a tiny FER+ training recorded
as bench/train_ferplus.py records one (tests/flows/_ferplus_model.py). The card's figures are
the result JSON's (and its majority twin's) and the shipped model's own accuracy on its test
faces; the checkpoint's JSON lists FER+'s 8 classes; ``--model ferplus`` names the shipped
file, and before there is one it fails in one line saying how to make it."""

from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
import torch

from bench import ship_model
from fer_cli.main import main
from fer_core import store
from fer_core.models import checkpoint, reference
from fer_core.models.spec import face_spec
from tests.flows._ferplus_model import tiny_ferplus  # noqa: F401 - a shared fixture

# FER+'s vote columns but unknown and NF (not a face), as the preset names its classes.
FERPLUS_CLASSES = {"Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear",
                   "Contempt"}


@pytest.fixture(scope="module")
def shipped(tiny_ferplus, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("shipped")
    assert ship_model.main([str(tiny_ferplus.result), "--model", "ferplus", "--weights-dir",
                            str(out / "weights"), "--card", str(out / "card.md")]) == 0
    return out


def _row(card: str, label: str) -> tuple[int, int, float, float]:
    """(faces scored, faces left out, accuracy %, macro-F1) of the card's results row."""
    row = re.search(rf"^\| {re.escape(label)} \| `\w+` \| ([\d,]+) \| ([\d,]+) \| "
                    r"([\d.]+)% \| ([\d.]+) \|$", card, re.M)
    assert row, f"no results row {label!r} in the card"
    n, left, acc, f1 = row.groups()
    return int(n.replace(",", "")), int(left.replace(",", "")), float(acc), float(f1)


def test_the_cards_figures_are_the_result_jsons(tiny_ferplus, shipped):  # noqa: F811
    card = (shipped / "card.md").read_text()
    result = store.read_json(tiny_ferplus.result)
    twin = store.read_json(tiny_ferplus.result.with_name("train_ferplus_majority_smoke.json"))
    for label, r, split in (("`test` (PrivateTest)", result, "test"),
                            ("`test` (PrivateTest), majority twin", twin, "test"),
                            ("`val` (PublicTest, used for selection)", result, "val")):
        s = r["scores"][split]
        n, left, acc, f1 = _row(card, label)
        assert n == s["n"] and left == sum(r["excluded"][split].values())
        # rounded to the card's digits (half a unit of the last, and float's own error)
        assert acc == pytest.approx(100 * s["accuracy"], abs=0.00501)
        assert f1 == pytest.approx(s["macro_f1"], abs=5.01e-5)
    for c, f1 in result["scores"]["test"]["per_class_f1"].items():
        twin_f1 = twin["scores"]["test"]["per_class_f1"][c]
        assert re.search(rf"^\| {c} \| {result['support']['test'][c]:,} \| {f1:.3f} \| "
                         rf"{twin_f1:.3f} \|$", card, re.M), c
    assert f"{result['train']['wall_seconds'] / 60:.1f} minutes of training" in card
    assert "smoke run on a subset" in card  # a subset says so
    # Commands as recorded (relative to the repo where they are in it), never the folder
    # the card was written to.
    assert result["prepare_command"] in card and result["train_command"] in card
    assert result["config_file"] == "bench/configs/ferplus.yaml" and "`bench/configs/" in card
    assert "`fer_core/models/weights/ferplus_vgg_faces.pt`" in card and str(shipped) not in card
    assert re.search(r"^- Contempt and \w+ are rare \(", card, re.M)
    for limit in ("grey, 48x48", "crowd votes", "no majority"):
        assert limit in card, limit

    # The card's accuracy is the shipped model's: its predictions (with its mirror TTA) on
    # the run's test faces against their majority labels, computed here.
    model, meta = checkpoint.load_model(shipped / "weights" / "ferplus_vgg_faces.pt")
    test = store.load_set(tiny_ferplus.run, "test")
    with torch.inference_mode():
        x = torch.from_numpy(test.images).permute(0, 3, 1, 2).float() / 255
        logits = model(x)
        tta = face_spec(meta).tta
        assert tta in ("none", "hflip")  # the oracle's views
        if tta == "hflip":
            logits = (logits + model(x.flip(3))) / 2
    accuracy = float(np.mean(logits.argmax(1).numpy() == test.targets))
    assert _row(card, "`test` (PrivateTest)")[2] == pytest.approx(100 * accuracy, abs=0.00501)


def test_the_shipped_checkpoint_states_ferplus_classes(shipped):
    meta = json.loads((shipped / "weights" / "ferplus_vgg_faces.json").read_text())
    assert len(meta["classes"]) == 8 and set(meta["classes"]) == FERPLUS_CLASSES
    assert meta["metrics"]["test"]["labels"] == "majority"
    assert meta["trained_by"].startswith("fer train ")


def test_model_ferplus_names_the_shipped_file(tiny_ferplus, shipped, monkeypatch,  # noqa: F811
                                              tmp_path):
    weights = shipped / "weights"
    monkeypatch.setattr(reference, "WEIGHTS_DIR", weights)
    assert reference.resolve_model("ferplus") == weights / "ferplus_vgg_faces.pt"
    assert "ferplus" in reference.shipped_names()
    # and a door takes the name: fer export writes that model (its 8 classes)
    assert main(["export", "--model", "ferplus", "--format", "onnx",
                 "--out", str(tmp_path / "m.onnx")]) == 0
    exported = json.loads((tmp_path / "m.onnx.json").read_text())
    assert len(exported["classes"]) == 8

    # Not shipped yet: one line, exit 2, saying how to make it; the default is untouched.
    monkeypatch.setattr(reference, "WEIGHTS_DIR", tmp_path)
    photo = tmp_path / "x.png"
    photo.write_bytes(b"")
    for argv in (["predict", str(photo), "--model", "ferplus"],
                 ["export", "--model", "ferplus", "--format", "onnx", "--out", "m.onnx"],
                 ["serve", "--model", "ferplus"],
                 ["evaluate", str(tiny_ferplus.run), "--model", "ferplus"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(argv) == 2, argv
        line = err.getvalue().strip()
        assert "\n" not in line and "Traceback" not in line
        assert "not shipped yet" in line and "bench/train_ferplus.py" in line
        assert "bench/ship_model.py" in line


def test_a_result_of_another_benchmark_is_refused(tmp_path):
    other = tmp_path / "train_cpu_30min.json"
    other.write_text(json.dumps({"run": {"command": "fer train RUN"}, "run_dir": "RUN"}))
    with pytest.raises(SystemExit, match="train_cpu_30min.json: not a result of "
                                         "bench/train_ferplus.py"):
        ship_model.main([str(other), "--model", "ferplus", "--weights-dir", str(tmp_path)])
    assert not (tmp_path / "ferplus_vgg_faces.pt").exists()
