"""Atomic writes, content hashes, and the plain files of a run: JSON, tables, figures."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

__all__ = [
    "read_text",
    "Ref",
    "atomic_path",
    "file_sha256",
    "bytes_sha256",
    "ref",
    "write_bytes",
    "write_json",
    "read_json",
    "read_yaml",
    "write_frame",
    "read_frame",
    "write_csv",
    "read_csv",
    "write_figure",
    "write_image",
    "copy_file",
    "write_dataset",
    "read_bytes",
]


@dataclass(frozen=True, kw_only=True)
class Ref:
    """A small reference to a stored result: where it is and the hash of its bytes."""

    path: str
    sha256: str


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


def read_csv(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    return pd.read_csv(path, **kwargs)


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


# Linux's FICLONE ioctl: the new file shares the source's blocks until either is written
# (btrfs, XFS, bcachefs); a write to one never reaches the other, unlike a hard link.
_FICLONE = 0x40049409


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Replace ``dst`` (atomically) by a copy of ``src`` that shares no inode with it: a
    reflink where the file system has them, else a plain copy."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            try:
                fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
                return
            except OSError:
                pass
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


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file (a BOM dropped); a file that is not text is a ValueError naming it."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e.reason})") from None


def read_bytes(path: str | os.PathLike) -> bytes:
    """A whole file (an exported model), for loaders that take bytes."""
    return Path(path).read_bytes()
