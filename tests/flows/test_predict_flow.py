"""`fer predict` and `fer export` end to end through the CLI and the Prefect flow."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from fer_core import checkpoint, store
from fer_core.models import create_model
from flows.cli import build_parser, main

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


def test_predict_folder_through_the_flow(prefect_backend, astronaut, tmp_path, capsys):
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
