"""The result store: every read and write of the project goes through here (our catalog).

Stages in fer_core are pure functions of data; this module is the only place that
touches the file system. Writes are atomic (temporary file, then ``os.replace``) so a
crash never leaves a half-written result that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

SET_SPLITS = ("train", "val", "test")
SETS_META = "meta.json"
CSV_ROW_SEP = "#row="


class BadImage(ValueError):
    """An input file that is not a usable image; ``reason`` goes into the manifest."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class Ref:
    """A small reference to a stored result: where it is and the hash of its bytes."""

    path: str
    sha256: str


# ---------------------------------------------------------------- atomic writes, hashes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ref(path: str | os.PathLike) -> Ref:
    return Ref(path=str(path), sha256=file_sha256(path))


def write_bytes(path: str | os.PathLike, data: bytes) -> Ref:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return ref(path)


def write_json(path: str | os.PathLike, obj) -> Ref:
    return write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def read_yaml(path: str | os.PathLike):
    """A config file: YAML (JSON is YAML too)."""
    import yaml

    return yaml.safe_load(Path(path).read_text())


# ---------------------------------------------------------------- tables


def write_frame(path: str | os.PathLike, df: pd.DataFrame) -> Ref:
    """Parquet for frames (manifests); the bytes are a function of the frame alone."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, compression="zstd")
    return ref(path)


def read_frame(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_parquet(path)


def write_csv(path: str | os.PathLike, df: pd.DataFrame) -> Ref:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return write_bytes(path, buf.getvalue().encode())


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path)


def write_figure(path: str | os.PathLike, fig) -> Ref:
    """PNG with no timestamp or version metadata, so reruns give identical bytes."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return write_bytes(path, buf.getvalue())


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> Ref:
    ext = Path(path).suffix or ".png"
    ok, enc = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot encode {ext}")
    return write_bytes(path, enc.tobytes())


# ---------------------------------------------------------------- input images


def read_file_bytes(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise BadImage(str(path), f"unreadable: {e.strerror or e}") from e


def decode_image(data: bytes, path: str, *, ext: str = "") -> np.ndarray:
    """Decode image bytes with OpenCV into 8-bit RGB, or raise BadImage with the reason.

    Grayscale, RGBA and 16-bit inputs all become 8-bit, 3-channel RGB.
    """
    if not data:
        raise BadImage(path, "empty file (0 bytes)")
    ext = ext.lower()
    if ext in (".jpg", ".jpeg") and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        # libjpeg pads a truncated stream with grey and only warns; catch it here.
        raise BadImage(path, "truncated JPEG (no end-of-image marker)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise BadImage(path, "cannot be decoded as an image (corrupt or not an image)")
    return to_rgb8(img)


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
    """One input image as 8-bit RGB; ``path`` is relative to ``root`` (or a CSV row ref)."""
    if CSV_ROW_SEP in path:
        csv_path, row = path.split(CSV_ROW_SEP)
        return csv_image(str(Path(root) / csv_path), int(row))
    full = Path(root) / path
    return decode_image(read_file_bytes(full), path, ext=full.suffix)


def read_images(root: str | os.PathLike, paths: Sequence[str]) -> list[np.ndarray]:
    return [read_image(root, p) for p in paths]


# FER2013's original release: a CSV with emotion,pixels,Usage columns (48x48 grayscale).
FER2013_CSV_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@lru_cache(maxsize=2)
def _csv_table(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"pixels": str})


def read_fer2013_csv(path: str | os.PathLike) -> pd.DataFrame:
    path = str(path)
    df = _csv_table(path, os.path.getmtime(path))
    missing = {"emotion", "pixels"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: not a FER2013 CSV, missing columns {sorted(missing)}")
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


# ---------------------------------------------------------------- arrays and saved sets


class ArrayWriter:
    """Stream equal-shaped uint8 rows into an ``.npy`` file without holding them in memory."""

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype=np.uint8):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.written = 0
        self._cm = atomic_path(self.path)
        tmp = self._cm.__enter__()
        self._f = open(tmp, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._f, header)

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path}: rows of shape {rows.shape[1:]} != {self.shape[1:]}")
        if self.written + len(rows) > self.shape[0]:
            raise ValueError(f"{self.path}: more than the {self.shape[0]} rows declared")
        self._f.write(rows.tobytes())
        self.written += len(rows)

    def close(self) -> Ref:
        self._f.close()
        if self.written != self.shape[0]:
            self._cm.__exit__(ValueError, ValueError("short write"), None)
            raise ValueError(f"{self.path}: wrote {self.written} of {self.shape[0]} rows")
        self._cm.__exit__(None, None, None)
        return ref(self.path)

    def abort(self) -> None:
        self._f.close()
        with contextlib.suppress(ValueError):
            self._cm.__exit__(RuntimeError, RuntimeError("aborted"), None)


def write_array(path: str | os.PathLike, arr: np.ndarray) -> Ref:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
    return ref(path)


