"""Input images: decoding any supported file into 8-bit RGB, FER2013's CSV release, and
the images and videos that prediction reads. Bad input raises BadImage with the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_core import UsageError
from fer_core.store.header import apply_orientation, check_pixels, exif_orientation, image_header

__all__ = [
    "CSV_ROW_SEP",
    "BOX_SEP",
    "split_box",
    "crop_box",
    "BadImage",
    "read_file_bytes",
    "decode_image",
    "to_rgb8",
    "read_image",
    "read_images",
    "iter_image_batches",
    "FER2013_CSV_CLASSES",
    "read_fer2013_csv",
    "csv_pixels_bytes",
    "csv_image",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "is_video",
    "list_inputs",
    "read_input_image",
    "video_fps",
    "iter_video_frames",
    "read_thumbnail",
]


CSV_ROW_SEP = "#row="
# A face box of a labels file's row (fer_core.prepare.labels): ``file.jpg#box=x,y,w,h``
# is that file cropped to the box, for every stage that reads it.
BOX_SEP = "#box="


class BadImage(ValueError):
    """An input file that is not a usable image; ``reason`` goes into the manifest."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_file_bytes(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise BadImage(str(path), f"unreadable: {e.strerror or e}") from e


def decode_image(data: bytes, path: str, *, ext: str = "", max_pixels: int | None = None,
                 reduce_above: int | None = None) -> np.ndarray:
    """Decode image bytes with OpenCV into 8-bit RGB, upright, or raise BadImage with the
    reason.

    Grayscale, RGBA and 16-bit inputs all become 8-bit, 3-channel RGB; an EXIF orientation
    is applied, so a phone photo stored sideways comes out as it was taken. The header is
    read first: past ``max_pixels`` the file is refused without being decoded; past
    ``reduce_above`` pixels it is decoded at 1/2, 1/4 or 1/8 of its size (OpenCV's
    ``IMREAD_REDUCED_COLOR_*``, in the JPEG decoder itself), the least that brings it
    under ``reduce_above``.
    """
    if not data:
        raise BadImage(path, "empty file (0 bytes)")
    ext = ext.lower()
    if (ext in (".jpg", ".jpeg") or data[:2] == b"\xff\xd8") \
            and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        # libjpeg pads a truncated stream with grey and only warns; catch it here.
        raise BadImage(path, "truncated JPEG (no end-of-image marker)")
    too_large = check_pixels(data, max_pixels)
    if too_large:
        raise BadImage(path, too_large)
    flags = _reduced_flags(data, reduce_above)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None or img.size == 0:
        raise BadImage(path, "cannot be decoded as an image (corrupt or not an image)")
    return apply_orientation(to_rgb8(img), exif_orientation(data))


_REDUCED = ((2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4),
            (8, cv2.IMREAD_REDUCED_COLOR_8))


def _reduced_flags(data: bytes, reduce_above: int | None) -> int:
    # IMREAD_UNCHANGED keeps 16-bit and alpha (to_rgb8 converts them) and leaves the EXIF
    # orientation to us; the reduced modes decode 8-bit colour and ignore it too
    # (IMREAD_IGNORE_ORIENTATION).
    head = image_header(data) if reduce_above else None
    if head is None or head[1] * head[2] <= reduce_above:
        return cv2.IMREAD_UNCHANGED
    pixels = head[1] * head[2]
    for factor, flag in _REDUCED:
        if pixels / factor**2 <= reduce_above or factor == 8:
            return flag | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.IMREAD_UNCHANGED


def to_rgb8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        lo, hi = float(np.min(img)), float(np.max(img))
        img = ((img - lo) * (255.0 / (hi - lo or 1.0))).round().astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_image(root: str | os.PathLike, path: str) -> np.ndarray:
    """One input image as 8-bit RGB; ``path`` is relative to ``root`` (or a CSV row ref, or
    a file with a face box)."""
    if CSV_ROW_SEP in path:
        csv_path, row = path.split(CSV_ROW_SEP)
        return csv_image(str(Path(root) / csv_path), int(row))
    file, box = split_box(path)
    full = Path(root) / file
    img = decode_image(read_file_bytes(full), path, ext=full.suffix)
    return img if box is None else crop_box(img, box, path)


def split_box(path: str) -> tuple[str, tuple[int, int, int, int] | None]:
    """(file, face box x, y, w, h or None) of a manifest path."""
    if BOX_SEP not in path:
        return path, None
    file, box = path.split(BOX_SEP)
    x, y, w, h = (int(v) for v in box.split(","))
    return file, (x, y, w, h)


