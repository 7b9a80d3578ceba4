"""Prediction on new photos: a loaded predictor (model, detector, the checkpoint's face
spec), every face of a batch of images classified (``predict_images``, through the face
pipeline of fer_core.infer.faces), and the result rows every door writes or returns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from fer_core import UsageError
from fer_core.config.ingest import MAX_PIXELS
from fer_core.infer.faces import Faces, face_proba, photo_inputs
from fer_core.models import checkpoint
from fer_core.models.spec import FaceSpec, face_spec
from fer_core.prepare import align
from fer_core.runtime.device import resolve_device

POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # MTCNN's order
BOX = ("x1", "y1", "x2", "y2")
LANDMARK_COLUMNS = tuple(f"{p}_{a}" for p in POINTS for a in "xy")
OK, NO_FACE, ERROR = "ok", "no_face", "error"


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    # The face spec's framing, alignment border (fer_core.models.spec), overridden for
    # experiments (bench/predict_vs_evaluate.py); None, the default of every door: the
    # checkpoint's own spec, which its card was measured with.
    margin: float | None = None
    shift: float | None = None
    border: str | None = None
    # Pixels, in the image as detected (see detect_max_side). 40, not preparation's 20:
    # the classifier learnt from 48 px faces, smaller ones carry little expression, and
    # MTCNN's image pyramid (hence its time) grows quickly below 40 px.
    min_face_size: int = 40
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # MTCNN's P/R/O-Net
    # Photos larger than this (longer side) are shrunk for detection only, which is faster
    # because min_face_size then counts in the shrunk image: a face must be at least
    # min_face_size x side / detect_max_side pixels. Boxes are mapped back and faces are
    # cut from the full-resolution image. 0 = never shrink.
    detect_max_side: int = 0
    # Read from the file's header before a pixel is decoded (fer_core.store.header): a photo
    # past max_pixels is refused (a 390 KB PNG can hold 400 megapixels); one past
    # reduce_above is decoded at 1/2, 1/4 or 1/8 of its size, which still leaves a face of
    # 40 px in a 12-megapixel frame at 20 px or more.
    max_pixels: int = MAX_PIXELS  # ingest's limit too (ingest.max_pixels)
    reduce_above: int = 24_000_000
    detect_batch_size: int = 32  # images per MTCNN call (equal sizes only)
    # MTCNN is many small tensor operations: one torch thread per worker avoids OpenMP's
    # per-operation barriers (with 2 torch threads on a busy 2-core machine detection ran
    # 3-4x slower), and two workers still use both cores on batches of images.
    detect_workers: int = 2  # threads running MTCNN batches
    batch_size: int = 64  # faces per classifier call
    files_per_batch: int = 64  # image files per Prefect task
    every: int = 1  # in videos, classify every Nth frame
    device: str = "auto"
    torch_threads: int = 1  # set process-wide by load_predictor; 0 = leave torch's setting

    def overrides(self) -> dict:
        return {k: v for k in ("margin", "shift", "border")
                if (v := getattr(self, k)) is not None}

    def align_config(self, device: str) -> align.AlignConfig:
        return align.AlignConfig(min_face_size=self.min_face_size, thresholds=self.thresholds,
                                 device=device, batch_size=self.detect_batch_size)


def predict_config(**options) -> PredictConfig:
    """A PredictConfig of the options a door was given; None (every door's default) leaves
    PredictConfig's default, or the checkpoint's face spec for margin, shift and border."""
    given = {k: v for k, v in options.items() if v is not None}
    small = [k for k in ("every", "batch_size", "files_per_batch", "detect_workers")
             if given.get(k, 1) < 1]
    if small or given.get("torch_threads", 0) < 0:
        raise UsageError("every, batch_size, files_per_batch and detect_workers must be at "
                         f"least 1, threads at least 0 (got {given})")
    return PredictConfig(**given)


@dataclass(frozen=True, kw_only=True)
class Predictor:
    """A loaded classifier and detector, ready for ``predict_images``."""

    model: nn.Module
    classes: tuple[str, ...]
    detector: object
    device: torch.device
    meta: dict
    spec: FaceSpec  # the checkpoint's, with PredictConfig's overrides


def load_predictor(checkpoint_path: str | os.PathLike, cfg: PredictConfig) -> Predictor:
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    model, meta = checkpoint.load_model(checkpoint_path)
    device = resolve_device(cfg.device)
    spec = face_spec(meta).model_copy(update=cfg.overrides())
    return Predictor(model=model.to(device), classes=tuple(meta["classes"]),
                     detector=align.load_detector(cfg.align_config(device.type)),
                     device=device, meta=meta, spec=spec)


# ---------------------------------------------------------------- many images


def predict_images(images: list[np.ndarray], predictor: Predictor,
                   cfg: PredictConfig) -> pd.DataFrame:
    """One row per face (``image`` = index into ``images``), or one ``no_face`` row."""
    faces, inputs, _ = photo_inputs(images, predictor.detector, predictor.spec,
                                    batch_size=cfg.detect_batch_size,
                                    max_side=cfg.detect_max_side, workers=cfg.detect_workers)
    proba = (face_proba(predictor.model, inputs, predictor.spec, device=predictor.device,
                        batch_size=cfg.batch_size)
             if len(inputs) else np.zeros((0, len(predictor.classes)), np.float32))
    return face_rows(faces, proba, predictor.classes)


def face_rows(faces: list[Faces], proba: np.ndarray, classes: tuple[str, ...]) -> pd.DataFrame:
    rows, k = [], 0
    for i, f in enumerate(faces):
        if not len(f):
            rows.append({"image": i, "status": NO_FACE})
            continue
        for j in range(len(f)):
            p = proba[k]
            k += 1
            rows.append({"image": i, "status": OK, "face": j,
                         **dict(zip(BOX, f.boxes[j].tolist(), strict=True)),
                         "face_prob": float(f.probs[j]),
                         **dict(zip(LANDMARK_COLUMNS, f.landmarks[j].ravel().tolist(),
                                    strict=True)),
                         "class": classes[int(p.argmax())],
                         **{f"p_{c}": float(v) for c, v in zip(classes, p, strict=True)}})
    return result_frame(rows, classes)


def result_columns(classes: tuple[str, ...]) -> list[str]:
    return ["file", "frame", "time_s", "image", "status", "reason", "face", *BOX, "face_prob",
            *LANDMARK_COLUMNS, "class", *(f"p_{c}" for c in classes)]


STRINGS, INTEGERS = ("file", "status", "reason", "class"), ("frame", "face", "image")


def result_frame(rows: list[dict], classes: tuple[str, ...]) -> pd.DataFrame:
    """Rows in the result's column order and types (missing values: empty / NaN / NA).

    Built column by column: a frame of dicts plus per-column ``astype`` cost 25 ms per
    call, a sixth of a photo's whole prediction.
    """
    data = {}
    for col in result_columns(classes):
        values = [r.get(col) for r in rows]
        if col in STRINGS:
            data[col] = pd.array(["" if v is None else str(v) for v in values], dtype="str")
        elif col in INTEGERS:
            data[col] = pd.array(values, dtype="Int64")
        else:
            data[col] = np.array([np.nan if v is None else v for v in values], dtype=float)
    return pd.DataFrame(data)


def error_row(reason: str) -> dict:
    return {"status": ERROR, "reason": reason}
