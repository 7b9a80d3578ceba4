"""The face pipeline every door shares (fer_core.infer.faces), against a hand-made oracle
(tests/fer_core/infer/_oracle.py: the spec applied step by step with OpenCV, then torch)."""

from __future__ import annotations

import io
import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_core import store
from fer_core.infer.faces import detect_faces, face_crop, photo_inputs
from fer_core.infer.predict import PredictConfig, load_predictor, predict_images
from fer_core.models.spec import FaceSpec
from fer_core.models.weights import DEFAULT_CHECKPOINT
from tests.fer_core.infer import _oracle


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(DEFAULT_CHECKPOINT, PredictConfig(device="cpu"))


@pytest.fixture(scope="module")
def tilted(astronaut):
    """The astronaut turned by 14 degrees: alignment has something to level."""
    h, w = astronaut.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 14, 1.0)
    return cv2.warpAffine(astronaut, turn, (w, h), borderMode=cv2.BORDER_REFLECT)


def test_inputs_and_probabilities_are_the_oracles(predictor, tilted):
    spec = _oracle.spec_of(DEFAULT_CHECKPOINT)
    assert spec["tta"] == "tencrop" and spec["align"]  # the shipped model's stated spec
    faces, inputs, levelled = photo_inputs([tilted], predictor.detector, predictor.spec)
    (found,) = faces
    assert len(found) == 1 and levelled == [True]
    expected = _oracle.face_input(tilted, found.boxes[0], found.landmarks[0], spec)
    assert np.abs(inputs[0].astype(int) - expected).max() <= 1  # rounding of the warp only
    rows = predict_images([tilted], predictor, PredictConfig(device="cpu"))
    got = rows.filter(like="p_").to_numpy()[0]
    want = _oracle.probabilities(predictor.model, expected[None], spec)[0]
    np.testing.assert_allclose(got, want, atol=2e-3)  # a grey level of input difference
    np.testing.assert_allclose(got, _oracle.probabilities(predictor.model, inputs, spec)[0],
                               atol=1e-5)


def test_a_no_align_model_is_fed_unrotated_faces(predictor, tilted):
    spec = predictor.spec.model_copy(update={"align": False})
    faces, inputs, levelled = photo_inputs([tilted], predictor.detector, spec)
    assert levelled == [False]
    oracle_spec = {**_oracle.spec_of(DEFAULT_CHECKPOINT), "align": False}
    unrotated = _oracle.face_input(tilted, faces[0].boxes[0], faces[0].landmarks[0], oracle_spec)
    np.testing.assert_array_equal(inputs[0], unrotated)
    rotated = _oracle.face_input(tilted, faces[0].boxes[0], faces[0].landmarks[0],
                                 {**oracle_spec, "align": True})
    assert np.abs(inputs[0].astype(int) - rotated).mean() > 5  # 14 degrees apart


def test_implausible_landmarks_leave_the_face_unrotated(astronaut):
    box = np.array([180.0, 60.0, 270.0, 175.0])
    # Eyes one above the other: an eye line at 73 degrees, as preparation distrusts.
    points = np.array([[215, 85], [230, 135], [222, 125], [205, 150], [240, 150]], float)
    checked = FaceSpec(landmark_checks=True)
    unchecked = FaceSpec(landmark_checks=False)
    out, _, levelled = face_crop(astronaut, box, points, checked)
    assert not levelled
    spec = checked.model_dump()
    np.testing.assert_array_equal(out, _oracle.face_input(astronaut, box, points, spec,
                                                          level=False))
    out2, _, levelled2 = face_crop(astronaut, box, points, unchecked)
    assert levelled2 and np.abs(out2.astype(int) - out).mean() > 5


def test_a_photo_with_an_exif_rotation_gets_its_upright_twins_answer(predictor, astronaut,
                                                                     tmp_path):
    # Stored turned a quarter counter-clockwise, tagged 6 ("turn clockwise to show"), as a
    # phone held sideways writes it; PNG keeps the pixels exact.
    img = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut, 1)))
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif.tobytes())
    (tmp_path / "sideways.png").write_bytes(buf.getvalue())
    cv2.imwrite(str(tmp_path / "upright.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    sideways = store.read_input_image(str(tmp_path / "sideways.png"))
    upright = store.read_input_image(str(tmp_path / "upright.png"))
    np.testing.assert_array_equal(sideways, upright)
    cfg = PredictConfig(device="cpu")
    a, b = (predict_images([x], predictor, cfg) for x in (sideways, upright))
    assert a.loc[0, "class"] == b.loc[0, "class"] == "Happiness"
    np.testing.assert_allclose(a.filter(like="p_").to_numpy(), b.filter(like="p_").to_numpy(),
                               atol=1e-6)


def test_checkpoints_without_a_spec_get_the_one_they_were_measured_with(tmp_path):
    """A checkpoint from before the spec (the model shipped until 2026-12-03 was one): aligned,
    no landmark checks, the measured framing (-0.07, -0.015), its preprocessing's size and
    grey, and the TTA of its training config (hflip_tta; crop_tta did not exist)."""
    shutil.copy(DEFAULT_CHECKPOINT, tmp_path / "old.pt")
    meta = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    meta.pop("face_spec")
    meta["config"].pop("crop_tta", None)
    (tmp_path / "old.json").write_text(json.dumps(meta))
    old = load_predictor(tmp_path / "old.pt", PredictConfig(device="cpu")).spec
    assert (old.align, old.landmark_checks, old.margin, old.shift) == (True, False, -0.07, -0.015)
    assert (old.input_size, old.grayscale, old.tta) == (96, True, "hflip")


def test_detection_agrees_with_bare_mtcnn(predictor, tilted):
    (found,) = detect_faces([tilted], predictor.detector)
    boxes, _, points = _oracle.mtcnn().detect(tilted, landmarks=True)
    np.testing.assert_allclose(found.boxes, np.asarray(boxes, float), atol=1e-3)
    np.testing.assert_allclose(found.landmarks, np.asarray(points, float), atol=1e-3)
