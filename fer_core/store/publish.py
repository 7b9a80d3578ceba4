"""Stored results published into a run folder, as copies the run may change freely.

A published file never shares an inode with the store (``copy_file``: a reflink or a
copy), so an edit in a run folder can never reach a result that other runs reuse. Each run
folder keeps the stat of what it published (``PUBLISHED``): a rerun leaves a file whose
stat is unchanged as it is, and publishes again one that was edited, replaced or deleted,
or whose stored source changed. Runs published before as hard links into the store are
copied on their next rerun. A file made from several stored results (the training set,
from its source images and its classes' rendered ones: ``publish_made``) is recorded by
what it is made of.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from fer_core.store.files import copy_file, read_json
from fer_core.store.locks import update_json
from fer_core.store.results import file_stat

__all__ = ["PUBLISHED", "publish", "publish_files", "publish_made"]

PUBLISHED = ".published.json"  # in the run folder: {path in it: what was published there}


def _source(src: Path) -> list:
    # Not the source's ctime: it changes when another run drops its old hard link to it.
    ino, size, mtime, _ = file_stat(src)
    return [str(src.resolve()), ino, size, mtime]


def _published(run_dir: Path) -> dict:
    try:
        return read_json(run_dir / PUBLISHED)
    except (OSError, ValueError):
        return {}


def _stat(path: Path) -> list[int] | None:
    try:
        return file_stat(path)
    except OSError:
        return None


def _record(run_dir: Path, records: dict) -> None:
    if records:
        update_json(run_dir / PUBLISHED, lambda index: index.update(records))


def publish_files(pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]],
                  run_dir: str | os.PathLike) -> list[Path]:
    """Publish each (stored file, target in ``run_dir``) that is not there as published;
    returns the targets written now."""
    run_dir = Path(run_dir)
    known = _published(run_dir)
    written, records = [], {}
    for src, dst in pairs:
        src, dst = Path(src), Path(dst)
        rel = Path(os.path.relpath(dst, run_dir)).as_posix()
        now, was = _stat(dst), known.get(rel) or {}
        if now is not None and was.get("stat") == now and was.get("source") == _source(src) \
                and now[0] != file_stat(src)[0]:
            continue
        copy_file(src, dst)
        records[rel] = {"stat": file_stat(dst), "source": _source(src)}
        written.append(dst)
    _record(run_dir, records)
    return written


def publish_made(dst: str | os.PathLike, source: str, make: Callable[[Path], object],
                 run_dir: str | os.PathLike) -> bool:
    """Publish a file that stored results make together rather than one stored file:
    ``make(dst)`` writes it (atomically) unless ``run_dir`` holds it as published from the
    same ``source`` (what it is made of: the results' hashes) and unchanged since. Whether
    it was written now."""
    run_dir, dst = Path(run_dir), Path(dst)
    rel = Path(os.path.relpath(dst, run_dir)).as_posix()
    now, was = _stat(dst), _published(run_dir).get(rel) or {}
    if now is not None and was.get("stat") == now and was.get("source") == ["made", source]:
        return False
    make(dst)
    _record(run_dir, {rel: {"stat": file_stat(dst), "source": ["made", source]}})
    return True


def publish(src: str | os.PathLike, dst: str | os.PathLike,
            run_dir: str | os.PathLike | None = None) -> bool:
    """Publish one stored file at ``dst`` (recorded in ``run_dir``, by default the folder of
    ``dst``); whether it was written now."""
    return bool(publish_files([(src, dst)], run_dir or Path(dst).parent))
