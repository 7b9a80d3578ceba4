"""The ONNX predictor: an exported model on ONNX Runtime (extra ``onnx``), on face inputs
or on photos.

On photos it runs the face pipeline of every other door (fer_core.infer.faces) with the face
spec the export's metadata records, and the graph itself carries the spec's TTA, so its
classes and probabilities are ``fer predict``'s (tested within 1e-4).
"""

from __future__ import annotations

import os

import numpy as np

from fer_core import UsageError, store
from fer_core.infer.faces import Faces, photo_inputs
from fer_core.models.export import INPUT, OUTPUT, meta_path
from fer_core.models.spec import FaceSpec, face_spec
from fer_core.prepare.resize import normalize


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
                 providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 spec: FaceSpec | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("ONNX Runtime is not installed: pip install "
                              "'fer-pipeline[onnx]' (onnx, onnxruntime)") from None
        self.session = ort.InferenceSession(model_bytes, providers=list(providers))
        self.classes = tuple(classes)
        self.spec = spec

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> OnnxPredictor:
        try:
            meta = store.read_json(meta_path(path))
        except FileNotFoundError:  # a bare .onnx file still predicts; it has no class names
            meta = {}
        spec = face_spec(meta) if meta else None
        return cls(store.read_bytes(path), tuple(meta.get("classes", ())), spec=spec, **kwargs)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for float32 NCHW input in [0, 1]."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, np.float32)})[0]

    def predict_proba(self, images_uint8_nhwc: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Probabilities (N, C) for uint8 RGB images, as ``evaluate.predict_proba``."""
        parts = [softmax(self.logits(to_input(images_uint8_nhwc[s:s + batch_size])))
                 for s in range(0, len(images_uint8_nhwc), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def predict_photos(self, images: list[np.ndarray], detector, *, batch_size: int = 32,
                       max_side: int = 0, workers: int = 1
                       ) -> tuple[list[Faces], np.ndarray]:
        """Every face of each RGB photo (MTCNN ``detector``) and its probabilities (N, C),
        faces in image order then largest first, through the export's face spec."""
        if self.spec is None:
            raise UsageError("this ONNX file has no metadata beside it (<file>.json): its "
                             "face spec, hence how to cut faces from a photo, is unknown")
        faces, inputs, _ = photo_inputs(images, detector, self.spec, batch_size=batch_size,
                                        max_side=max_side, workers=workers)
        n = len(self.classes)
        return faces, (self.predict_proba(inputs) if len(inputs) else np.zeros((0, n), np.float32))
