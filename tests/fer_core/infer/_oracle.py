"""An independent oracle for the face pipeline: a checkpoint's face spec (read from its JSON)
applied step by step with OpenCV and numpy to MTCNN's landmarks, then the model in torch.
Nothing here calls fer_core's cropping, alignment, resizing or TTA. Which landmarks a spec
with ``landmark_checks`` trusts is preparation's rule (``detect.implausible``, tested on its
own in tests/fer_core/prepare): taken as given here, as MTCNN is."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision.transforms.functional as TF
from facenet_pytorch import MTCNN

from fer_core.prepare import align, detect


def spec_of(checkpoint: Path) -> dict:
    return json.loads(Path(checkpoint).with_suffix(".json").read_text())["face_spec"]


def mtcnn(min_face_size: int = 40) -> MTCNN:
    # The detector is not under test; its published thresholds, fer predict's 40 px.
    return MTCNN(keep_all=True, min_face_size=min_face_size, thresholds=[0.6, 0.7, 0.7],
                 device="cpu", post_process=False)


def face_input(image: np.ndarray, box, points, spec: dict, *, level: bool | None = None
               ) -> np.ndarray:
    """The model's uint8 input for one face, by hand."""
    x1, y1, x2, y2 = map(float, box)
    longer = max(x2 - x1, y2 - y1)
    side = max(int(round(longer * (1 + spec["margin"]))), 2)
    x0 = int(round((x1 + x2 - side) / 2))
    y0 = int(round((y1 + y2 - side) / 2 + spec["shift"] * longer))
    pad = side + 2
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    (lx, ly), (rx, ry) = np.asarray(points, float)[:2] - (x0, y0)
    if spec["align"] if level is None else level:
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
        turn = cv2.getRotationMatrix2D(((lx + rx) / 2, (ly + ry) / 2), angle, 1.0)
        crop = cv2.warpAffine(crop, turn, (side, side), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    size = spec["input_size"]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def trusted(box, points, spec: dict) -> bool:
    """Whether the spec levels this face: always without landmark checks; with them, only
    when preparation's plausibility checks pass (a face they reject is fed unrotated)."""
    if not spec["landmark_checks"]:
        return True
    face = detect.Found(prob=1.0, points=np.asarray(points, float), box=np.asarray(box, float))
    return detect.implausible(face, align.AlignConfig()) == ""


@torch.inference_mode()
def probabilities(model: torch.nn.Module, inputs: np.ndarray, spec: dict) -> np.ndarray:
    x = torch.from_numpy(inputs).permute(0, 3, 1, 2).float() / 255.0
    views = [x]
    if spec["tta"] in ("fivecrop", "tencrop"):  # torchvision's crops of the face zoomed 10%
        w = model.work_size
        side = int(round(w * 1.1))
        views = list(TF.five_crop(TF.resize(x, [side, side], antialias=True), [w, w]))
    if spec["tta"] in ("hflip", "tencrop"):
        views += [torch.flip(v, dims=[3]) for v in views]
    logits = torch.stack([model.eval()(v) for v in views]).mean(0)
    return torch.softmax(logits, dim=1).numpy()


def predict(image: np.ndarray, model, spec: dict, detector: MTCNN) -> list[dict]:
    """Every face MTCNN finds: its box and its probabilities, in MTCNN's order."""
    boxes, _, points = detector.detect(image, landmarks=True)
    if boxes is None:
        return []
    boxes, points = np.asarray(boxes, float), np.asarray(points, float)
    inputs = np.stack([face_input(image, b, p, spec, level=spec["align"] and trusted(b, p, spec))
                       for b, p in zip(boxes, points, strict=True)])
    proba = probabilities(model, inputs, spec)
    return [{"box": b, "proba": p} for b, p in zip(boxes, proba, strict=True)]
