"""Model export: ONNX (for ONNX Runtime) and TorchScript, and a predictor on the ONNX file.

Exported graphs keep the checkpoint's contract: input ``input``, float32 NCHW RGB in
[0, 1] (uint8 / 255) at the model's input size, any batch size; output ``logits``. The
mean/std normalisation is inside the model, so it is inside the graph too. A JSON file
beside the export (``<out>.json``) records the classes and the preprocessing.

ONNX uses torch's TorchScript-based exporter by default (``dynamo=False``): it needs only
the ``onnx`` package and takes about a second; torch >= 2.9's default dynamo exporter
additionally needs ``onnxscript`` and takes 10-15 s on 2 CPU cores for the same graph.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from fer_core import store
from fer_core.models import checkpoint
from fer_core.prepare.resize import normalize

FORMATS = ("onnx", "torchscript")
INPUT, OUTPUT = "input", "logits"


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    format: Literal["onnx", "torchscript"] = "onnx"
    opset: int = 17
    dynamo: bool = False  # torch's newer exporter (needs onnxscript)
    example_batch: int = 2  # traced with 2 so that no size-1 batch gets baked in
    random_state: int = 0  # the example input's pixels


def example_input(input_size: int, cfg: ExportConfig) -> torch.Tensor:
    gen = torch.Generator().manual_seed(cfg.random_state)
    return torch.rand(cfg.example_batch, 3, input_size, input_size, generator=gen)


def to_onnx(model: nn.Module, input_size: int, cfg: ExportConfig) -> bytes:
    """The ONNX bytes of ``model`` with a dynamic batch axis."""
    if cfg.opset < 17:
        raise ValueError(f"opset {cfg.opset}: 17 or newer is needed")
    x = example_input(input_size, cfg)
    model = model.cpu().eval()
    if cfg.dynamo:
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise ValueError("the dynamo ONNX exporter needs onnxscript: "
                             "pip install onnxscript (or export without --dynamo)") from None
        program = torch.onnx.export(model, (x,), dynamo=True, opset_version=cfg.opset,
                                    input_names=[INPUT], output_names=[OUTPUT],
                                    dynamic_shapes=({0: torch.export.Dim("batch")},))
        return program.model_proto.SerializeToString()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter warns that it is legacy; it is chosen on purpose (see above).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=cfg.opset,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    return buf.getvalue()


def to_torchscript(model: nn.Module, input_size: int, cfg: ExportConfig) -> bytes:
    """A traced TorchScript module (the models have no data-dependent control flow)."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # torch 2.14 marks TorchScript deprecated; it is still what many servers load.
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model.cpu().eval(), example_input(input_size, cfg))
        torch.jit.save(traced, buf)
    return buf.getvalue()


def export_checkpoint(checkpoint_path: str | os.PathLike, out: str | os.PathLike,
                      cfg: ExportConfig) -> dict:
    """Export a saved checkpoint to ``out`` (and ``out.json``); returns that metadata."""
    if cfg.format not in FORMATS:
        raise ValueError(f"unknown format {cfg.format!r}; choose one of {', '.join(FORMATS)}")
    model, meta = checkpoint.load_model(checkpoint_path)
    size = int(meta["preprocessing"]["image_size"][0])
    make = to_onnx if cfg.format == "onnx" else to_torchscript
    ref = store.write_bytes(out, make(model, size, cfg))
    info = {"format": cfg.format, "path": str(out), "sha256": ref.sha256,
            "opset": cfg.opset if cfg.format == "onnx" else None,
            "input": {"name": INPUT, "shape": ["batch", 3, size, size], "dtype": "float32"},
            "output": {"name": OUTPUT, "shape": ["batch", len(meta["classes"])]},
            "classes": meta["classes"], "model": meta["model"],
            "preprocessing": meta["preprocessing"],
            "checkpoint": {"path": str(checkpoint_path),
                           "sha256": store.file_sha256(checkpoint_path)}}
    store.write_json(meta_path(out), info)
    return info


def meta_path(out: str | os.PathLike) -> Path:
    return Path(f"{out}.json")


def to_input(images_uint8_nhwc: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW in [0, 1], as ``evaluate.to_input``."""
    if images_uint8_nhwc.dtype != np.uint8 or images_uint8_nhwc.ndim != 4:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images_uint8_nhwc.dtype} "
                         f"{images_uint8_nhwc.shape}")
    return np.ascontiguousarray(normalize(images_uint8_nhwc.transpose(0, 3, 1, 2)))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class OnnxPredictor:
    """Class probabilities from an exported ONNX file with ONNX Runtime (extra ``onnx``)."""

    def __init__(self, model_bytes: bytes, classes: tuple[str, ...] = (),
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("ONNX Runtime is not installed: pip install "
                              "'fer-pipeline[onnx]' (onnx, onnxruntime)") from None
        self.session = ort.InferenceSession(model_bytes, providers=list(providers))
        self.classes = tuple(classes)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> OnnxPredictor:
        try:
            meta = store.read_json(meta_path(path))
        except FileNotFoundError:  # a bare .onnx file still predicts; it has no class names
            meta = {}
        return cls(store.read_bytes(path), tuple(meta.get("classes", ())), **kwargs)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for float32 NCHW input in [0, 1]."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, np.float32)})[0]

    def predict_proba(self, images_uint8_nhwc: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Probabilities (N, C) for uint8 RGB images, as ``evaluate.predict_proba``."""
        parts = [softmax(self.logits(to_input(images_uint8_nhwc[s:s + batch_size])))
                 for s in range(0, len(images_uint8_nhwc), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def load_torchscript(path: str | os.PathLike) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(io.BytesIO(store.read_bytes(path)), map_location="cpu")
