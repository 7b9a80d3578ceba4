"""Stage results: sealed folders that are reused while whole and recomputed otherwise."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from fer_core.store.files import Ref, file_sha256, read_json, write_json

__all__ = [
    "DONE",
    "result_dir",
    "cached",
    "folder_fingerprint",
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
    for rel, digest in (done.get("requires") or {}).items():
        # A result made of other sealed results (by reference) is whole while they are.
        part = cached(out_dir / rel, full=False)
        if part is None or part["sha256"] != digest:
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


def mark_done(out_dir: str | os.PathLike, meta: dict | None = None, *,
              requires: dict[str, str] | None = None) -> dict:
    """Seal a result: record every file's size and hash; the result's hash is over those.

    ``requires``: other sealed results this one refers to, {path relative to ``out_dir``:
    their hash}; ``cached`` trusts this one only while each of them is whole and the same.
    """
    out_dir = Path(out_dir)
    files = {p.relative_to(out_dir).as_posix(): _file_entry(p)
             for p in sorted(out_dir.rglob("*")) if p.is_file() and p.name != DONE
             and not p.name.endswith(".tmp")}
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    done = {"files": files, "sha256": digest, "meta": meta or {}}
    if requires:
        done["requires"] = dict(sorted(requires.items()))
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
    requires = meta.pop(REQUIRES, None) if isinstance(meta, dict) else None
    done = mark_done(out_dir, meta, requires=requires)
    return Ref(path=str(out_dir), sha256=done["sha256"]), False


# A key of the meta that ``produce`` returns to ``run_stage``: the sealed results this one
# refers to ({path relative to its folder: hash}), recorded by ``mark_done``, not as meta.
REQUIRES = "_requires"


def sealed_parts(base: str | os.PathLike, produce_part, keys: list[Path], *,
                 full: bool = False) -> dict[str, str]:
    """Sealed part results (e.g. one per batch), made by ``produce_part(i, folder)`` where
    not whole (by their files' sizes unless ``full``) and reused otherwise.
    Returns {path relative to ``base``: hash} for ``REQUIRES``."""
    out = {}
    for i, folder in enumerate(keys):
        folder = Path(folder)
        done = cached(folder, full=full)
        if done is None:
            with contextlib.suppress(FileNotFoundError):
                (folder / DONE).unlink()
            folder.mkdir(parents=True, exist_ok=True)
            done = mark_done(folder, produce_part(i, folder))
        out[os.path.relpath(folder, base)] = done["sha256"]
    return out


def result_meta(result: Ref) -> dict:
    return read_json(Path(result.path) / DONE)["meta"]
