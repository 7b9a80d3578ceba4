"""Export round trips: ONNX Runtime and TorchScript give the PyTorch model's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_core import store
from fer_core.evaluate import score as evaluate
from fer_core.infer.onnx import OnnxPredictor
from fer_core.models import checkpoint
from fer_core.models.export import (
    ExportConfig,
    export_checkpoint,
    load_torchscript,
    meta_path,
    to_onnx,
)
from fer_core.models.registry import create_model
from fer_core.models.weights import DEFAULT_CHECKPOINT

CLASSES = ("angry", "happy", "neutral")


def make_checkpoint(path, name: str, config: dict | None = None):
    torch.manual_seed(0)
    model = create_model(name, num_classes=len(CLASSES))
    meta = checkpoint.checkpoint_meta(model_name=name, classes=CLASSES, config=config or {},
                                      epoch=0, metrics={})
    checkpoint.save_checkpoint(path, {"model": checkpoint.cpu_state(model)}, meta)
    return checkpoint.load_model(path)[0]


def faces(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)


@pytest.mark.parametrize(("name", "batches"), [("compact_cnn", (1, 5)), ("resnet18", (1, 2))])
def test_onnx_matches_torch(tmp_path, name, batches):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime not installed "
                        "(pip install 'fer-pipeline[onnx]'): ONNX round trip not checked")
    model = make_checkpoint(tmp_path / "best.pt", name)
    info = export_checkpoint(tmp_path / "best.pt", tmp_path / "m.onnx", ExportConfig())
    assert info["opset"] == 17 and info["classes"] == list(CLASSES)
    assert store.read_json(meta_path(tmp_path / "m.onnx"))["input"]["shape"][0] == "batch"
    onnx = OnnxPredictor.load(tmp_path / "m.onnx")
    assert onnx.classes == CLASSES
    for n in batches:  # the batch axis is dynamic (traced with 2)
        x = faces(n)
        expected = evaluate.predict_proba(model, x)
        got = onnx.predict_proba(x)
        assert got.shape == (n, len(CLASSES))
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_onnx_carries_the_ten_crop_tta(tmp_path):
    """A checkpoint trained with crop_tta: the ONNX graph averages its ten views, as `fer
    evaluate` does (a graph without them would answer differently on a real photo)."""
    pytest.importorskip("onnxruntime", reason="ONNX Runtime not installed")
    # The shipped weights: trained, so the views' logits differ (an untrained net's barely).
    model, shipped = checkpoint.load_model(DEFAULT_CHECKPOINT)
    meta = checkpoint.checkpoint_meta(model_name="vgg_faces", classes=shipped["classes"],
                                      config={"hflip_tta": True, "crop_tta": True}, epoch=0,
                                      metrics={}, grayscale=True)
    checkpoint.save_checkpoint(tmp_path / "best.pt", {"model": checkpoint.cpu_state(model)},
                               meta)
    info = export_checkpoint(tmp_path / "best.pt", tmp_path / "m.onnx", ExportConfig())
    assert info["tta_in_graph"] == "tencrop"
    x = faces(4)
    np.testing.assert_allclose(OnnxPredictor.load(tmp_path / "m.onnx").predict_proba(x),
                               evaluate.predict_proba(model, x, tta="tencrop"),
                               atol=1e-4, rtol=0)


def test_torchscript_equals_torch(tmp_path):
    model = make_checkpoint(tmp_path / "best.pt", "compact_cnn")
    export_checkpoint(tmp_path / "best.pt", tmp_path / "m.pt",
                      ExportConfig(format="torchscript"))
    scripted = load_torchscript(tmp_path / "m.pt")
    x = evaluate.to_input(torch.from_numpy(faces(3)))
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), rtol=0, atol=0)


def test_export_refuses_old_opsets_and_unknown_formats(tmp_path):
    model = create_model("compact_cnn", num_classes=3)
    with pytest.raises(ValueError, match="17"):
        to_onnx(model, 96, ExportConfig(opset=13))
    make_checkpoint(tmp_path / "best.pt", "compact_cnn")
    with pytest.raises(ValueError, match="unknown format"):
        export_checkpoint(tmp_path / "best.pt", tmp_path / "m.x", ExportConfig(format="tflite"))


def test_dynamo_exporter(tmp_path):
    pytest.importorskip("onnxscript", reason="onnxscript not installed: the dynamo ONNX "
                        "exporter (fer export --dynamo) is not checked")
    pytest.importorskip("onnxruntime", reason="ONNX Runtime not installed")
    model = make_checkpoint(tmp_path / "best.pt", "compact_cnn")
    onnx = OnnxPredictor(to_onnx(model, 96, ExportConfig(dynamo=True, opset=18)))
    x = faces(3)
    np.testing.assert_allclose(onnx.predict_proba(x), evaluate.predict_proba(model, x),
                               atol=1e-4, rtol=0)
