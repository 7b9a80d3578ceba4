"""The files inside the preparation's stage results, read and written by their layout.

A stage result is a sealed folder (``fer_core.store.results``); this module knows what lies
in it: a manifest, the resized images as one array per batch with an index of where each
image's pixels are, an augmentation plan, and the ingest's files table beside (not in) its
result. Stages return data; ``write_files`` saves a {relative path: data} mapping by each
path's suffix, so a stage's outputs are written in one place, the same way every time.

Not imported by ``fer_core.store`` itself: a stage whose result goes through here names this
module in its key, so a change here reruns only those stages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.store.arrays import ArrayWriter, read_rows, write_array
from fer_core.store.files import Ref, read_json, write_csv, write_figure, write_frame, write_json
from fer_core.store.locks import locked
from fer_core.store.publish import publish_files
from fer_core.store.results import DONE, cached, note_result, result_meta, run_stage

MANIFEST = "manifest.parquet"
IMAGES = "images.npy"
INDEX = "index.parquet"  # of a resize result: each image's batch folder and row in it
PLAN = "plan.parquet"  # of an augment result: the augmented training set's rows
ASSEMBLY = "assembly.parquet"  # of an augment result: where each of those rows' pixels are
DETECTIONS = "detections.parquet"  # of an alignment batch
PAIRS = "pairs.parquet"  # of the near-duplicate stage: the pairs it found
INGEST_FILES = "ingest-files"  # beside the ingest results: each one's files table
FILE_SHA1S = "file-sha1s.json"  # in the store: each data file's SHA-1 while its stat holds
HASHES = "hashes"  # in the store: per-image hashes by content, one table per way of hashing
SEARCHES = "searches"  # in the store: the last near-duplicate search, one per way of searching


def sha1_memo(store_root: str | os.PathLike) -> Path:
    """The store's index of data files' SHA-1s (``fer_core.store.keys.file_hashes``), which
    key ingest: a file whose stat is unchanged is not read to key it again."""
    return Path(store_root) / FILE_SHA1S


def read_manifest(result: Ref) -> pd.DataFrame:
    return pd.read_parquet(Path(result.path) / MANIFEST)


def read_table(result: Ref, name: str) -> pd.DataFrame:
    """A parquet table of a result (``INDEX``, ``PLAN``, ``DETECTIONS``, ...)."""
    return pd.read_parquet(Path(result.path) / name)


def write_manifest(out: str | os.PathLike, manifest: pd.DataFrame) -> dict:
    """The manifest as a stage's result; returns the stage's meta."""
    write_frame(Path(out) / MANIFEST, manifest)
    return {"rows": len(manifest)}


def manifest_stage(out: str | os.PathLike, make) -> Ref:
    """The sealed result in ``out`` whose one file is the manifest ``make()`` returns
    (called only when ``out`` holds no whole result)."""
    return run_stage(out, lambda folder: write_manifest(folder, make()))[0]


def write_files(out: str | os.PathLike, files: Mapping[str, object]) -> list[Path]:
    """Each ``{path relative to out: data}`` by its suffix: ``.parquet`` a frame, ``.csv`` a
    frame (no index), ``.npy`` an array, ``.json`` JSON, ``.png`` a matplotlib Figure."""
    writers = {".parquet": write_frame, ".csv": write_csv, ".npy": write_array,
               ".json": write_json, ".png": write_figure}
    written = []
    for rel, data in files.items():
        path = Path(out) / rel
        suffix = path.suffix.lower()
        if suffix not in writers:
            raise ValueError(f"{rel}: no writer for '{suffix}' files ({sorted(writers)})")
        writers[suffix](path, data)
        written.append(path)
    return written


def publish_result(result: Ref, dst: str | os.PathLike,
                   run_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every file of a sealed result (not its seal) into ``dst`` at the same relative
    path, as copies recorded in ``run_dir`` (default ``dst``; ``store.publish_files``);
    returns the targets."""
    pairs = [(p, Path(dst) / p.relative_to(result.path))
             for p in sorted(Path(result.path).rglob("*")) if p.is_file() and p.name != DONE]
    publish_files(pairs, run_dir or dst)
    return [d for _, d in pairs]


# --- resized images, one array per batch ------------------------------------------------


def resized_shape(resized: Ref) -> tuple[int, ...]:
    return tuple(result_meta(resized)["shape"])


def read_resized(resized: Ref, index: pd.DataFrame, positions) -> np.ndarray:
    """Rows ``positions`` of the resized images (``index`` is its index.parquet), read from
    the per-batch arrays: only these rows are in memory."""
    positions = np.asarray(positions, dtype=np.int64)
    out = np.empty((len(positions), *resized_shape(resized)), np.uint8)
    if not len(positions):
        return out
    part = index.iloc[positions]
    batches, rows = part["batch"].to_numpy(), part["row"].to_numpy()
    for batch in pd.unique(batches):
        where = np.flatnonzero(batches == batch)
        out[where] = read_rows(Path(resized.path) / batch / IMAGES, rows[where])
    return out


