"""Stored results published into a run folder, as copies the run may change freely.

A published file never shares an inode with the store (``copy_file``: a reflink or a
copy), so an edit in a run folder can never reach a result that other runs reuse. Each run
folder keeps the stat of what it published (``PUBLISHED``): a rerun leaves a file whose
stat is unchanged as it is, and publishes again one that was edited, replaced or deleted,
or whose stored source changed. Runs published before as hard links into the store are
copied on their next rerun.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fer_core.store.files import copy_file, read_json
from fer_core.store.locks import update_json
from fer_core.store.results import file_stat

__all__ = ["PUBLISHED", "publish", "publish_files"]

PUBLISHED = ".published.json"  # in the run folder: {path in it: what was published there}


def _source(src: Path) -> list:
    # Not the source's ctime: it changes when another run drops its old hard link to it.
    ino, size, mtime, _ = file_stat(src)
    return [str(src.resolve()), ino, size, mtime]


def publish_files(pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]],
                  run_dir: str | os.PathLike) -> list[Path]:
    """Publish each (stored file, target in ``run_dir``) that is not there as published;
    returns the targets written now."""
    run_dir = Path(run_dir)
    try:
        known = read_json(run_dir / PUBLISHED)
    except (OSError, ValueError):
        known = {}
    written, records = [], {}
    for src, dst in pairs:
        src, dst = Path(src), Path(dst)
        rel = Path(os.path.relpath(dst, run_dir)).as_posix()
        try:
            now = file_stat(dst)
        except OSError:
            now = None
        was = known.get(rel) or {}
        if now is not None and was.get("stat") == now and was.get("source") == _source(src) \
                and now[0] != file_stat(src)[0]:
            continue
        copy_file(src, dst)
        records[rel] = {"stat": file_stat(dst), "source": _source(src)}
        written.append(dst)
    if records:
        update_json(run_dir / PUBLISHED, lambda index: index.update(records))
    return written


def publish(src: str | os.PathLike, dst: str | os.PathLike,
            run_dir: str | os.PathLike | None = None) -> bool:
    """Publish one stored file at ``dst`` (recorded in ``run_dir``, by default the folder of
    ``dst``); whether it was written now."""
    return bool(publish_files([(src, dst)], run_dir or Path(dst).parent))
