"""Prediction on new photos: find every face (MTCNN), prepare it as in training, classify.

Training images are face crops (FER2013's 48x48 faces) that preparation aligns and resizes
with ``resize.preprocess_image``. A new photo may hold several faces anywhere, so each face
is first cut out as a square around its MTCNN box (``PredictConfig.margin`` and ``shift``,
measured so that the square frames the face as FER2013's crops do), giving a face crop like
a training image; that crop then goes through the very same
``resize.preprocess_image`` (rotation about the eyes' midpoint with replicated borders,
then ``resize_image`` to the model's input size). Crop-then-align, rather than rotating
the whole photo for every face, keeps the per-face cost to a small image and reproduces
the training geometry exactly, corner wedges included.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import torch
from torch import nn

from fer_core.evaluate import score as evaluate
from fer_core.models import checkpoint
from fer_core.prepare import align, resize
from fer_core.runtime.device import resolve_device

POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # MTCNN's order
BOX = ("x1", "y1", "x2", "y2")
LANDMARK_COLUMNS = tuple(f"{p}_{a}" for p in POINTS for a in "xy")
OK, NO_FACE, ERROR = "ok", "no_face", "error"


@dataclass(frozen=True, kw_only=True)
class PredictConfig:
    # The crop that frames a face as FER2013's 48x48 crops do (what the classifier learnt
    # from): a square of (1 + margin) x the MTCNN box's longer side (its height: MTCNN's
    # boxes are 0.76 as wide as high), centred shift x that side below the box's centre.
    # Measured by bench/predict_vs_evaluate.py --framing 300 on 2,100 FER2013 train faces
    # upscaled to 120-160 px and planted in photos, their surroundings continued past the
    # 48x48 frame (1,931 detected): the frame's side is 0.927 x the box's longer side
    # (median; quartiles 0.831 and 1.028), and its centre lies 0.015 x that side above the
    # box's centre (quartiles -0.042 and +0.018; sideways +0.004). FER2013's framing itself
    # varies that much, so no crop from the box matches every face's frame.
    # With the shipped model on all 7,178 FER2013 test faces planted so (6,533 found):
    # prediction 65.05% against 66.25% for the same faces through the training preparation
    # (1.19 points; the same class for 80.2% of faces). With faces pasted as squares (a
    # seam at the frame's edge, which makes MTCNN's box snap to it: frame 0.948 x box),
    # margin -0.05 gave 63.72% against 66.28% (2.55 points) and the old margin 0.2 56.62%
    # (9.66 points; bench/results/predict_vs_evaluate_seam.json).
    margin: float = -0.07
    shift: float = -0.015
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
    detect_batch_size: int = 32  # images per MTCNN call (equal sizes only)
    # MTCNN is many small tensor operations: one torch thread per worker avoids OpenMP's
    # per-operation barriers (with 2 torch threads on a busy 2-core machine detection ran
    # 3-4x slower), and two workers still use both cores on batches of images.
    detect_workers: int = 2  # threads running MTCNN batches
    batch_size: int = 64  # faces per classifier call
    files_per_batch: int = 64  # image files per Prefect task
    every: int = 1  # in videos, classify every Nth frame
    border: str = "replicate"  # as ResizeConfig.border, which training used
    device: str = "auto"
    torch_threads: int = 1  # set process-wide by load_predictor; 0 = leave torch's setting

    def align_config(self, device: str) -> align.AlignConfig:
        return align.AlignConfig(min_face_size=self.min_face_size, thresholds=self.thresholds,
                                 device=device, batch_size=self.detect_batch_size)


@dataclass(frozen=True, kw_only=True)
class Faces:
    """All faces MTCNN found in one image, largest first."""

    boxes: np.ndarray  # (k, 4) x1, y1, x2, y2 in image pixels (may overhang the edges)
    probs: np.ndarray  # (k,)
    landmarks: np.ndarray  # (k, 5, 2) in POINTS order

    def __len__(self) -> int:
        return len(self.probs)


NONE = Faces(boxes=np.zeros((0, 4)), probs=np.zeros(0), landmarks=np.zeros((0, 5, 2)))


@dataclass(frozen=True, kw_only=True)
class Predictor:
    """A loaded classifier and detector, ready for ``predict_images``."""

    model: nn.Module
    classes: tuple[str, ...]
    input_size: int
    detector: object
    device: torch.device
    meta: dict


def load_predictor(checkpoint_path: str | os.PathLike, cfg: PredictConfig) -> Predictor:
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    model, meta = checkpoint.load_model(checkpoint_path)
    device = resolve_device(cfg.device)
    size = int(meta["preprocessing"]["image_size"][0])
    return Predictor(model=model.to(device), classes=tuple(meta["classes"]), input_size=size,
                     detector=align.load_detector(cfg.align_config(device.type)),
                     device=device, meta=meta)


# ---------------------------------------------------------------- detection


def detect_faces(images: list[np.ndarray], detector, *, batch_size: int = 32,
                 max_side: int = 0, workers: int = 1) -> list[Faces]:
    """Every face in each RGB image; images of one size go to MTCNN together (its batch
    mode needs equal sizes), at most ``batch_size`` at a time, on ``workers`` threads."""
    scales = [_detect_scale(img, max_side) for img in images]
    small = [img if s == 1 else cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
             for img, s in zip(images, scales, strict=True)]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(small):
        groups.setdefault(img.shape, []).append(i)
    jobs = []
    for idx in groups.values():
        size = min(batch_size, -(-len(idx) // workers))  # every worker gets a share
        jobs += [idx[s:s + size] for s in range(0, len(idx), size)]

    def run(part: list[int]):
        return part, detector.detect(np.stack([small[i] for i in part]), landmarks=True)

    found = [NONE] * len(images)
    with ThreadPoolExecutor(workers) as pool:
        # MTCNN is many small tensor operations; they release the GIL, so threads with
        # one torch thread each use the cores without OpenMP's per-operation barriers.
        results = map(run, jobs) if workers == 1 else pool.map(run, jobs)
        for part, (boxes, probs, points) in results:
            for i, b, p, pts in zip(part, boxes, probs, points, strict=True):
                if b is not None and len(b):
                    s = scales[i]
                    found[i] = Faces(boxes=np.asarray(b, float) / s,
                                     probs=np.asarray(p, float),
                                     landmarks=np.asarray(pts, float).reshape(-1, 5, 2) / s)
    return found


def _detect_scale(image: np.ndarray, max_side: int) -> float:
    side = max(image.shape[:2])
    return max_side / side if 0 < max_side < side else 1.0


# ---------------------------------------------------------------- one face


def crop_square(box, margin: float, shift: float = 0.0) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop around ``box``: side (1 + margin) x the box's
    longer side, centred on the box's centre moved down by ``shift`` x that side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    longer = max(x2 - x1, y2 - y1)
    side = max(int(round(longer * (1 + margin))), 2)
    return (int(round((x1 + x2 - side) / 2)),
            int(round((y1 + y2 - side) / 2 + shift * longer)), side)


def cut(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """image[y0:y0+side, x0:x0+side], replicating edge pixels where it leaves the image
    (as the alignment's borders do)."""
    h, w = image.shape[:2]
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y0 + side - h), max(0, x0 + side - w)
    inner = image[max(0, y0):min(h, y0 + side), max(0, x0):min(w, x0 + side)]
    if top or left or bottom or right:
        inner = cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return inner


