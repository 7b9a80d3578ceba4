"""The face spec a checkpoint carries: written by training from the run's preparation, read
by every door; a --no-align model is fed unrotated faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from fer_core.infer.faces import photo_inputs
from fer_core.infer.predict import PredictConfig, load_predictor
from fer_core.models import checkpoint
from fer_core.models.registry import create_model, model_spec
from fer_core.models.spec import FaceSpec, face_spec
from tests.fer_core.infer import _oracle

CLASSES = ("Anger", "Happiness", "Neutral")


def saved(tmp_path, *, prepared: dict | None, hflip_tta: bool, crop_tta: bool = False) -> str:
    torch.manual_seed(0)
    model = create_model("compact_cnn", num_classes=len(CLASSES))
    meta = checkpoint.checkpoint_meta(model_name="compact_cnn", classes=CLASSES,
                                      config={"hflip_tta": hflip_tta, "crop_tta": crop_tta},
                                      epoch=1, metrics={},
                                      prepared=prepared)
    path = tmp_path / "best.pt"
    checkpoint.save_checkpoint(path, {"model": checkpoint.cpu_state(model)}, meta)
    return str(path)


def test_training_writes_what_its_faces_went_through(tmp_path):
    prepared = {"align": {"enabled": False}, "resize": {"border": "constant", "size": 96}}
    meta = checkpoint.load_checkpoint(saved(tmp_path, prepared=prepared, hflip_tta=True))[1]
    spec = face_spec(meta)
    assert (spec.align, spec.border, spec.tta, spec.landmark_checks) == (False, "constant",
                                                                         "hflip", True)
    entry = model_spec("compact_cnn")  # the registry entry: input size and normalisation
    assert (spec.input_size, spec.mean, spec.std) == (entry.input_size, entry.mean, entry.std)
    default = face_spec(checkpoint.load_checkpoint(saved(tmp_path, prepared=None,
                                                         hflip_tta=False))[1])
    assert default.align and default.tta == "none"
    tencrop = face_spec(checkpoint.load_checkpoint(saved(tmp_path, prepared=None, hflip_tta=True,
                                                         crop_tta=True))[1])
    assert tencrop.tta == "tencrop"  # every door reads the crops from here


def test_a_no_align_model_is_fed_unrotated_faces(tmp_path, astronaut):
    path = saved(tmp_path, prepared={"align": {"enabled": False}}, hflip_tta=False)
    predictor = load_predictor(path, PredictConfig(device="cpu"))
    h, w = astronaut.shape[:2]
    tilted = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((w / 2, h / 2), 14, 1.0), (w, h),
                            borderMode=cv2.BORDER_REFLECT)
    faces, inputs, levelled = photo_inputs([tilted], predictor.detector, predictor.spec)
    assert levelled == [False]
    spec = {**predictor.spec.model_dump(), "align": False}
    np.testing.assert_array_equal(
        inputs[0], _oracle.face_input(tilted, faces[0].boxes[0], faces[0].landmarks[0], spec))


def test_the_spec_refuses_unknown_keys_and_is_frozen():
    with pytest.raises(ValidationError, match="margn"):
        FaceSpec(margn=0.1)
    with pytest.raises(ValidationError):
        FaceSpec().align = False
