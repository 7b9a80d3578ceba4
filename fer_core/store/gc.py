"""Cleaning a store: which results the runs refer to, and removing the others.

Run folders can be anywhere, so each run records in the store (``RUNS``) the result folders
it found or made, as it goes: a store shared by several runs knows which results each one
refers to. ``collect`` removes the results that no recorded, still existing run folder
refers to (with the results and files tables they require), never one whose lock a live
run holds, and with ``dry_run`` only lists them. The tables that runs share and keep
adding to (per-image hashes, the last near-duplicate search: one per way of making them)
are recorded by the runs that read or write them, and go the same way: a table made by
an older version of the hashing code is referred to by no run once those runs are gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import os
import re
import shutil
import threading
from pathlib import Path

from fer_core.store.files import read_json
from fer_core.store.locks import is_locked, lock_path, update_json
from fer_core.store.results import DONE, recording
from fer_core.store.stage_files import HASHES, INGEST_FILES, SEARCHES

__all__ = ["RUNS", "run_record", "records_run", "referenced", "collect"]

RUNS = "runs"  # in the store: <run id>-<kind>.json = {"run": folder, "results": [...]}
_KEY = re.compile(r"[0-9a-f]{24}")  # a result folder's name (fer_core.store.result_dir)
_BESIDE = (INGEST_FILES,)  # tables named after a result folder, beside the results
_SHARED = (HASHES, SEARCHES)  # tables runs share, each recorded by the runs that use it


def _record_path(store_root: Path, run_dir: Path, kind: str) -> Path:
    run_id = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    return store_root / RUNS / f"{run_id}-{kind}.json"


@contextlib.contextmanager
def run_record(store_root: str | os.PathLike, run_dir: str | os.PathLike, kind: str):
    """Record in the store every result of ``store_root`` the block finds or makes, for
    the run folder ``run_dir`` (``kind``: its flow). Written as results are noted, so a
    ``collect`` meanwhile sees them; on success the record is exactly this run's results,
    after a failure it keeps the earlier ones too."""
    store_root, run_dir = Path(store_root).resolve(), Path(run_dir).resolve()
    path, seen, lock = _record_path(store_root, run_dir, kind), set(), threading.Lock()

    def write(results: set[str], keep: bool) -> None:
        def change(index: dict) -> dict:
            old = set(index.get("results", [])) if keep else set()
            return {"run": str(run_dir), "kind": kind, "results": sorted(old | results)}
        update_json(path, change)

    def note(folder: Path) -> None:
        with contextlib.suppress(ValueError):
            rel = folder.relative_to(store_root).as_posix()
            with lock:
                if rel in seen:
                    return
                seen.add(rel)
                write({rel}, keep=True)

    ok = False
    with recording(note):
        try:
            yield
            ok = True
        finally:
            with lock:
                write(set(seen), keep=not ok)


def records_run(kind: str, run: str = "out_dir", default_store: str = "store"):
    """Decorate a function with parameters ``run`` (the run folder) and ``store_root``
    (None: RUN/``default_store``): its results are recorded (``run_record``)."""
    def wrap(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            run_dir = Path(bound.arguments[run])
            store_root = bound.arguments.get("store_root") or run_dir / default_store
            with run_record(store_root, run_dir, kind):
                return fn(*args, **kwargs)
        return inner
    return wrap


def _results(store_root: Path) -> list[Path]:
    """Every result folder of the store (sealed or not), outermost only."""
    out = []
    for dirpath, dirnames, _ in os.walk(store_root):
        here = Path(dirpath)
        if here == store_root:
            dirnames[:] = [d for d in dirnames if d not in (RUNS, *_BESIDE, *_SHARED)]
        for d in [d for d in dirnames if _KEY.fullmatch(d)]:
            out.append(here / d)
            dirnames.remove(d)
        dirnames.sort()
    return sorted(out)


def referenced(store_root: str | os.PathLike) -> set[Path]:
    """The result folders that a recorded run whose folder still exists refers to, with
    the results they require (``REQUIRES``), transitively."""
    store_root = Path(store_root).resolve()
    todo = []
    for record in sorted((store_root / RUNS).glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            index = read_json(record)
            if Path(index["run"]).is_dir():
                todo += [store_root / rel for rel in index["results"]]
    live: set[Path] = set()
    while todo:
        folder = todo.pop()
        if folder in live:
            continue
        live.add(folder)
        with contextlib.suppress(OSError, ValueError):
            todo += [(folder / rel).resolve() for rel in read_json(folder / DONE).get(
                "requires") or {}]
    return live


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def collect(store_root: str | os.PathLike, *, dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove (or with ``dry_run`` only list) the store's results and shared tables no live
    run refers to, and the tables beside those results; returns (path, bytes) of each. One
    whose lock is held (a run making or adding to it now) is left."""
    store_root = Path(store_root).resolve()
    live = referenced(store_root)
    names = {p.name for p in live}
    gone = []
    shared = [t for d in _SHARED for t in sorted((store_root / d).glob("*.parquet"))]
    for path in [*_results(store_root), *shared]:
        if path not in live:
            size = _size(path)
            if _remove(path, dry_run):
                gone.append((path, size))
    for beside in _BESIDE:
        for table in sorted((store_root / beside).glob("*")):
            if table.name.split(".")[0] not in names:
                gone.append((table, _size(table)))
                if not dry_run:
                    table.unlink()
    return gone


def _remove(path: Path, dry_run: bool) -> bool:
    """Remove the result folder or table ``path`` under its lock, taken without waiting:
    False when held."""
    if dry_run:
        return not is_locked(path)
    lock = lock_path(path)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        lock.unlink()
        return True
    finally:
        os.close(fd)