def read_array(path: str | os.PathLike, *, mmap: bool = True) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


@dataclass(frozen=True, kw_only=True)
class SavedSet:
    """One saved split: uint8 images (memory-mapped), one-hot labels and class names.

    Pixels stay uint8 on disk and in memory; divide by 255 at load (``float_batch``):
    the same values as the paper's normalised arrays, at a quarter of the bytes.
    """

    images: np.ndarray  # (N, H, W, 3) uint8, RGB
    labels: np.ndarray  # (N, C) uint8 one-hot
    classes: tuple[str, ...]

    @property
    def targets(self) -> np.ndarray:
        return self.labels.argmax(axis=1)

    def float_batch(self, index) -> np.ndarray:
        return self.images[index].astype(np.float32) / 255.0


def sets_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "sets"


def load_set(run_dir: str | os.PathLike, split: str) -> SavedSet:
    """The split saved by ``fer prepare`` in ``run_dir`` (train, val or test)."""
    base = sets_dir(run_dir)
    meta = read_json(base / SETS_META)
    if split not in meta["splits"]:
        raise FileNotFoundError(f"{base}: no '{split}' set (saved: {sorted(meta['splits'])})")
    return SavedSet(images=read_array(base / split / "images.npy"),
                    labels=read_array(base / split / "labels.npy", mmap=False),
                    classes=tuple(meta["classes"]))


# ---------------------------------------------------------------- stage results

DONE = "_done.json"


def result_dir(store_root: str | os.PathLike, stage: str, key: str) -> Path:
    return Path(store_root) / stage / key[:24]


def _file_entry(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def cached(out_dir: str | os.PathLike, *, full: bool = True) -> dict | None:
    """The metadata of a complete result in ``out_dir``, or None if any file is missing,
    truncated or (with ``full``, by its hash) altered: such a result is never trusted."""
    out_dir = Path(out_dir)
    try:
        done = read_json(out_dir / DONE)
    except (OSError, ValueError):
        return None
    for name, entry in done["files"].items():
        path = out_dir / name
        if not path.is_file() or path.stat().st_size != entry["size"]:
            return None
        if full and file_sha256(path) != entry["sha256"]:
            return None
    return done


def folder_fingerprint(root: str | os.PathLike) -> str:
    """A cheap content key of a data folder or file: every file's path, size and mtime."""
    root = Path(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    for d in ([] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_dir())):
        h.update(f"{d.relative_to(root).as_posix()}/\n".encode())  # empty class folders count
    return h.hexdigest()


def mark_done(out_dir: str | os.PathLike, meta: dict | None = None) -> dict:
    """Seal a result: record every file's size and hash; the result's hash is over those."""
    out_dir = Path(out_dir)
    files = {p.relative_to(out_dir).as_posix(): _file_entry(p)
             for p in sorted(out_dir.rglob("*")) if p.is_file() and p.name != DONE
             and not p.name.endswith(".tmp")}
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    done = {"files": files, "sha256": digest, "meta": meta or {}}
    write_json(out_dir / DONE, done)
    return done


def run_stage(out_dir: str | os.PathLike, produce) -> tuple[Ref, bool]:
    """Reuse the sealed result in ``out_dir``, or call ``produce(out_dir) -> meta`` and seal it.

    Returns a reference to the result folder (hash over its files) and whether it was reused.
    """
    out_dir = Path(out_dir)
    done = cached(out_dir)
    if done is not None:
        return Ref(path=str(out_dir), sha256=done["sha256"]), True
    with contextlib.suppress(FileNotFoundError):
        (out_dir / DONE).unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = produce(out_dir)
    done = mark_done(out_dir, meta)
    return Ref(path=str(out_dir), sha256=done["sha256"]), False


def result_meta(result: Ref) -> dict:
    return read_json(Path(result.path) / DONE)["meta"]


def iter_image_batches(root: str | os.PathLike, paths: Sequence[str], batch_size: int):
    """(start, images) for consecutive batches of input images, read as 8-bit RGB."""
    for start in range(0, len(paths), batch_size):
        yield start, read_images(root, paths[start:start + batch_size])


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Publish a stored result under the run folder without a second copy when possible."""
    import shutil

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def write_dataset(root: str | os.PathLike, files) -> int:
    """Write (relative path, RGB image or raw bytes) pairs under ``root``; returns the count."""
    for rel, content in files:
        path = Path(root) / rel
        if isinstance(content, bytes):
            write_bytes(path, content)
        else:
            write_image(path, content)
    return len(files)


# ---------------------------------------------------------------- prediction I/O
# Inputs of ``fer predict`` (image files, folders, videos) and the exported model files.

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


def read_input_image(path: str) -> np.ndarray:
    """One image to predict on, as 8-bit RGB, or BadImage with the reason."""
    return decode_image(read_file_bytes(path), path, ext=Path(path).suffix)


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


def read_bytes(path: str | os.PathLike) -> bytes:
    """A whole file (an exported model), for loaders that take bytes."""
    return Path(path).read_bytes()
