"""Model export: ONNX (for ONNX Runtime) and TorchScript, and a predictor on the ONNX file.

Exported graphs keep the checkpoint's contract: input ``input``, float32 NCHW RGB in
[0, 1] (uint8 / 255) at the model's input size, any batch size; output ``logits``. The
mean/std normalisation is inside the model, so it is inside the graph too, and so is the
face spec's TTA: with ``hflip`` the graph averages the logits of each face and its mirror,
with ``tencrop`` those of its five crops and their mirrors, as ``fer evaluate`` and ``fer
predict`` do. A JSON file beside the export (``<out>.json``)
records the classes, the preprocessing and the face spec (``face_spec``), which the ONNX
predictor (fer_core.infer.onnx) follows on photos.

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

import torch
import torch.nn.functional as F
from torch import nn

from fer_core import UsageError, store
from fer_core.models import checkpoint
from fer_core.models.registry import to_grey
from fer_core.models.spec import face_spec
from fer_core.models.tta import tta_logits, zoomed_size

FORMATS = ("onnx", "torchscript")
INPUT, OUTPUT = "input", "logits"


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    format: Literal["onnx", "torchscript"] = "onnx"
    opset: int = 17
    dynamo: bool = False  # torch's newer exporter (needs onnxscript)
    example_batch: int = 2  # traced with 2 so that no size-1 batch gets baked in
    random_state: int = 0  # the example input's pixels


def resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, size_in): torch's antialiased bilinear resize along one axis, as a matrix.

    It is separable, so ``A @ x @ A.T`` resizes an image as ``F.interpolate(...,
    antialias=True)`` does (to float rounding); ONNX has no antialiased resize."""
    # Each unit vector as a column, two pixels wide (torch treats width 1 otherwise).
    basis = torch.eye(size_in).view(size_in, 1, size_in, 1).expand(-1, -1, -1, 2)
    cols = F.interpolate(basis.contiguous(), size=(size_out, 2), mode="bilinear",
                         antialias=True, align_corners=False)[..., 0]
    return cols.reshape(size_in, size_out).T.contiguous()


class ExportGraph(nn.Module):
    """A registry model (``models.registry.Normalized``) as exported: its grey conversion,
    resize to the working size (as matrices), normalisation and backbone, and the face
    spec's TTA folded in (``models.tta``: the mean of the logits of its views)."""

    def __init__(self, model: nn.Module, *, input_size: int, tta: str):
        super().__init__()
        self.model, self.tta, self.work = model.eval(), tta, model.work_size
        self.register_buffer("matrix", resize_matrix(input_size, self.work))
        self.register_buffer("zoom_matrix", resize_matrix(input_size, zoomed_size(self.work)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of a whole face (input size) or of a crop (working size)."""
        m = self.model
        if x.shape[-1] != self.work:  # static at export: the graph holds one branch
            x = self.matrix @ x @ self.matrix.T
        x = (x - m.mean) / m.std
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return m.backbone(x).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.model.grayscale:
            x = to_grey(x)
        return tta_logits(self.logits, x, self.tta, work_size=self.work,
                          zoom=lambda v: self.zoom_matrix @ v @ self.zoom_matrix.T)


def example_input(input_size: int, cfg: ExportConfig) -> torch.Tensor:
    gen = torch.Generator().manual_seed(cfg.random_state)
    return torch.rand(cfg.example_batch, 3, input_size, input_size, generator=gen)


def to_onnx(model: nn.Module, input_size: int, cfg: ExportConfig) -> bytes:
    """The ONNX bytes of ``model`` with a dynamic batch axis."""
    if cfg.opset < 17:
        raise UsageError(f"opset {cfg.opset}: 17 or newer is needed")
    x = example_input(input_size, cfg)
    model = model.cpu().eval()
    if cfg.dynamo:
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise UsageError("the dynamo ONNX exporter needs onnxscript: "
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
        raise UsageError(f"unknown format {cfg.format!r}; choose one of {', '.join(FORMATS)}")
    model, meta = checkpoint.load_model(checkpoint_path)
    spec = face_spec(meta)
    size = spec.input_size
    make = to_onnx if cfg.format == "onnx" else to_torchscript
    graph = ExportGraph(model, input_size=size, tta=spec.tta)
    ref = store.write_bytes(out, make(graph, size, cfg))
    info = {"format": cfg.format, "path": str(out), "sha256": ref.sha256,
            "opset": cfg.opset if cfg.format == "onnx" else None,
            "input": {"name": INPUT, "shape": ["batch", 3, size, size], "dtype": "float32"},
            "output": {"name": OUTPUT, "shape": ["batch", len(meta["classes"])]},
            "classes": meta["classes"], "model": meta["model"],
            "preprocessing": meta["preprocessing"],
            "face_spec": spec.model_dump(mode="json"), "tta_in_graph": spec.tta,
            "checkpoint": {"path": str(checkpoint_path),
                           "sha256": store.file_sha256(checkpoint_path)}}
    store.write_json(meta_path(out), info)
    return info


def meta_path(out: str | os.PathLike) -> Path:
    return Path(f"{out}.json")


def load_torchscript(path: str | os.PathLike) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(io.BytesIO(store.read_bytes(path)), map_location="cpu")
