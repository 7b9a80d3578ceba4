"""Prediction with the real MTCNN on real faces. With scikit-image's astronaut and a seeded,
untrained classifier: plumbing (faces found, rows, columns, probabilities, the training
code path). With a trained model and FER2013 test faces planted in photos: prediction
scores as the training preparation does on the same faces."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from fer_core import store
from fer_core.evaluate import score as evaluate
from fer_core.infer import video
from fer_core.infer.predict import (
    LANDMARK_COLUMNS,
    PredictConfig,
    crop_square,
    cut,
    detect_faces,
    face_crop,
    load_predictor,
    predict_images,
    result_columns,
)
from fer_core.models import checkpoint
from fer_core.models.registry import create_model
from fer_core.models.weights import DEFAULT_CHECKPOINT
from fer_core.prepare import align, resize
from fer_core.prepare.ingest import CLASS_MAPS
from tests.conftest import extract_fer2013_subset, in_ci

CLASSES = ("angry", "happy", "neutral", "surprise")
CFG = PredictConfig(device="cpu")


def make_checkpoint(path, name: str = "compact_cnn", classes=CLASSES, seed: int = 0):
    torch.manual_seed(seed)
    model = create_model(name, num_classes=len(classes))
    meta = checkpoint.checkpoint_meta(model_name=name, classes=classes, config={}, epoch=0,
                                      metrics={})
    checkpoint.save_checkpoint(path, {"model": checkpoint.cpu_state(model)}, meta)
    return path


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return load_predictor(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt"), CFG)


@pytest.fixture(scope="module")
def astronaut_rows(predictor, astronaut):
    return predict_images([astronaut], predictor, CFG)


@pytest.fixture(scope="module")
def head(astronaut):
    return astronaut[0:260, 110:340]


def tilt(img: np.ndarray, degrees: float, scale: float = 1.0) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale)
    return cv2.warpAffine(img, m, (int(w * scale), int(h * scale)),
                          borderMode=cv2.BORDER_REPLICATE)


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


def test_faces_take_the_training_path(predictor, astronaut, astronaut_rows):
    """The classified pixels are exactly resize.preprocess_image of the face's crop."""
    r = astronaut_rows.iloc[0]
    x0, y0, side = crop_square(r[["x1", "y1", "x2", "y2"]], CFG.margin, CFG.shift)
    crop = cut(astronaut, x0, y0, side)
    row = {"aligned": True, "left_eye_x": r["left_eye_x"] - x0, "left_eye_y": r["left_eye_y"] - y0,
           "right_eye_x": r["right_eye_x"] - x0, "right_eye_y": r["right_eye_y"] - y0}
    face = resize.preprocess_image(crop, row, resize.ResizeConfig(size=96))
    expected = evaluate.predict_proba(predictor.model, face[None])[0]
    got = r[[f"p_{c}" for c in CLASSES]].to_numpy(float)
    np.testing.assert_allclose(got, expected, atol=1e-6)


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
    crop, pts = face_crop(tilted, faces.boxes[0], faces.landmarks[0], size=96)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
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


