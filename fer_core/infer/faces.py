"""The face pipeline every door shares: a photo (or a frame) -> the model's inputs, and the
inputs -> class probabilities, both from the checkpoint's face spec (fer_core.models.spec).

``photo_inputs`` finds every face with MTCNN, checks its landmarks as preparation does,
cuts the square the spec frames, levels the eyes when the spec aligns (and the landmarks
are trusted) and resizes to the model's input; ``face_proba`` runs the model with the
spec's TTA. ``fer predict``, the ``predict`` flow, ``fer serve`` and the exported predictor
call these; ``fer evaluate`` scores prepared faces with ``face_proba``.

Crop-then-align, rather than rotating the whole photo for every face, keeps the per-face
cost to a small image and reproduces the training geometry exactly: the crop goes through
``resize.preprocess_image``, the training path itself, corner wedges included.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from fer_core.evaluate import logits as evaluate
from fer_core.models.spec import FaceSpec
from fer_core.prepare import align, detect, resize

# Preparation's thresholds for trusting landmarks (eye line, eye distance, nose position).
CHECKS = align.AlignConfig()


@dataclass(frozen=True, kw_only=True)
class Faces:
    """All faces MTCNN found in one image, largest first."""

    boxes: np.ndarray  # (k, 4) x1, y1, x2, y2 in image pixels (may overhang the edges)
    probs: np.ndarray  # (k,)
    landmarks: np.ndarray  # (k, 5, 2) in POINTS order

    def __len__(self) -> int:
        return len(self.probs)


NONE = Faces(boxes=np.zeros((0, 4)), probs=np.zeros(0), landmarks=np.zeros((0, 5, 2)))


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


def distrusted(box, landmarks, spec: FaceSpec) -> str:
    """Why the spec's checks do not trust these landmarks (empty when they do, or when the
    spec has no checks): preparation's ``detect.implausible``."""
    if not spec.landmark_checks:
        return ""
    face = detect.Found(prob=1.0, points=np.asarray(landmarks, float).reshape(5, 2),
                        box=np.asarray(box, float))
    return detect.implausible(face, CHECKS)


def face_crop(image: np.ndarray, box, landmarks, spec: FaceSpec
              ) -> tuple[np.ndarray, np.ndarray, bool]:
    """The face as the model's input (uint8 RGB, input_size square), its 5 landmarks in
    that input, and whether it was levelled."""
    x0, y0, side = crop_square(box, spec.margin, spec.shift)
    crop = cut(image, x0, y0, side)
    pts = np.asarray(landmarks, float).reshape(5, 2) - (x0, y0)
    levelled = spec.align and not distrusted(box, landmarks, spec)
    row = {"aligned": levelled, "left_eye_x": pts[0, 0], "left_eye_y": pts[0, 1],
           "right_eye_x": pts[1, 0], "right_eye_y": pts[1, 1]}
    out = resize.preprocess_image(crop, row, resize.ResizeConfig(size=spec.input_size,
                                                                 border=spec.border))
    if levelled:  # where the landmarks land: the alignment's rotation, then the resize
        pts = cv2.transform(pts[None], align.rotation_matrix(pts[0], pts[1]))[0]
    return out, pts * (spec.input_size / side), levelled


def photo_inputs(images: list[np.ndarray], detector, spec: FaceSpec, *, batch_size: int = 32,
                 max_side: int = 0, workers: int = 1
                 ) -> tuple[list[Faces], np.ndarray, list[bool]]:
    """Every face MTCNN finds in each photo, as the model's inputs from the spec.

    Returns the faces per image, their inputs (N, S, S, 3) uint8 in image order then face
    order (largest first), and whether each face was levelled."""
    faces = detect_faces(images, detector, batch_size=batch_size, max_side=max_side,
                         workers=workers)
    done = [face_crop(img, f.boxes[k], f.landmarks[k], spec)
            for img, f in zip(images, faces, strict=True) for k in range(len(f))]
    size = spec.input_size
    inputs = np.stack([d[0] for d in done]) if done else np.zeros((0, size, size, 3), np.uint8)
    return faces, inputs, [d[2] for d in done]


def face_proba(model: nn.Module, inputs: np.ndarray, spec: FaceSpec, *,
               device: torch.device | str | None = None, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C) of the model's inputs, with the spec's TTA."""
    return evaluate.predict_proba(model, inputs, device=device, batch_size=batch_size,
                                  tta=spec.tta)
