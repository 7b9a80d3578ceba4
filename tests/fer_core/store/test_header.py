"""The store's header check and upright decoding, against Pillow as the oracle."""

from __future__ import annotations

import io
import resource

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from fer_core import store
from fer_core.datasets.bomb import bomb_png, bomb_tiff
from fer_core.store.header import check_pixels, exif_orientation, image_header


def encoded(rgb: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_header_sizes_are_pillows(astronaut, fmt):
    face = astronaut[:300, :211]
    data = encoded(face, fmt)
    with Image.open(io.BytesIO(data)) as img:
        assert image_header(data)[1:] == img.size == (211, 300)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_tiff_header_sizes_are_pillows_and_opencvs(astronaut, byteorder):
    made = bomb_tiff(211, 300, byteorder=byteorder)  # one Deflate strip, Pillow reads it
    with Image.open(io.BytesIO(made)) as img:
        assert image_header(made) == ("tiff", *img.size) == ("tiff", 211, 300)
    assert cv2.imdecode(np.frombuffer(made, np.uint8), cv2.IMREAD_UNCHANGED).shape == (300, 211)
    for big in (False, True):  # Pillow's own TIFF and BigTIFF writers
        data = encoded(astronaut[:300, :211], "TIFF", big_tiff=big)
        assert image_header(data) == ("tiff", 211, 300)


def test_a_decompression_bomb_is_refused_from_its_header_without_decoding():
    data = bomb_png(20000, 20000)
    assert len(data) < 2_000_000  # small on disk
    assert image_header(data) == ("png", 20000, 20000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(store.BadImage, match="too large: 20000x20000 = 400.0 megapixels"):
        store.decode_image(data, "bomb.png", max_pixels=40_000_000)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100  # decoding it would take 1.2 GB
    assert check_pixels(data, None) == ""  # no limit, no refusal


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(astronaut, orientation):
    stored = astronaut[40:340, 60:260]  # 300 x 200, not square: turns are visible
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = orientation
    data = encoded(stored, "PNG", exif=exif.tobytes())  # lossless: pixels compare exactly
    assert exif_orientation(data) == orientation
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    np.testing.assert_array_equal(store.decode_image(data, "photo.png"), upright)


def test_a_big_photo_is_decoded_at_reduced_size(astronaut):
    big = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    data = encoded(big, "JPEG", quality=95)
    full = store.decode_image(data, "big.jpg")
    small = store.decode_image(data, "big.jpg", reduce_above=1_100_000)
    assert full.shape == (2048, 2048, 3) and small.shape == (1024, 1024, 3)
    ref = cv2.resize(full, (1024, 1024), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - ref).mean() < 3  # the same picture, at half size
