"""(ours) The batched perceptual hash gives imagehash's bits, image for image: on real
FER2013 faces (at the near-duplicate stage's 40x40 centre and as they are), noise and
flat images, at 64 and 256 bits."""

from __future__ import annotations

import cv2
import imagehash
import numpy as np
import pytest
from PIL import Image

from fer_core.prepare.phash import phash


def imagehash_bits(grey: np.ndarray, size: int) -> np.ndarray:
    bits = imagehash.phash(Image.fromarray(grey), hash_size=size).hash.ravel()
    return np.packbits(bits).view(">u8").astype(np.uint64)


@pytest.mark.parametrize("size", [8, 16])
def test_batched_phash_equals_imagehash(fer2013_small, size):
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
             for p in sorted(fer2013_small.rglob("*.jpg"))[:200]]
    rng = np.random.default_rng(0)
    for stack in (np.stack([f[4:44, 4:44] for f in faces]), np.stack(faces),
                  rng.integers(0, 256, (50, 40, 40), dtype=np.uint8),
                  np.stack([np.full((40, 40), v, np.uint8) for v in (0, 1, 128, 255)])):
        want = np.stack([imagehash_bits(g, size) for g in stack])
        np.testing.assert_array_equal(phash(stack, size), want)


def test_an_empty_stack_has_no_hashes():
    assert phash(np.zeros((0, 40, 40), np.uint8)).shape == (0, 1)
