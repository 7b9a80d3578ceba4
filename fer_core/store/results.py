"""Stage results: sealed folders that are reused while whole and recomputed otherwise.

A seal records every file's size and SHA-256, and its stat (inode, size, mtime, ctime) when
sealed: a file whose stat is still that one is trusted by it, any other is hashed again
before it is served, so an edited or damaged result is recomputed, never used. A result is
made under its lock (``fer_core.store.locks``): two runs that reach it together compute it
once, the second waits and reuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path

from fer_core.store.files import Ref, file_sha256, read_json, write_json
from fer_core.store.locks import locked

__all__ = [
    "DONE",
    "result_dir",
    "cached",
    "recording",
    "note_result",
    "mark_done",
    "run_stage",
    "result_meta",
    "REQUIRES",
    "sealed_parts",
]


DONE = "_done.json"


def result_dir(store_root: str | os.PathLike, stage: str, key: str) -> Path:
    return Path(store_root) / stage / key[:24]


def _file_entry(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def file_stat(path: str | os.PathLike) -> list[int]:
    """What tells that a file was not touched: inode, size, mtime and ctime (ctime changes
    with any write, link or chmod, and no user can set it back)."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def cached(out_dir: str | os.PathLike, *, full: bool = False) -> dict | None:
    """The metadata of a complete result in ``out_dir``, or None if any file is missing or
    altered: such a result is never trusted. A file whose stat is the one sealed is taken
    as sealed; any other (and with ``full``, every file) is hashed and compared."""
    out_dir = Path(out_dir)
    try:
        done = read_json(out_dir / DONE)
    except (OSError, ValueError):
        return None
    sealed, verified = done.get("stat") or {}, {}
    for name, entry in done["files"].items():
        path = out_dir / name
        try:
            stat = file_stat(path)
        except OSError:
            return None
        if stat[1] != entry["size"]:
            return None
        if full or stat != sealed.get(name):
            if file_sha256(path) != entry["sha256"]:
                return None
            verified[name] = stat
    for rel, digest in (done.get("requires") or {}).items():
        # A result made of other sealed results (by reference) is whole while they are.
        part = cached(out_dir / rel)
        if part is None or part["sha256"] != digest:
            return None
    if any(sealed.get(k) != v for k, v in verified.items()):
        _restat(out_dir, done["sha256"], verified)
    _note(out_dir)
    return done


def _restat(out_dir: Path, digest: str, verified: dict[str, list[int]]) -> None:
    """Remember the stat of files just verified by content (e.g. after their hard links in
    a run folder went, which changes their ctime), so they are not hashed on every hit."""
    with contextlib.suppress(OSError, ValueError):
        done = read_json(out_dir / DONE)
        if done["sha256"] == digest:
            done["stat"] = {**(done.get("stat") or {}), **verified}
            write_json(out_dir / DONE, done)


def mark_done(out_dir: str | os.PathLike, meta: dict | None = None, *,
              requires: dict[str, str] | None = None) -> dict:
    """Seal a result: record every file's size and hash; the result's hash is over those.

    ``requires``: other sealed results this one refers to, {path relative to ``out_dir``:
    their hash}; ``cached`` trusts this one only while each of them is whole and the same.
    """
    out_dir = Path(out_dir)
    paths = {p.relative_to(out_dir).as_posix(): p for p in sorted(out_dir.rglob("*"))
             if p.is_file() and p.name != DONE and not p.name.endswith(".tmp")}
    files = {rel: _file_entry(p) for rel, p in paths.items()}
    # The hash is over sizes and hashes alone: the stat beside them is not the content.
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    done = {"files": files, "sha256": digest, "meta": meta or {},
            "stat": {rel: file_stat(p) for rel, p in paths.items()}}
    if requires:
        done["requires"] = dict(sorted(requires.items()))
    write_json(out_dir / DONE, done)
    return done


def run_stage(out_dir: str | os.PathLike, produce) -> tuple[Ref, bool]:
    """Reuse the sealed result in ``out_dir``, or call ``produce(out_dir) -> meta`` and seal it.

    Returns a reference to the result folder (hash over its files) and whether it was reused.
    Made under the result's lock: a run that finds another making it waits, then reuses it.
    """
    out_dir = Path(out_dir)
    done, reused = cached(out_dir), True
    if done is None:
        with locked(out_dir):
            done = cached(out_dir)
            if done is None:
                done, reused = _make(out_dir, produce), False
    return Ref(path=str(out_dir), sha256=done["sha256"]), reused


def _make(out_dir: Path, produce) -> dict:
    with contextlib.suppress(FileNotFoundError):
        (out_dir / DONE).unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = produce(out_dir)
    requires = meta.pop(REQUIRES, None) if isinstance(meta, dict) else None
    done = mark_done(out_dir, meta, requires=requires)
    _note(out_dir)
    return done


# A key of the meta that ``produce`` returns to ``run_stage``: the sealed results this one
# refers to ({path relative to its folder: hash}), recorded by ``mark_done``, not as meta.
REQUIRES = "_requires"


def sealed_parts(base: str | os.PathLike, produce_part, keys: list[Path], *,
                 full: bool = False) -> dict[str, str]:
    """Sealed part results (e.g. one per batch), made by ``produce_part(i, folder)`` where
    not whole (as ``cached`` checks) and reused otherwise, each under its lock.
    Returns {path relative to ``base``: hash} for ``REQUIRES``."""
    out = {}
    for i, folder in enumerate(keys):
        folder = Path(folder)
        done = cached(folder, full=full)
        if done is None:
            with locked(folder):
                done = cached(folder, full=full) or _make(
                    folder, lambda f, i=i: produce_part(i, f))
        out[os.path.relpath(folder, base)] = done["sha256"]
    return out


def result_meta(result: Ref) -> dict:
    return read_json(Path(result.path) / DONE)["meta"]


# --- which results a run refers to (fer_core.store.gc) ------------------------------------

_recorders: list = []
_recorders_lock = threading.Lock()


def note_result(out_dir: str | os.PathLike) -> None:
    """Tell the runs recording (``recording``) that they refer to this result, found by
    other means (e.g. made by a worker process), or to this table that runs share."""
    _note(Path(out_dir))


def _note(out_dir: Path) -> None:
    with _recorders_lock:
        recorders = list(_recorders)
    for record in recorders:
        record(out_dir.resolve())


@contextlib.contextmanager
def recording(record):
    """Call ``record(folder)`` for every result folder found whole or made (in any thread)
    while the block runs."""
    with _recorders_lock:
        _recorders.append(record)
    try:
        yield
    finally:
        with _recorders_lock:
            _recorders[:] = [r for r in _recorders if r is not record]