def copy_resized(resized: Ref, index: pd.DataFrame, positions, dst: str | os.PathLike, *,
                 chunk: int = 4096) -> Ref:
    """Rows ``positions`` of the resized images into one array, ``chunk`` rows at a time."""
    positions = np.asarray(positions, dtype=np.int64)
    writer = ArrayWriter(dst, (len(positions), *resized_shape(resized)))
    try:
        for start in range(0, len(positions), chunk):
            writer.append(read_resized(resized, index, positions[start:start + chunk]))
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def write_rows(dst: str | os.PathLike, shape: Sequence[int], parts, *,
               digest: bool = True) -> Ref | None:
    """An array of ``shape`` from the row blocks that ``parts`` yields, streamed."""
    writer = ArrayWriter(dst, tuple(shape))
    try:
        for rows in parts:
            writer.append(rows)
    except BaseException:
        writer.abort()
        raise
    return writer.close(digest=digest)


# --- per-image hashes kept between runs, by the image's content ----------------------------


def hashes_path(store_root: str | os.PathLike, key: str) -> Path:
    """The table of per-image hashes made one way (``key``: the hashing's parameters and
    code): {image content key: its hashes}, shared by every run on this store."""
    return Path(store_root) / HASHES / f"{key[:24]}.parquet"


def read_hashes(store_root: str | os.PathLike, key: str) -> dict[str, np.ndarray]:
    """The hashes kept so far (none when the table is missing or unreadable: a hint only,
    every entry is a pure function of the content its key names)."""
    path = hashes_path(store_root, key)
    try:
        table = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - a damaged table: hash those images again
        return {}
    note_result(path)  # this run uses the table: gc keeps it while the run folder exists
    # Kept as int64 (Parquet's integers): the same 64 bits.
    return {k: np.asarray(h, np.int64).view(np.uint64)
            for k, h in zip(table["key"], table["hashes"], strict=True)}


def add_hashes(store_root: str | os.PathLike, key: str, new: Mapping[str, np.ndarray]) -> None:
    """Keep ``new`` in the table too (under its lock: runs sharing the store add theirs)."""
    if not new:
        return
    path = hashes_path(store_root, key)
    with locked(path):
        table = {**read_hashes(store_root, key), **new}
        write_frame(path, pd.DataFrame({"key": list(table),
                                        "hashes": [np.asarray(h, np.uint64).view(np.int64).tolist()
                                                   for h in table.values()]}))
    note_result(path)


def last_search_path(store_root: str | os.PathLike, key: str) -> Path:
    """The last near-duplicate search made one way (``key``: everything its pairs depend on
    besides the images): the images it saw and the pairs it found."""
    return Path(store_root) / SEARCHES / f"{key[:24]}.parquet"


def read_last_search(store_root: str | os.PathLike,
                     key: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(rows, pairs) of the last search (None when missing or unreadable: a hint only, a
    pair's verdict is a function of its two images' content and subsets)."""
    path = last_search_path(store_root, key)
    try:
        with locked(path, shared=True):
            table = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - damaged or absent: search everything
        return None
    note_result(path)
    # One table, so that no reader sees one run's rows with another's pairs: the rows
    # (role "row") and the pairs (role "pair", path_b set) share its columns.
    rows = table[table["role"] == "row"]
    pairs = table[table["role"] == "pair"]
    return (rows[["path", "sha1", "subset"]].reset_index(drop=True),
            pairs[["path", "path_b", "probe", "distance", "fine_distance"]]
            .rename(columns={"path": "path_a"}).astype({c: "int64" for c in
                                                        ("probe", "distance", "fine_distance")})
            .reset_index(drop=True))


def write_last_search(store_root: str | os.PathLike, key: str, rows: pd.DataFrame,
                      pairs: pd.DataFrame) -> None:
    path = last_search_path(store_root, key)
    table = pd.concat([rows.assign(role="row"),
                       pairs.rename(columns={"path_a": "path"}).assign(role="pair")],
                      ignore_index=True)
    with locked(path):
        write_frame(path, table)
    note_result(path)


# --- the files table beside each ingest result ------------------------------------------


def ingest_files_path(store_root: str | os.PathLike, result: str | os.PathLike) -> Path:
    """Where the files table of the ingest result ``result`` lies: beside it, not in it,
    so the result's hash (which keys every later stage) stays that of the manifest alone,
    whatever the files' inodes and times."""
    return Path(store_root) / INGEST_FILES / f"{Path(result).name}.parquet"


def previous_ingest_files(store_root: str | os.PathLike, reuse: str,
                          stage: str = "ingest") -> pd.DataFrame | None:
    """The files table of the newest sealed ingest result whose meta ``reuse`` is ``reuse``
    (a hint only: a row is used while its file's stat is unchanged; an unreadable table is
    none)."""
    best = None
    for done in Path(store_root, stage).glob(f"*/{DONE}"):
        try:
            meta = read_json(done).get("meta", {})
            if meta.get("reuse") == reuse and cached(done.parent, full=False):
                stamp = done.stat().st_mtime_ns
                if best is None or stamp > best[0]:
                    best = (stamp, ingest_files_path(store_root, done.parent))
        except (OSError, ValueError):
            continue
    if best is None:
        return None
    try:
        return pd.read_parquet(best[1])
    except Exception:  # noqa: BLE001 - a damaged hint: inspect every file again
        return None