def write_clip(path, head: np.ndarray, n: int = 20, fps: float = 10.0) -> None:
    """The astronaut's head moving right and tilting, n frames of 240x320, MJPG in AVI."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    assert writer.isOpened()
    small = cv2.resize(head, (150, 170), interpolation=cv2.INTER_AREA)
    for i in range(n):
        frame = np.full((240, 320, 3), 90, np.uint8)
        face = tilt(small, 10 * math.sin(i / 3))
        x = 30 + 6 * i
        frame[35:205, x:x + 150] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_files_video_timeline_errors_and_annotations(predictor, astronaut, head, tmp_path):
    data = tmp_path / "in"
    store.write_image(data / "astronaut.jpg", astronaut)
    store.write_image(data / "blank.png", np.full((100, 100, 3), 30, np.uint8))
    store.write_bytes(data / "broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    store.write_bytes(data / "sub" / "garbage.png", b"PNG? no")
    write_clip(data / "sub" / "clip.avi", head)
    store.write_bytes(data / "bad.avi", b"RIFF....AVI not a video")
    files = store.list_inputs([data])
    assert len(files) == 6
    cfg = PredictConfig(device="cpu", every=5, detect_batch_size=3)  # 4 frames: 2 batches
    rows = video.score_files(files, predictor, cfg, annotate_dir=tmp_path / "ann")
    by_file = {Path(f).relative_to(data).as_posix(): part for f, part in rows.groupby("file")}
    assert set(by_file) == {"astronaut.jpg", "blank.png", "broken.jpg", "sub/garbage.png",
                            "sub/clip.avi", "bad.avi"}
    assert by_file["astronaut.jpg"]["status"].tolist() == ["ok"]
    assert by_file["blank.png"]["status"].tolist() == ["no_face"]
    for name, reason in (("broken.jpg", "truncated JPEG"), ("sub/garbage.png", "cannot be"),
                         ("bad.avi", "video")):
        (err,) = by_file[name].itertuples()
        assert err.status == "error" and reason in err.reason, (name, err.reason)
    clip = by_file["sub/clip.avi"]
    assert clip["frame"].tolist() == [0, 5, 10, 15]
    assert (clip["status"] == "ok").all()
    np.testing.assert_allclose(clip["time_s"], clip["frame"].astype(float) / 10.0)
    assert clip["x1"].is_monotonic_increasing, "the face moves right"
    # Annotated copies: same size, boxes drawn.
    ann = store.read_input_image(str(tmp_path / "ann" / "astronaut.jpg"))
    assert ann.shape == astronaut.shape and np.abs(ann.astype(int) - astronaut).max() > 100
    assert (tmp_path / "ann" / "sub" / "clip.avi" / "frame_000015.jpg").is_file()
    # Results and the video's timeline.
    written = video.write_results(tmp_path / "out" / "res.csv", rows, CLASSES)
    table = pd.read_csv(written["results"], keep_default_na=False)
    assert "image" not in table.columns and len(table) == len(rows)
    assert table["file"].iloc[0] == str(data / "astronaut.jpg"), "files as given, in order"
    assert table.loc[0, "frame"] == ""
    line = pd.read_csv(written["timeline:sub/clip.avi"])
    assert line["frame"].tolist() == [0, 5, 10, 15]
    assert list(line.columns[:5]) == ["frame", "time_s", "face", "status", "class"]
    assert (tmp_path / "out" / "res_timelines" / "sub" / "clip.avi.png").stat().st_size > 5000
    as_json = video.write_results(tmp_path / "out" / "res.json", rows, CLASSES)
    records = store.read_json(as_json["results"])
    assert len(records) == len(rows) and records[0]["frame"] is None
    assert set(LANDMARK_COLUMNS) <= set(records[0])


def test_large_photos_can_be_shrunk_for_detection(predictor, astronaut, astronaut_rows):
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    (shrunk,) = detect_faces([big], predictor.detector, max_side=512)
    full = astronaut_rows[["x1", "y1", "x2", "y2"]].to_numpy(float)[0]
    np.testing.assert_allclose(shrunk.boxes[0], 2 * full, atol=8)


# ---------------------------------------------------------------- a trained model, real faces
# Prediction must see a face as training saw it: FER2013 test faces planted in larger photos
# and run through the prediction path score (almost) as the same faces through the training
# preparation (MTCNN landmarks on the 48x48 face, alignment, resize: `fer prepare`'s path).

FER_FOLDERS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FER_PER_CLASS = 50  # 350 faces


def _shipped_model() -> Path:
    """The shipped model (fer_core/weights), or a skip; in CI a missing one fails."""
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


def in_a_photo(face: np.ndarray, other: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int]]:
    """``face`` enlarged to 120-160 px at a random place in a photo 2-3 times its size, and
    the face's frame (x0, y0, side) in it. Past its frame the face's surroundings go on (the
    face reflected at its edges), fading over a third of its side into a background: a
    random part of the ``other`` face enlarged to twice the photo's size, blurred."""
    side = int(rng.integers(120, 161))
    h, w = (int(side * rng.uniform(2.0, 3.0)) for _ in range(2))
    back = cv2.resize(other, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
    dy, dx = int(rng.integers(h + 1)), int(rng.integers(w + 1))
    back = cv2.GaussianBlur(back[dy:dy + h, dx:dx + w], (0, 0), 9)
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    pad = side // 3
    big = cv2.copyMakeBorder(cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC),
                             pad, pad, pad, pad, cv2.BORDER_REFLECT_101).astype(np.float32)
    ramp = np.clip((np.arange(side + 2 * pad) + 0.5) / pad, 0, 1)
    alpha = np.minimum.outer(np.minimum(ramp, ramp[::-1]), np.minimum(ramp, ramp[::-1]))
    photo = cv2.copyMakeBorder(back, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    photo = photo.astype(np.float32)
    region = photo[y0:y0 + side + 2 * pad, x0:x0 + side + 2 * pad]
    region[:] = alpha[..., None] * big + (1 - alpha[..., None]) * region
    photo = np.clip(photo[pad:pad + h, pad:pad + w] + 0.5, 0, 255).astype(np.uint8)
    return photo, (x0, y0, side)


def test_photos_score_as_the_training_preparation(trained_predictor, fer_test_faces, tmp_path):
    root, paths = fer_test_faces
    classes = trained_predictor.classes
    truth = np.array([classes.index(CLASS_MAPS["fer2013"][p.split("/")[1]]) for p in paths])
    faces = store.read_images(root, paths)

    # Training's view: `fer prepare`'s alignment (MTCNN on the 48x48 face) and resize.
    detector = align.load_detector(align.AlignConfig(device="cpu"))
    found = align.detect_landmarks(faces, detector)
    prepared = resize.resize_batch(faces, found, resize.ResizeConfig(
        size=trained_predictor.input_size))
    trained = evaluate.predict_proba(trained_predictor.model, prepared).argmax(1)

    # Prediction's view: each face in a JPEG photo, through what `fer predict` runs per batch.
    rng = np.random.default_rng(0)
    files, frames = [], []
    for i, face in enumerate(faces):
        photo, frame = in_a_photo(face, faces[(i + 7 * FER_PER_CLASS // 2) % len(faces)], rng)
        files.append(str(tmp_path / f"{i:03d}.jpg"))
        store.write_image(files[-1], photo)
        frames.append(frame)
    rows = video.score_files(files, trained_predictor, CFG)
    ok = rows[rows["status"] == "ok"]
    predicted = np.full(len(paths), -1)
    boxes: dict[int, tuple] = {}
    for i, (f, (x0, y0, side)) in enumerate(zip(files, frames, strict=True)):
        mine = ok[ok["file"] == f]
        cx, cy = (mine["x1"] + mine["x2"]) / 2, (mine["y1"] + mine["y2"]) / 2
        inside = mine[cx.between(x0, x0 + side) & cy.between(y0, y0 + side)]
        if len(inside):
            r = inside.iloc[0]
            predicted[i] = classes.index(r["class"])
            boxes[i] = (r[["x1", "y1", "x2", "y2"]].to_numpy(float),
                        r[list(LANDMARK_COLUMNS)].to_numpy(float).reshape(5, 2))
    hit = predicted >= 0
    assert hit.mean() >= 0.85, f"faces found in {hit.mean():.0%} of the photos"
    acc_train = (trained[hit] == truth[hit]).mean()
    acc_predict = (predicted[hit] == truth[hit]).mean()
    agreement = (predicted[hit] == trained[hit]).mean()
    assert acc_train > 0.5, f"{acc_train:.1%}: not a trained model"
    assert acc_train - acc_predict <= 0.03, (acc_train, acc_predict)
    # With the shipped model: 311 of the 350 faces found, 62.4% as training prepares them,
    # 60.8% from the photos (1.6 points), the same class for 77.2% of faces. Agreement stays
    # near 80% (also over all of FER2013's test faces, bench/predict_vs_evaluate.py) because
    # FER2013's own framing varies (its frame is 0.83-1.03x MTCNN's box, quartiles), which
    # no crop computed from the box can follow; cut exactly on the planted 48x48 frame, the
    # two views agree on about 90%.
    assert agreement >= 0.70, agreement

    # The check has teeth: the same detections cropped twice as wide as training framed
    # them agree less with training's view (26%).
    wide = np.array([evaluate.predict_proba(trained_predictor.model, face_crop(
        store.read_input_image(files[i]), *boxes[i], size=trained_predictor.input_size,
        margin=1.0)[0][None])[0].argmax() for i in sorted(boxes)])
    assert (wide == trained[hit]).mean() < agreement - 0.05
