"""Faces planted in photos (fer_core.datasets.planted): the face lies in its frame, the
planting is seeded, the planted detection and its framing are told apart by hand-made
boxes, and the module stays torch-free."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_core.datasets import planted


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """A 48x48 grey face-like pattern: smooth gradients and a few blobs (not flat)."""
    y, x = np.mgrid[0:48, 0:48]
    img = 120 + 50 * np.sin(x / 6.0) * np.cos(y / 8.0)
    for cx, cy in ((16, 18), (32, 18), (24, 34)):
        img -= 60 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 18.0)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("surround", planted.SURROUNDS)
def test_the_face_lies_in_its_frame(face, surround):
    backs = [np.full((200, 300), 30, np.uint8), np.full((300, 200), 220, np.uint8)]
    for seed in range(5):
        photo, (x0, y0, side) = planted.plant_face(face, backs, np.random.default_rng(seed),
                                                   surround=surround)
        h, w = photo.shape[:2]
        assert photo.dtype == np.uint8 and photo.shape[2] == 3
        assert planted.FACE_PX[0] <= side <= planted.FACE_PX[1]
        assert planted.CANVAS[0] * side - 1 <= min(h, w) and max(h, w) <= planted.CANVAS[1] * side
        assert 0 <= x0 and x0 + side <= w and 0 <= y0 and y0 + side <= h
        # The frame, shrunk back to 48x48 by OpenCV, is the face (the seam's blended
        # outer pixels left out).
        back = cv2.resize(photo[y0:y0 + side, x0:x0 + side, 0], (48, 48),
                          interpolation=cv2.INTER_AREA).astype(int)
        inner = slice(2, 46)
        assert np.abs(back[inner, inner] - face[inner, inner]).mean() < 2.0
        # Outside the face's band, the background (flat here) is untouched.
        band = int(round(planted.SURROUND * side)) if surround == "continued" else 0
        outside = np.ones((h, w), bool)
        outside[max(0, y0 - band):y0 + side + band, max(0, x0 - band):x0 + side + band] = False
        assert set(np.unique(photo[..., 0][outside])) <= {30, 220}


def test_planting_is_seeded(face):
    backs = planted.backgrounds()
    assert len(backs) == len(planted.BACKGROUNDS) and all(b.ndim == 2 for b in backs)
    a, fa = planted.plant_face(face, backs, np.random.default_rng(3))
    b, fb = planted.plant_face(face, backs, np.random.default_rng(3))
    c, fc = planted.plant_face(face, backs, np.random.default_rng(4))
    assert fa == fb and np.array_equal(a, b)
    assert fa != fc or not np.array_equal(a, c)
    with pytest.raises(ValueError, match="surround"):
        planted.plant_face(face, backs, np.random.default_rng(0), surround="floating")


def test_the_planted_detection_and_its_framing():
    frame = planted.Frame(100, 50, 120)  # centre (160, 110)
    boxes = [(0, 0, 40, 50),             # elsewhere
             (130, 70, 200, 160),        # centre (165, 115): inside
             (140, 90, 180, 130)]        # centre (160, 110): inside, at the frame's centre
    assert planted.planted_face(boxes, frame) == 2
    assert planted.planted_face(boxes[:2], frame) == 1
    assert planted.planted_face(boxes[:1], frame) is None
    assert planted.planted_face(np.zeros((0, 4)), frame) is None
    # A box 80 wide, 100 high, centred 10 px right of and 5 px below the frame's centre.
    f = planted.framing((130, 65, 210, 165), frame)
    assert f["side_over_box"] == pytest.approx(1.2) and f["box_w_over_h"] == pytest.approx(0.8)
    assert f["dx"] == pytest.approx(-0.1) and f["dy"] == pytest.approx(-0.05)
    assert f["box_h_over_side"] == pytest.approx(100 / 120)
    summary = planted.summarise_framing([f, {**f, "side_over_box": 1.0}])
    assert summary["n"] == 2 and summary["side_over_box"]["median"] == pytest.approx(1.1)
    assert summary["margin_matching_median"] == pytest.approx(0.1)
    assert summary["shift_matching_median"] == pytest.approx(-0.05)


def test_jpeg_roundtrip_keeps_the_photo_close(face):
    photo, _ = planted.plant_face(face, planted.backgrounds(), np.random.default_rng(0))
    again = planted.jpeg_roundtrip(photo)
    assert again.shape == photo.shape and np.abs(again.astype(int) - photo).mean() < 3


def test_torch_free():
    code = "import sys, fer_core.datasets.planted; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
