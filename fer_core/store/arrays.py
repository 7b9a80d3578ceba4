"""Image arrays: streamed ``.npy`` writes, memory-mapped reads, and the saved sets."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_core import MissingInput
from fer_core.store.files import Ref, atomic_path, read_json, ref

__all__ = [
    "SET_SPLITS",
    "SETS_META",
    "ArrayWriter",
    "write_array",
    "read_array",
    "copy_rows",
    "read_rows",
    "SavedSet",
    "sets_dir",
    "load_set",
    "read_sets_meta",
    "evaluation_splits",
    "prepared_config",
]


SET_SPLITS = ("train", "val", "test")


SETS_META = "meta.json"


class ArrayWriter:
    """Stream equal-shaped rows into an ``.npy`` file without holding them in memory.

    numpy lays the file out (``open_memmap``: the header ``np.save`` writes, then the rows)
    at a temporary path beside ``path``, which ``close`` renames onto it. Each ``append``
    maps the file, copies its rows in and unmaps it again: a map held open would count
    every page written so far in the process's resident memory.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype=np.uint8):
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self.written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                   dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            mm = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=self.dtype,
                                           shape=self.shape)
            offset, size = mm.offset, mm.nbytes
            del mm
            # Claim the disk now: a write through a map onto a full disk is a SIGBUS that
            # kills the process, where a reservation that fails is an OSError here.
            if size and hasattr(os, "posix_fallocate"):
                with open(self._tmp, "r+b") as f:
                    try:
                        os.posix_fallocate(f.fileno(), offset, size)
                    except OSError as e:  # a file system that cannot reserve: go on
                        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                            raise
        except BaseException:
            self._discard()
            raise

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path}: rows of shape {rows.shape[1:]} != {self.shape[1:]}")
        if self.written + len(rows) > self.shape[0]:
            raise ValueError(f"{self.path}: more than the {self.shape[0]} rows declared")
        if len(rows):
            mm = np.lib.format.open_memmap(self._tmp, mode="r+")
            mm[self.written:self.written + len(rows)] = rows
            del mm
        self.written += len(rows)

    def close(self, *, digest: bool = True) -> Ref | None:
        """Put the file in place; its Ref (``digest``: hashing it, which a file published
        into a run folder, never a stored result, has no use for)."""
        if self.written != self.shape[0]:
            self._discard()
            raise ValueError(f"{self.path}: wrote {self.written} of {self.shape[0]} rows")
        os.replace(self._tmp, self.path)
        return ref(self.path) if digest else None

    def abort(self) -> None:
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


def write_array(path: str | os.PathLike, arr: np.ndarray) -> Ref:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
    return ref(path)


def read_rows(path: str | os.PathLike, index) -> np.ndarray:
    """Rows of an ``.npy`` array by index, read with plain file reads.

    Unlike indexing a memory map, nothing stays mapped afterwards: gathering rows from a
    1 GB array this way does not add 1 GB of file pages to the process's resident memory.
    """
    index = np.asarray(index, dtype=np.int64)
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if major == 1
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        if fortran:
            raise ValueError(f"{path}: Fortran-ordered arrays are not stored here")
        start, row = f.tell(), int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        if index.size and (index.min() < 0 or index.max() >= shape[0]):
            raise IndexError(f"{path}: rows {index.min()}..{index.max()} not in 0..{shape[0] - 1}")
        out = np.empty((index.size, *shape[1:]), dtype)
        flat = out.reshape(index.size, row // dtype.itemsize).view(np.uint8)
        for i, r in enumerate(index):
            f.seek(start + int(r) * row)
            f.readinto(memoryview(flat[i]))
    return out


def copy_rows(src: str | os.PathLike, index, dst: str | os.PathLike, *,
              chunk: int = 4096) -> Ref:
    """Rows of one ``.npy`` array by index into a new one, ``chunk`` rows at a time: the
    memory it takes is one chunk's, whatever the number of rows."""
    index = np.asarray(index, dtype=np.int64)
    shape = np.load(src, mmap_mode="r").shape
    writer = ArrayWriter(dst, (index.size, *shape[1:]))
    try:
        for start in range(0, index.size, chunk):
            writer.append(read_rows(src, index[start:start + chunk]))
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def read_array(path: str | os.PathLike, *, mmap: bool = True) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


@dataclass(frozen=True, kw_only=True)
class SavedSet:
    """One saved split: uint8 images (memory-mapped), one-hot labels and class names.

    Pixels stay uint8 on disk and in memory; divide by 255 at load (``resize.normalize``,
    ``evaluate.to_input`` on the device):
    the same values as the paper's normalised arrays, at a quarter of the bytes.
    """

    images: np.ndarray  # (N, H, W, 3) uint8, RGB
    labels: np.ndarray  # (N, C) uint8 one-hot
    classes: tuple[str, ...]
    # A named subset (e.g. test_private) is these rows of its parent split.
    parent: str | None = None
    rows: np.ndarray | None = None
    # (N, C) float32 label distributions, when the data had votes (a labels file's).
    distribution: np.ndarray | None = None

    @property
    def targets(self) -> np.ndarray:
        return self.labels.argmax(axis=1)


def sets_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "sets"


def read_sets_meta(run_dir: str | os.PathLike) -> dict:
    return read_json(sets_dir(run_dir) / SETS_META)


def load_set(run_dir: str | os.PathLike, split: str) -> SavedSet:
    """A set saved by ``fer prepare`` in ``run_dir``: a split (train, val, test) or a named
    subset of one (``--subset``), which is read as the rows of its parent that it lists."""
    base = sets_dir(run_dir)
    meta = read_json(base / SETS_META)
    subsets = meta.get("subsets") or {}
    dist = meta.get("distribution")
    if split in meta["splits"]:
        return SavedSet(images=read_array(base / split / "images.npy"),
                        labels=read_array(base / split / "labels.npy", mmap=False),
                        classes=tuple(meta["classes"]),
                        distribution=read_array(base / split / dist, mmap=False) if dist
                        else None)
    if split not in subsets:
        raise MissingInput(f"{base}: no '{split}' set (saved: {sorted(meta['splits'])}"
                                + (f", subsets: {sorted(subsets)}" if subsets else "") + ")")
    sub = subsets[split]
    rows = read_array(base / sub["index"], mmap=False).astype(np.int64)
    parent = sub["parent"]
    # Plain reads of just these rows: the parent's whole array is not mapped for them.
    return SavedSet(images=read_rows(base / parent / "images.npy", rows),
                    labels=read_array(base / parent / "labels.npy", mmap=False)[rows],
                    classes=tuple(meta["classes"]), parent=parent, rows=rows,
                    distribution=read_array(base / parent / dist, mmap=False)[rows] if dist
                    else None)


def evaluation_splits(run_dir: str | os.PathLike) -> tuple[str, ...]:
    """The sets a run is scored on, in report order: val, test, then the named subsets;
    empty ones left out."""
    meta = read_json(sets_dir(run_dir) / SETS_META)
    splits = [s for s in ("val", "test") if meta["splits"].get(s)]
    return (*splits, *(name for name, sub in (meta.get("subsets") or {}).items()
                       if sub.get("n") and sub["parent"] in splits))


def prepared_config(run_dir: str | os.PathLike) -> dict | None:
    """The preparation config a run folder's sets were made with (prepare.json's
    ``config``), or None for a folder without one."""
    try:
        return read_json(Path(run_dir) / "prepare.json").get("config")
    except FileNotFoundError:
        return None
