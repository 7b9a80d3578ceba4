"""Made near-copies of a face, the edits that SHA-1 misses: for checking near-duplicate search
(tests and bench/near_duplicates.py). Each edit is one a scraped dataset plausibly holds."""

from __future__ import annotations

import cv2
import numpy as np

EDITS = ("jpeg", "resize", "brightness", "crop", "shift")


def near_copy(grey: np.ndarray, edit: str, rng: np.random.Generator) -> np.ndarray:
    """A near-copy of a square uint8 grey face by ``edit``, its strength drawn from ``rng``:
    JPEG at quality 50-90, down to 24-39 px and back, brightness +-10..20, 0-3 px cut off
    each side and resized back, or a horizontal shift of 2-3 px (edges replicated)."""
    n = grey.shape[0]
    if edit == "jpeg":
        q = int(rng.integers(50, 91))
        return cv2.imdecode(cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, q])[1], 0)
    if edit == "resize":
        s = int(rng.integers(n // 2, n * 5 // 6))
        small = cv2.resize(grey, (s, s), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (n, n), interpolation=cv2.INTER_LINEAR)
    if edit == "brightness":
        d = int(rng.choice([-20, -15, -10, 10, 15, 20]))
        return np.clip(grey.astype(np.int16) + d, 0, 255).astype(np.uint8)
    if edit == "crop":
        top, bottom, left, right = (int(v) for v in rng.integers(0, 4, 4))
        cut = grey[top:n - bottom, left:n - right]
        return cv2.resize(cut, (n, n), interpolation=cv2.INTER_AREA)
    if edit == "shift":
        s = float(rng.choice([-3, -2, 2, 3]))
        m = np.float32([[1, 0, s], [0, 1, 0]])
        return cv2.warpAffine(grey, m, (n, n), borderMode=cv2.BORDER_REPLICATE)
    raise ValueError(f"unknown edit {edit!r}; known: {EDITS}")


def distinct(greys: np.ndarray, *, max_similarity: float = 0.85) -> np.ndarray:
    """Which faces in ``greys`` (n, h, w) have no other face as similar as a made copy: the
    check, independent of any hash, that "distinct" faces are not copies of each other.

    Similarity is the best pixel correlation over shifts of up to 2/24 of the side and
    scales of +-10%, at 24x24 (the centre; every made copy scores >= 0.85). FER2013 holds
    many re-cropped copies of one photo, which a plain correlation misses.
    """
    base = np.stack([_centre(g, 0, 0, 1.0) for g in greys])
    best = np.full((len(greys), len(greys)), -1.0, np.float32)
    for scale in (0.9, 1.0, 1.1):
        for dx in range(-2, 3):
            for dy in range(-2, 3):
                moved = np.stack([_centre(g, dx, dy, scale) for g in greys])
                best = np.maximum(best, moved @ base.T)
    np.fill_diagonal(best, -1)
    return ~((best > max_similarity) | (best.T > max_similarity)).any(1)


def _centre(grey: np.ndarray, dx: float, dy: float, scale: float, n: int = 24,
            border: int = 3) -> np.ndarray:
    small = cv2.resize(grey, (n, n), interpolation=cv2.INTER_AREA)
    c = (n - 1) / 2
    m = np.float32([[scale, 0, (1 - scale) * c + dx], [0, scale, (1 - scale) * c + dy]])
    moved = cv2.warpAffine(small, m, (n, n), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    w = moved[border:n - border, border:n - border].astype(np.float32).ravel()
    return (w - w.mean()) / (w.std() + 1e-6) / np.sqrt(w.size)
