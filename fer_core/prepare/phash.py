"""(ours) imagehash's perceptual hash (``imagehash.phash``), for a stack of images at once.

The same bits as imagehash, which hashes one PIL image at a time: Pillow's LANCZOS resize
(its fixed-point coefficients, rounding and clipping, horizontal pass first) done as two
matrix products over the whole stack, then the same DCT (scipy.fftpack), low-frequency
block and median. Tested bit for bit against imagehash on real faces, noise and flat
images (tests/fer_core/prepare/test_phash.py); a few times less CPU per hash, which is what
lets the near-duplicate stage probe every training image on the default settings.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fftpack

PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c, 8 bits per channel
HIGHFREQ_FACTOR = 4          # imagehash.phash's default: the DCT of a (4 x size)^2 image


def _lanczos(x: float) -> float:
    def sinc(v: float) -> float:
        if v == 0.0:
            return 1.0
        v *= math.pi
        return math.sin(v) / v

    return sinc(x) * sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


@lru_cache(maxsize=16)
def _coefficients(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) Pillow's fixed-point LANCZOS weights (precompute_coeffs and
    normalize_coeffs_8bpc), as float64: every product and sum stays an exact integer."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support, ss = 3.0 * filterscale, 1.0 / filterscale
    out = np.zeros((out_size, in_size))
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = [_lanczos((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        total = sum(w)
        for x, v in enumerate(w):
            k = v / total if total != 0.0 else v
            out[xx, xmin + x] = int(k * (1 << PRECISION_BITS) + (-0.5 if k < 0 else 0.5))
    return out


def _pass(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One resampling pass over the last axis, rounded and clipped to 8 bits as Pillow."""
    acc = rows @ weights.T + float(1 << (PRECISION_BITS - 1))
    return np.clip(np.floor(acc * (1.0 / (1 << PRECISION_BITS))), 0, 255)


def resize(stack: np.ndarray, size: int) -> np.ndarray:
    """(n, h, w) uint8 -> (n, size, size) float64 pixels: Pillow's ``Image.resize((size,
    size), LANCZOS)`` of each grey image."""
    n, h, w = stack.shape
    across = _pass(stack.reshape(n * h, w).astype(np.float64), _coefficients(w, size))
    across = across.reshape(n, h, size).transpose(0, 2, 1).reshape(n * size, h)
    down = _pass(across, _coefficients(h, size))
    return down.reshape(n, size, size).transpose(0, 2, 1)


def phash(stack: np.ndarray, hash_size: int = 8, block: int = 256) -> np.ndarray:
    """(n, hash_size**2 // 64) uint64: ``imagehash.phash(img, hash_size)`` of each (h, w)
    uint8 grey image of ``stack``, its bits packed row-major, most significant first.
    ``block`` images at a time: their arrays stay in the CPU's cache (measured: several
    times less CPU than one pass over a large stack, whose arrays are fresh pages)."""
    stack = np.asarray(stack, np.uint8)
    out = np.zeros((len(stack), hash_size * hash_size // 64), np.uint64)
    for start in range(0, len(stack), block):
        part = stack[start:start + block]
        pixels = resize(part, hash_size * HIGHFREQ_FACTOR)
        dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=1), axis=2)
        low = dct[:, :hash_size, :hash_size].reshape(len(part), -1)
        bits = low > np.median(low, axis=1, keepdims=True)
        out[start:start + len(part)] = np.packbits(bits, axis=1).view(">u8")
    return out
