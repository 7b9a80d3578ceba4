"""Prediction with the real MTCNN on real faces. With scikit-image's astronaut and a seeded,
untrained classifier: plumbing (faces found, rows, columns, probabilities, levelled crops,
threads, shrunk photos). With the shipped model and FER2013 test faces planted in photos at
a known place (fer_core.datasets.planted): prediction scores as the model scores the same
faces as FER2013 holds them, resized by OpenCV alone. The face inputs themselves are checked
against a hand-made oracle in test_faces.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core import store
from fer_core.datasets import planted
from fer_core.infer import video
from fer_core.infer.faces import crop_square, detect_faces, face_crop, face_proba
from fer_core.infer.predict import (
    LANDMARK_COLUMNS,
    load_predictor,
    predict_images,
    result_columns,
)
from fer_core.models.weights import DEFAULT_CHECKPOINT
from fer_core.prepare import align
from fer_core.prepare.ingest import CLASS_MAPS
from tests.conftest import extract_fer2013_subset, in_ci
from tests.fer_core.infer.conftest import CFG, CLASSES, tilt


@pytest.fixture(scope="module")
def astronaut_rows(predictor, astronaut):
    return predict_images([astronaut], predictor, CFG)


def group_photo(head: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Three copies of the astronaut's head at different scales and tilts on a grey canvas."""
    canvas = np.full((320, 720, 3), 128, np.uint8)
    centres = []
    for x, (scale, degrees) in zip((20, 270, 500), ((1.0, 0), (0.8, 15), (0.6, -12)),
                                   strict=True):
        face = cv2.resize(tilt(head, degrees), None, fx=scale, fy=scale,
                          interpolation=cv2.INTER_AREA)
        h, w = face.shape[:2]
        canvas[20:20 + h, x:x + w] = face
        centres.append((x + w // 2, 20 + h // 2))
    return canvas, centres


def test_astronaut_one_face_around_her_head(astronaut_rows):
    rows = astronaut_rows
    assert list(rows.columns) == result_columns(CLASSES)
    assert len(rows) == 1
    r = rows.iloc[0]
    assert r["status"] == "ok" and r["face"] == 0 and r["face_prob"] > 0.95
    # Her face lies within x 170-280, y 50-180 of the 512x512 picture.
    assert 160 < r["x1"] < r["x2"] < 290 and 40 < r["y1"] < r["y2"] < 190
    eyes = r[["left_eye_x", "right_eye_x"]].to_numpy(float)
    assert (r["x1"] < eyes).all() and (eyes < r["x2"]).all()
    probs = r[[f"p_{c}" for c in CLASSES]].to_numpy(float)
    assert probs.sum() == pytest.approx(1, abs=1e-5)
    assert r["class"] == CLASSES[int(probs.argmax())]


def test_crop_square_margin_and_shift():
    # A box 80 wide, 100 high: the square's side follows the longer side (height).
    assert crop_square((100, 100, 180, 200), 0.2) == (80, 90, 120)
    # 0.95 x 100 = 95 px, centred on (140, 150) moved up by 0.015 x 100 = 1.5 px.
    assert crop_square((100, 100, 180, 200), -0.05, -0.015) == (92, 101, 95)
    assert crop_square((100, 100, 180, 200), 0.0, 0.1) == (90, 110, 100)


def test_group_photo_three_faces(predictor, head):
    canvas, centres = group_photo(head)
    rows = predict_images([canvas], predictor, CFG)
    assert (rows["status"] == "ok").sum() == 3, rows[["x1", "y1", "x2", "y2", "face_prob"]]
    assert sorted(rows["face"]) == [0, 1, 2]
    found = sorted(((r.x1 + r.x2) / 2, (r.y1 + r.y2) / 2) for r in rows.itertuples())
    for (fx, fy), (cx, cy) in zip(found, centres, strict=True):
        assert abs(fx - cx) < 60 and abs(fy - cy) < 80
    widths = [r.x2 - r.x1 for r in rows.sort_values("x1").itertuples()]
    assert widths[0] > widths[1] > widths[2], "three scales, three box sizes"
    sums = rows[[f"p_{c}" for c in CLASSES]].sum(axis=1)
    np.testing.assert_allclose(sums, 1, atol=1e-5)


def test_rotated_face_is_levelled_in_its_crop(predictor, head):
    tilted = cv2.copyMakeBorder(tilt(head, 20), 30, 30, 30, 30, cv2.BORDER_REPLICATE)
    (faces,) = detect_faces([tilted], predictor.detector)
    assert len(faces) == 1
    angle = align.eye_angle(*faces.landmarks[0][:2])
    assert abs(angle) > 12, "the face really is tilted"
    spec = predictor.spec.model_copy(update={"input_size": 96})
    crop, pts, levelled = face_crop(tilted, faces.boxes[0], faces.landmarks[0], spec)
    assert levelled and crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    assert abs(align.eye_angle(pts[0], pts[1])) < 0.5  # carried through the rotation
    assert (pts > 0).all() and (pts < 96).all()
    # MTCNN, asked again on the 96x96 crop, sees level eyes (within its ~1.5 degree jitter).
    (again,) = detect_faces([crop], predictor.detector)
    assert len(again) == 1
    assert abs(align.eye_angle(*again.landmarks[0][:2])) < 3.0


def test_detection_on_two_threads_matches_one(predictor, head):
    images = [cv2.resize(tilt(head, a), (115, 130)) for a in (-10, 0, 10, 5)]
    one = detect_faces(images, predictor.detector, batch_size=4)
    two = detect_faces(images, predictor.detector, batch_size=4, workers=2)
    assert [len(f) for f in one] == [len(f) for f in two] == [1, 1, 1, 1]
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-2)


def test_no_face_rows(predictor):
    noise = np.random.default_rng(0).integers(0, 256, (200, 240, 3), dtype=np.uint8)
    flat = np.full((120, 160, 3), 200, np.uint8)
    rows = predict_images([noise, flat], predictor, CFG)
    assert rows["status"].tolist() == ["no_face", "no_face"]
    assert rows["image"].tolist() == [0, 1]
    assert rows["face"].isna().all() and rows["p_happy"].isna().all()
    assert (rows["class"] == "").all()


def test_large_photos_can_be_shrunk_for_detection(predictor, astronaut, astronaut_rows):
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    (shrunk,) = detect_faces([big], predictor.detector, max_side=512)
    full = astronaut_rows[["x1", "y1", "x2", "y2"]].to_numpy(float)[0]
    np.testing.assert_allclose(shrunk.boxes[0], 2 * full, atol=8)


# ---------------------------------------------------------------- a trained model, real faces
# Prediction must see a face as the model saw its training faces: FER2013 test faces planted
# in larger photos at a known place (fer_core.datasets.planted) and run through the
# prediction path score (almost) as the model scores the same faces as FER2013 holds them.

FER_FOLDERS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FER_PER_CLASS = 50  # 350 faces


def _shipped_model() -> Path:
    """The shipped model (fer_core/models/weights), or a skip; in CI a missing one fails."""
    if not DEFAULT_CHECKPOINT.is_file():
        msg = f"no shipped model at {DEFAULT_CHECKPOINT}"
        if in_ci():
            pytest.fail(f"{msg}; CI is set, so this fails instead of skipping", pytrace=False)
        pytest.skip(msg)
    return DEFAULT_CHECKPOINT


@pytest.fixture(scope="module")
def trained_predictor():
    return load_predictor(_shipped_model(), CFG)


@pytest.fixture(scope="module")
def fer_test_faces(tmp_path_factory) -> tuple[Path, list[str]]:
    root = extract_fer2013_subset(tmp_path_factory.mktemp("fer_test") / "fer2013",
                                  per_class={f"test/{c}": FER_PER_CLASS for c in FER_FOLDERS})
    return root, sorted(p.relative_to(root).as_posix() for p in root.glob("test/*/*.jpg"))


def test_planted_faces_score_as_the_faces_themselves(trained_predictor, fer_test_faces,
                                                     tmp_path):
    root, paths = fer_test_faces
    model, classes = trained_predictor.model, trained_predictor.classes
    spec = trained_predictor.spec
    size = spec.input_size
    truth = np.array([classes.index(CLASS_MAPS["fer2013"][p.split("/")[1]]) for p in paths])
    faces = store.read_images(root, paths)

    # The oracle: the model on each 48x48 face as FER2013 holds it, resized by OpenCV.
    own = face_proba(model, np.stack([
        cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA if f.shape[0] >= size
                   else cv2.INTER_CUBIC) for f in faces]), spec).argmax(1)

    # Prediction's view: each face in a JPEG photo, through what `fer predict` runs per batch.
    backs, rng = planted.backgrounds(), np.random.default_rng(0)
    files, frames = [], []
    for i, face in enumerate(faces):
        photo, frame = planted.plant_face(face, backs, rng)
        files.append(str(tmp_path / f"{i:03d}.jpg"))
        store.write_image(files[-1], photo)
        frames.append(frame)
    rows = video.score_files(files, trained_predictor, CFG)
    ok = rows[rows["status"] == "ok"]
    predicted = np.full(len(paths), -1)
    found: dict[int, tuple] = {}
    for i, (f, frame) in enumerate(zip(files, frames, strict=True)):
        mine = ok[ok["file"] == f]
        k = planted.planted_face(mine[["x1", "y1", "x2", "y2"]].to_numpy(float), frame)
        if k is not None:
            r = mine.iloc[k]
            predicted[i] = classes.index(r["class"])
            found[i] = (r[["x1", "y1", "x2", "y2"]].to_numpy(float),
                        r[list(LANDMARK_COLUMNS)].to_numpy(float).reshape(5, 2))
    hit = predicted >= 0
    assert hit.mean() >= 0.85, f"faces found in {hit.mean():.0%} of the photos"
    acc_own = (own[hit] == truth[hit]).mean()
    acc_predict = (predicted[hit] == truth[hit]).mean()
    agreement = (predicted[hit] == own[hit]).mean()
    assert acc_own > 0.5, f"{acc_own:.1%}: not a trained model"
    assert acc_own - acc_predict <= 0.03, (acc_own, acc_predict)
    # With the shipped model: 313 of the 350 faces found, 62.3% of them right as FER2013
    # holds them, 60.4% from the photos (1.9 points), the same class for 76.4% of faces.
    # Agreement stays near 80% (also over all of FER2013's test faces through the training
    # preparation, bench/predict_vs_evaluate.py) because FER2013's own framing varies (its
    # frame is 0.83-1.03x MTCNN's box, quartiles: bench/predict_framing.py), which no crop
    # computed from the box can follow.
    assert agreement >= 0.70, agreement

    # The check has teeth: the same detections cropped twice as wide as FER2013 frames its
    # faces agree far less with the model's view of the faces themselves (21.7%).
    wide_spec = spec.model_copy(update={"margin": 1.0})
    wide = np.array([face_proba(model, face_crop(store.read_input_image(files[i]), *found[i],
                                                  wide_spec)[0][None], spec)[0].argmax()
                     for i in sorted(found)])
    assert (wide == own[hit]).mean() < agreement - 0.05


def test_the_predict_path_imports_only_what_it_uses():
    """`fer predict` on a photo pays for torch, OpenCV and MTCNN, as a bare script does, not
    for scoring's scikit-learn (and its scipy) or the reports' matplotlib, nor Prefect."""
    import json
    import subprocess
    import sys

    script = ("import json, sys\nimport fer_cli.main\n"
              "from fer_core.infer.batch import predict_paths\n"
              "from fer_core.infer.predict import predict_config\n"
              "print(json.dumps(sorted(m for m in ('sklearn', 'scipy', 'matplotlib', 'prefect',"
              " 'skimage') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []
