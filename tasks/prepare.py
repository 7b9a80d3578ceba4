"""Thin Prefect tasks over fer_core's preparation stages.

Each task loads through the result store, calls one stage, saves, and returns a small
``Ref`` (path + content hash). Where the result goes is its cache key (tasks/caching.py).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task

from fer_core import store
from fer_core.prepare import align, augment, detect, duplicates, ingest, quality, resize, split
from fer_core.prepare.manifest import KEPT
from fer_core.runtime.progress import bar
from fer_core.store import Ref
from tasks.caching import result_dir, task_options

MANIFEST = "manifest.parquet"
IMAGES = "images.npy"


def read_manifest(ref: Ref) -> pd.DataFrame:
    return store.read_frame(Path(ref.path) / MANIFEST)


def _manifest_stage(out: Path, make) -> Ref:
    def produce(out_dir: Path) -> dict:
        manifest = make()
        store.write_frame(out_dir / MANIFEST, manifest)
        return {"rows": len(manifest)}

    return store.run_stage(out, produce)[0]


def _ingest_dir(a) -> Path:
    # What ingest reads is the data folder: its files' paths, sizes and mtimes key it.
    fingerprint = store.folder_fingerprint(a["cfg"].root)
    return result_dir(a["store_root"], "ingest", [fingerprint], a["cfg"], [ingest])


def _ingest_reuse_key(cfg: ingest.IngestConfig) -> str:
    """What an earlier ingest's per-file inspections are valid for: the same folder, the
    same ingest code (its whole closure) and the same minimum size."""
    from fer_core.store.keys import stage_key

    return stage_key("ingest-files", inputs=[str(Path(cfg.root).resolve())],
                     config={"min_size": cfg.min_size}, modules=[ingest])


def _files_path(store_root: str, out: Path) -> Path:
    # Beside the sealed result, not in it: the result's hash (which keys every later stage)
    # stays that of the manifest alone, whatever the files' inodes and times.
    return Path(store_root) / "ingest-files" / f"{out.name}.parquet"


def _previous_files(store_root: str, reuse: str) -> pd.DataFrame | None:
    """The files table of the newest sealed ingest of this folder in the store (a hint
    only: a row is used while its file's stat is unchanged; an unreadable table is none)."""
    best = None
    for done in Path(store_root, "ingest").glob(f"*/{store.DONE}"):
        try:
            meta = store.read_json(done).get("meta", {})
            if meta.get("reuse") == reuse and store.cached(done.parent, full=False):
                stamp = done.stat().st_mtime_ns
                if best is None or stamp > best[0]:
                    best = (stamp, _files_path(store_root, done.parent))
        except (OSError, ValueError):
            continue
    if best is None:
        return None
    try:
        return store.read_frame(best[1])
    except Exception:  # noqa: BLE001 - a damaged hint: inspect every file again
        return None


@task(name="ingest", task_run_name="ingest {cfg.root}", **task_options(_ingest_dir))
def ingest_task(cfg: ingest.IngestConfig, store_root: str) -> Ref:
    """A file unchanged since the folder's last ingest (same path, inode, size, mtime and
    ctime) is not read again: its SHA-1, decode check and sharpness come from there."""
    reuse = _ingest_reuse_key(cfg)

    def make(out: Path) -> dict:
        previous = _previous_files(store_root, reuse)
        manifest, files = ingest.ingest_files(cfg, progress=bar, previous=previous)
        store.write_frame(out / MANIFEST, manifest)
        store.write_frame(_files_path(store_root, out), files)
        return {"rows": len(manifest), "reuse": reuse,
                "previous_files": 0 if previous is None else len(previous)}

    return store.run_stage(_ingest_dir(locals()), make)[0]


def _duplicates_dir(a) -> Path:
    return result_dir(a["store_root"], "duplicates", [a["manifest"].sha256], a["cfg"], [duplicates])


@task(name="duplicates", task_run_name="sha1-duplicates", **task_options(_duplicates_dir))
def duplicates_task(manifest: Ref, cfg: duplicates.DedupConfig, store_root: str) -> Ref:
    return _manifest_stage(_duplicates_dir(locals()),
                           lambda: duplicates.find_duplicates(read_manifest(manifest), cfg))


def _split_dir(a) -> Path:
    return result_dir(a["store_root"], "split", [a["manifest"].sha256], a["cfg"], [split])


@task(name="split", task_run_name="label-encode-and-split", **task_options(_split_dir))
def split_task(manifest: Ref, cfg: split.SplitConfig, store_root: str) -> Ref:
    def make() -> pd.DataFrame:
        encoded, _ = split.encode_labels(read_manifest(manifest))
        return split.split(encoded, cfg)

    return _manifest_stage(_split_dir(locals()), make)


@task(name="quality", task_run_name="sharpness-per-split", **task_options(None))
def quality_task(manifest: Ref, cfg: quality.QualityConfig) -> list[str]:
    """Warn (in the run's log) when one split is far blurrier than another."""
    from prefect import get_run_logger

    warnings = quality.sharpness_warnings(quality.sharpness_table(read_manifest(manifest)), cfg)
    for line in warnings:
        get_run_logger().warning(line)
    return warnings


@task(name="plan-align-batches", task_run_name="plan-align-batches", **task_options(None))
def plan_align_batches(manifest: Ref, cfg: align.AlignConfig) -> list[dict]:
    if not cfg.enabled:
        return []
    return [{"paths": b["path"].tolist(), "sha1s": b["sha1"].tolist()}
            for b in align.plan_batches(read_manifest(manifest), cfg)]


@lru_cache(maxsize=2)
def _detector(cfg: align.AlignConfig):
    return align.load_detector(cfg)


def _align_dir(a) -> Path:
    # Keyed by the batch's image content alone: other batches never invalidate it.
    return result_dir(a["store_root"], "align", a["batch"]["sha1s"], a["cfg"], [align, detect])


@task(name="align-batch", task_run_name="align-batch-{index}", **task_options(_align_dir))
def align_batch_task(batch: dict, index: int, cfg: align.AlignConfig, root: str,
                     store_root: str) -> Ref:
    paths = batch["paths"]

    def make(out: Path) -> dict:
        found = align.detect_landmarks(store.read_images(root, paths), _detector(cfg), cfg)
        store.write_frame(out / "detections.parquet", found.assign(path=paths))
        return {"images": len(paths), "aligned": int(found["aligned"].sum())}

    return store.run_stage(_align_dir(locals()), make)[0]


def sealed_align_batches(batches: list[dict], cfg: align.AlignConfig,
                         store_root: str) -> dict[int, Ref]:
    """The batches whose alignment result is sealed and whole (by its files' sizes, as the
    task's cache key checks): {batch index: its Ref}."""
    found = {}
    for i, batch in enumerate(batches):
        out = _align_dir({"batch": batch, "cfg": cfg, "store_root": store_root})
        done = store.cached(out, full=False)
        if done is not None:
            found[i] = Ref(path=str(out), sha256=done["sha256"])
    return found


@task(name="align-batch", task_run_name="align-batches-cached-{count}", **task_options(None))
def reuse_align_batches_task(batches: list[dict], indices: list[int], count: int,
                             cfg: align.AlignConfig, store_root: str):
    """The alignment batches already in the store, in one task run rather than one each:
    the run is shown ``Cached``, and returns [batch index, path, hash] of each. A batch that is
    gone by now is left out (the flow aligns it)."""
    from prefect.states import Completed

    found = sealed_align_batches([batches[i] for i in indices], cfg, store_root)
    refs = [[indices[j], r.path, r.sha256] for j, r in sorted(found.items())]
    return Completed(data=refs, name="Cached", message=f"{len(refs)} of {len(batches)} "
                     "alignment batches reused from the store")


def _merge_dir(a) -> Path:
    inputs = [a["manifest"].sha256, *(b.sha256 for b in a["batches"]),
              *(f"failed:{p}" for f in a["failed"] for p in f["paths"])]
    return result_dir(a["store_root"], "aligned", inputs, None, [align])


@task(name="merge-alignment", task_run_name="merge-alignment", **task_options(_merge_dir))
def merge_alignment_task(manifest: Ref, batches: list[Ref], failed: list[dict],
                         store_root: str) -> Ref:
    def make() -> pd.DataFrame:
        m = read_manifest(manifest)
        for b in batches:
            found = store.read_frame(Path(b.path) / "detections.parquet")
            m = align.merge_alignment(m, found["path"].tolist(), found)
        for f in failed:
            m = align.mark_failed(m, f["paths"], f["error"])
        return m

    return _manifest_stage(_merge_dir(locals()), make)


def store_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows that have pixels in the resized array, in its order (manifest order)."""
    return manifest[(manifest["status"] == KEPT) & (manifest["split"] != "")].reset_index(drop=True)


def _resize_dir(a) -> Path:
    return result_dir(a["store_root"], "resize", [a["manifest"].sha256, str(a["batch_size"])],
                      a["cfg"], [resize, align])


# What a resized image is made of: its bytes (sha1) and the alignment applied to them.
_RESIZE_INPUTS = ("path", "sha1", "aligned", "left_eye_x", "left_eye_y", "right_eye_x",
                  "right_eye_y")


def resize_batches(manifest: pd.DataFrame, batch_size: int) -> list[pd.DataFrame]:
    """The rows to resize, in the alignment's content-defined batches (align.plan_batches):
    one changed, added or removed image changes one batch; the others keep their keys."""
    rows = store_rows(manifest).set_index("path", drop=False)
    return [rows.loc[b["path"].tolist(), list(_RESIZE_INPUTS)].reset_index(drop=True)
            for b in align.plan_batches(manifest, align.AlignConfig(batch_size=batch_size))]


def _resize_batch_dir(store_root: str, rows: pd.DataFrame, cfg: resize.ResizeConfig) -> Path:
    lines = ["\t".join(map(repr, r)) for r in rows.itertuples(index=False, name=None)]
    return result_dir(store_root, "resize/batch", lines, cfg, [resize, align])


def read_resized(resized: Ref, index: pd.DataFrame, positions) -> np.ndarray:
    """Rows ``positions`` of the resized images (``index`` is its index.parquet), read from
    the per-batch arrays: only these rows are in memory."""
    positions = np.asarray(positions, dtype=np.int64)
    shape = tuple(store.result_meta(resized)["shape"])
    out = np.empty((len(positions), *shape), np.uint8)
    if not len(positions):
        return out
    part = index.iloc[positions]
    batches, rows = part["batch"].to_numpy(), part["row"].to_numpy()
    for batch in pd.unique(batches):
        where = np.flatnonzero(batches == batch)
        out[where] = store.read_rows(Path(resized.path) / batch / IMAGES, rows[where])
    return out


@task(name="resize", task_run_name="resize-{cfg.size}", **task_options(_resize_dir))
def resize_task(manifest: Ref, cfg: resize.ResizeConfig, root: str, store_root: str,
                batch_size: int = align.AlignConfig.batch_size) -> Ref:
    """Resized images per alignment batch, each a sealed result keyed on its images' bytes
    and alignment (a rerun redoes only the batches whose images changed); the stage's
    result is the index (manifest order) of where each image's pixels are."""
    def make(out: Path) -> dict:
        m = read_manifest(manifest)
        rows = store_rows(m)
        batches = resize_batches(m, batch_size)
        folders = [_resize_batch_dir(store_root, b, cfg) for b in batches]

        def produce(i: int, folder: Path) -> dict:
            b = batches[i]
            images = store.read_images(root, b["path"].tolist())
            store.write_array(folder / IMAGES, resize.resize_batch(images, b, cfg))
            return {"images": len(b)}

        stale = sum(store.cached(f, full=False) is None for f in folders)
        parts = store.sealed_parts(out, produce, bar(folders, total=len(folders),
                                                     desc=f"resize ({stale} batches)"))
        where = {p: (os.path.relpath(f, out), j) for f, b in zip(folders, batches, strict=True)
                 for j, p in enumerate(b["path"].tolist())}
        index = rows[["path", "split", "label", "class"]].copy()
        index["batch"] = [where[p][0] for p in index["path"]]
        index["row"] = np.array([where[p][1] for p in index["path"]], dtype=np.int64)
        store.write_frame(out / "index.parquet", index)
        return {"images": len(rows), "batches": len(batches), "resized_batches": stale,
                "shape": [cfg.size, cfg.size, 3], store.REQUIRES: parts}

    return store.run_stage(_resize_dir(locals()), make)[0]


def _augment_dir(a) -> Path:
    return result_dir(a["store_root"], "augment", [a["resized"].sha256, *a["classes"]], a["cfg"],
                      [augment])


@task(name="augment", task_run_name="augment-{cfg.plan}", **task_options(_augment_dir))
def augment_task(resized: Ref, classes: tuple[str, ...], cfg: augment.AugmentConfig,
                 store_root: str) -> Ref:
    def make(out: Path) -> dict:
        index = store.read_frame(Path(resized.path) / "index.parquet")
        train = np.flatnonzero(index["split"].to_numpy() == "train")
        labels = index["label"].to_numpy()[train]
        rows = augment.plan_augmentation(labels, classes, cfg)
        rows.insert(1, "path", index["path"].to_numpy()[train][rows["source"]])
        shape = tuple(store.result_meta(resized)["shape"])
        writer = store.ArrayWriter(out / IMAGES, (len(rows), *shape))
        for start in bar(range(0, len(rows), 1024), desc="augment"):
            part = rows.iloc[start:start + 1024]
            # Read just this batch's sources: the whole pre-augmented set never sits in memory.
            images = read_resized(resized, index, train[part["source"]])
            writer.append(augment.render_batch(images, part.assign(source=np.arange(len(part)))))
        writer.close()
        store.write_frame(out / "plan.parquet", rows)
        return {"before": int(len(train)), "after": int(len(rows))}

    return store.run_stage(_augment_dir(locals()), make)[0]
