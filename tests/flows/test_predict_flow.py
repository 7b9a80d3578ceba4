"""`fer predict` and `fer export` end to end through the CLI (which runs fer_core in-process;
the predict flow's agreement with it is tests/flows/test_doors.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

import fer_core.models.reference
from fer_cli.main import build_parser, main
from fer_core import store
from fer_core.infer.predict import PredictConfig, load_predictor, predict_images
from fer_core.models import checkpoint
from fer_core.models.reference import shipped_path
from fer_core.models.registry import create_model
from fer_core.models.weights import DEFAULT_CHECKPOINT
from tests.conftest import in_ci

CLASSES = ("angry", "happy", "neutral", "surprise")


def make_checkpoint(path):
    torch.manual_seed(0)
    model = create_model("compact_cnn", num_classes=len(CLASSES))
    meta = checkpoint.checkpoint_meta(model_name="compact_cnn", classes=CLASSES, config={},
                                      epoch=0, metrics={})
    checkpoint.save_checkpoint(path, {"model": checkpoint.cpu_state(model)}, meta)
    return path


def write_clip(path, face: np.ndarray, n: int = 12) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8.0, (256, 200))
    for i in range(n):
        frame = np.full((200, 256, 3), 100, np.uint8)
        frame[15:15 + face.shape[0], 20 + 5 * i:20 + 5 * i + face.shape[1]] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_cli_parsers_are_registered():
    args = build_parser().parse_args(["predict", "a.jpg", "b/", "--model", "m.pt", "--every",
                                      "3", "--device", "cpu"])
    assert args.inputs == ["a.jpg", "b/"] and args.every == 3 and callable(args.func)
    args = build_parser().parse_args(["export", "--model", "m.pt", "--format", "onnx",
                                      "--out", "m.onnx"])
    assert args.format == "onnx" and args.opset == 17


def test_predict_defaults_in_the_help():
    """No --model: the shipped checkpoint; no --margin: the checkpoint's face spec (the CLI
    keeps no default of its own: tests/flows/test_doors.py)."""
    args = build_parser().parse_args(["predict", "a.jpg"])
    assert args.model is None and args.margin is None
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = " ".join(sub.choices["predict"].format_help().split())
    assert f"default: the FER2013 model, fer_core/models/weights/{DEFAULT_CHECKPOINT.name}" in text
    assert "default: the checkpoint's face spec" in text


def test_missing_shipped_model_is_a_clear_error(monkeypatch, astronaut, tmp_path, capsys):
    monkeypatch.setattr(fer_core.models.reference, "WEIGHTS_DIR", tmp_path / "weights")
    store.write_image(tmp_path / "astronaut.jpg", astronaut)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(tmp_path / "astronaut.jpg"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "model 'fer2013': the FER2013 model is not shipped yet" in err
    assert "bench/ship_model.py" in err and "--model" in err
    assert not out.exists()


def shipped_model():
    """The shipped checkpoint, or a skip; in CI a missing one fails (as require_fer2013)."""
    try:
        return shipped_path("fer2013")
    except FileNotFoundError as e:
        if in_ci():
            pytest.fail(f"{e}; CI is set, so this fails instead of skipping", pytrace=False)
        pytest.skip(str(e))


def test_predict_without_model_uses_the_shipped_one(astronaut, tmp_path):
    shipped = shipped_model()
    photo = tmp_path / "astronaut.jpg"
    store.write_image(photo, astronaut)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(photo), "--out", str(out), "--device", "cpu"]) == 0
    rows = pd.read_csv(out, keep_default_na=False)
    assert rows["status"].tolist() == ["ok"]
    # The probabilities are the shipped model's on the same decoded photo.
    cfg = PredictConfig(device="cpu")
    predictor = load_predictor(shipped, cfg)
    expected = predict_images([store.read_input_image(str(photo))], predictor, cfg)
    cols = [f"p_{c}" for c in predictor.classes]
    assert list(rows.columns[-len(cols):]) == cols
    np.testing.assert_allclose(rows[cols].to_numpy(float), expected[cols].to_numpy(float),
                               atol=1e-5)
    assert rows["class"].item() == expected["class"].item()


def test_predict_folder_through_the_cli(astronaut, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "run" / "best.pt")
    data = tmp_path / "photos"
    store.write_image(data / "astronaut.png", astronaut)
    store.write_image(data / "more" / "nothing.png", np.full((80, 80, 3), 50, np.uint8))
    store.write_bytes(data / "more" / "corrupt.jpg", b"")
    face = cv2.resize(astronaut[0:260, 110:340], (150, 170), interpolation=cv2.INTER_AREA)
    write_clip(data / "clip.avi", face)
    out = tmp_path / "out" / "pred.csv"
    code = main(["predict", str(data), "--model", str(ckpt), "--out", str(out), "--every", "4",
                 "--annotate", str(tmp_path / "ann"), "--device", "cpu"])
    assert code == 0
    assert "results:" in capsys.readouterr().out
    rows = pd.read_csv(out, keep_default_na=False)
    rows["file"] = [Path(f).relative_to(data).as_posix() for f in rows["file"]]
    status = dict(zip(rows["file"], rows["status"], strict=False))
    assert status["astronaut.png"] == "ok" and status["more/nothing.png"] == "no_face"
    assert status["more/corrupt.jpg"] == "error"
    assert "empty file" in rows.loc[rows["file"] == "more/corrupt.jpg", "reason"].item()
    clip = rows[rows["file"] == "clip.avi"]
    assert clip["frame"].astype(int).tolist() == [0, 4, 8] and (clip["status"] == "ok").all()
    probs = rows.loc[rows["status"] == "ok", [f"p_{c}" for c in CLASSES]].astype(float)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    timeline = pd.read_csv(tmp_path / "out" / "pred_timelines" / "clip.avi.csv")
    assert timeline["frame"].tolist() == [0, 4, 8]
    np.testing.assert_allclose(timeline["time_s"], [0, 0.5, 1.0])
    assert (tmp_path / "out" / "pred_timelines" / "clip.avi.png").is_file()
    assert (tmp_path / "ann" / "astronaut.png").is_file()
    assert (tmp_path / "ann" / "clip.avi" / "frame_000008.jpg").is_file()
    # A checkpoint that is not there: a clear error and exit status 2, no results file.
    missing = tmp_path / "nowhere" / "best.pt"
    assert main(["predict", str(data), "--model", str(missing), "--out",
                 str(tmp_path / "none.csv")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "none.csv").exists()


def test_export_cli(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "best.pt")
    assert main(["export", "--model", str(ckpt), "--format", "torchscript",
                 "--out", str(tmp_path / "m.ts")]) == 0
    assert store.read_json(tmp_path / "m.ts.json")["classes"] == list(CLASSES)
    assert main(["export", "--model", str(tmp_path / "missing.pt"), "--format", "onnx",
                 "--out", str(tmp_path / "m.onnx")]) == 2
    assert "error" in capsys.readouterr().err
