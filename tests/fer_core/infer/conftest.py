"""Shared by the prediction tests: a seeded, untrained classifier with the real MTCNN, the
astronaut's head (a real photographic face) and a way to tilt it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from fer_core.infer.predict import PredictConfig, load_predictor
from fer_core.models import checkpoint
from fer_core.models.registry import create_model

CLASSES = ("angry", "happy", "neutral", "surprise")
CFG = PredictConfig(device="cpu")


def make_checkpoint(path, name: str = "compact_cnn", classes=CLASSES, seed: int = 0):
    torch.manual_seed(seed)
    model = create_model(name, num_classes=len(classes))
    meta = checkpoint.checkpoint_meta(model_name=name, classes=classes, config={}, epoch=0,
                                      metrics={})
    checkpoint.save_checkpoint(path, {"model": checkpoint.cpu_state(model)}, meta)
    return path


def tilt(img: np.ndarray, degrees: float, scale: float = 1.0) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale)
    return cv2.warpAffine(img, m, (int(w * scale), int(h * scale)),
                          borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return load_predictor(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt"), CFG)


@pytest.fixture(scope="module")
def head(astronaut):
    return astronaut[0:260, 110:340]