def face_crop(image: np.ndarray, box, landmarks, *, size: int,
              margin: float = PredictConfig.margin, shift: float = PredictConfig.shift,
              border: str = "replicate") -> tuple[np.ndarray, np.ndarray]:
    """The face as the model's input (uint8, size x size) and its 5 landmarks in that crop.

    The crop goes through ``resize.preprocess_image``: the training path itself.
    """
    x0, y0, side = crop_square(box, margin, shift)
    crop = cut(image, x0, y0, side)
    pts = np.asarray(landmarks, float).reshape(5, 2) - (x0, y0)
    row = {"aligned": True, "left_eye_x": pts[0, 0], "left_eye_y": pts[0, 1],
           "right_eye_x": pts[1, 0], "right_eye_y": pts[1, 1]}
    out = resize.preprocess_image(crop, row, resize.ResizeConfig(size=size, border=border))
    # Where the landmarks land: the alignment's rotation, then the resize's scale.
    moved = cv2.transform(pts[None], align.rotation_matrix(pts[0], pts[1]))[0]
    return out, moved * (size / side)


# ---------------------------------------------------------------- many images


def predict_images(images: list[np.ndarray], predictor: Predictor,
                   cfg: PredictConfig) -> pd.DataFrame:
    """One row per face (``image`` = index into ``images``), or one ``no_face`` row."""
    faces = detect_faces(images, predictor.detector, batch_size=cfg.detect_batch_size,
                         max_side=cfg.detect_max_side, workers=cfg.detect_workers)
    crops = [face_crop(img, f.boxes[k], f.landmarks[k], size=predictor.input_size,
                       margin=cfg.margin, shift=cfg.shift, border=cfg.border)[0]
             for img, f in zip(images, faces, strict=True) for k in range(len(f))]
    n = len(predictor.classes)
    proba = (evaluate.predict_proba(predictor.model, np.stack(crops), device=predictor.device,
                                    batch_size=cfg.batch_size)
             if crops else np.zeros((0, n), np.float32))
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
