"""What both shipped models' card tests share: a list of FER2013 images prepared with
fer_core's own steps (MTCNN landmarks, eye alignment where the model's face spec aligns,
resize at its input size) and the model's probabilities on them, its TTA included."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_core import store
from fer_core.evaluate import score as evaluate
from fer_core.models import checkpoint
from fer_core.models.spec import face_spec
from fer_core.prepare import align, resize


def probabilities(shipped: Path, root: Path, paths: list[str], cfg: align.AlignConfig
                  ) -> tuple[np.ndarray, dict]:
    """(probabilities of ``paths`` under ``root``, the checkpoint's JSON), 256 images at a
    time so that all of PrivateTest never sits in memory decoded."""
    model, meta = checkpoint.load_model(shipped)
    spec = face_spec(meta)
    detector = align.load_detector(cfg)
    faces = []
    for start in range(0, len(paths), 256):
        images = store.read_images(root, paths[start:start + 256])
        found = align.detect_landmarks(images, detector, cfg)
        if not spec.align:
            found["aligned"] = False
        faces.append(resize.resize_batch(images, found, resize.ResizeConfig(
            size=spec.input_size, border=spec.border)))
    proba = evaluate.predict_proba(model, np.concatenate(faces), tta=spec.tta)
    return proba, meta