def crop_box(img: np.ndarray, box: tuple[int, int, int, int], path: str) -> np.ndarray:
    """The image cut to a face box, the box clipped to the image (datasets' boxes may
    reach past its edge); BadImage when nothing of the box is inside."""
    x, y, w, h = box
    height, width = img.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        raise BadImage(path, f"face box {x},{y},{w},{h} is outside the {width}x{height} image")
    return np.ascontiguousarray(img[y0:y1, x0:x1])


def read_images(root: str | os.PathLike, paths: Sequence[str]) -> list[np.ndarray]:
    return [read_image(root, p) for p in paths]


# FER2013's original release: a CSV with emotion,pixels,Usage columns (48x48 grayscale).


def iter_image_batches(root: str | os.PathLike, paths: Sequence[str], batch_size: int):
    """(start, images) for consecutive batches of input images, read as 8-bit RGB."""
    for start in range(0, len(paths), batch_size):
        yield start, read_images(root, paths[start:start + batch_size])


FER2013_CSV_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@lru_cache(maxsize=2)
def _csv_table(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"pixels": str})


def read_fer2013_csv(path: str | os.PathLike) -> pd.DataFrame:
    path = str(path)
    df = _csv_table(path, os.path.getmtime(path))
    missing = {"emotion", "pixels"} - set(df.columns)
    if missing:
        raise UsageError(f"{path}: not a FER2013 CSV, missing columns {sorted(missing)}")
    return df


def csv_pixels_bytes(pixels: str) -> bytes:
    """The canonical bytes of one CSV image (what its SHA-1 is taken over)."""
    values = np.array(pixels.split(), dtype=np.int64)
    if values.size == 0 or (values < 0).any() or (values > 255).any():
        raise ValueError("pixels are not 8-bit values")
    return values.astype(np.uint8).tobytes()


def csv_image(path: str, row: int) -> np.ndarray:
    df = read_fer2013_csv(path)
    flat = np.frombuffer(csv_pixels_bytes(df.at[row, "pixels"]), np.uint8)
    side = int(round(flat.size**0.5))
    if side * side != flat.size:
        raise BadImage(f"{Path(path).name}{CSV_ROW_SEP}{row}", f"{flat.size} pixels is not square")
    return cv2.cvtColor(flat.reshape(side, side), cv2.COLOR_GRAY2RGB)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def list_inputs(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Files to predict on: files as given (a missing or odd one is reported later, not
    dropped here), folders searched recursively for images and videos, in sorted order."""
    files: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = (f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                     and f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
            files.extend(sorted(str(f) for f in found))
        else:
            files.append(str(p))
    return list(dict.fromkeys(files))  # a file named twice is predicted once


def read_input_image(path: str, *, max_pixels: int | None = None,
                     reduce_above: int | None = None) -> np.ndarray:
    """One image to predict on, as 8-bit RGB, or BadImage with the reason."""
    return decode_image(read_file_bytes(path), path, ext=Path(path).suffix,
                        max_pixels=max_pixels, reduce_above=reduce_above)


def video_fps(path: str) -> float:
    """Frames per second from the container (NaN when it does not say)."""
    cap = cv2.VideoCapture(str(path))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return fps if fps > 0 else float("nan")


def iter_video_frames(path: str, *, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, RGB frame) of every ``every``-th frame; BadImage when nothing decodes.

    Skipped frames are only grabbed, not decoded: sampling every 5th frame costs about a
    fifth of decoding them all.
    """
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    if not Path(path).is_file():
        raise BadImage(path, "unreadable: No such file or directory")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise BadImage(path, "cannot be opened as a video (corrupt or unsupported codec)")
    index, yielded = 0, 0
    try:
        while cap.grab():
            if index % every == 0:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    yielded += 1
                    yield index, to_rgb8(frame)
            index += 1
    finally:
        cap.release()
    if not yielded:
        raise BadImage(path, "no video frame could be decoded")


def read_thumbnail(path: str | os.PathLike, max_width: int = 900,
                   max_bytes: int = 250_000) -> tuple[bytes, str]:
    """An image file (a report's PNG) no wider than ``max_width``, encoded as PNG, or as
    JPEG (quality 85, then lower) where the PNG is over ``max_bytes``: (bytes, MIME type).
    For inlining in a Prefect artifact, which travels in an event of at most 1.5 MB."""
    img = cv2.imdecode(np.frombuffer(read_file_bytes(path), np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise BadImage(str(path), "not decodable")
    if img.shape[1] > max_width:
        h = round(img.shape[0] * max_width / img.shape[1])
        img = cv2.resize(img, (max_width, h), interpolation=cv2.INTER_AREA)
    ok, enc = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if ok and len(enc) <= max_bytes:
        return enc.tobytes(), "image/png"
    for quality in (85, 70, 50):
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if len(enc) <= max_bytes:
            break
    return enc.tobytes(), "image/jpeg"
