"""Thin Prefect tasks over fer_core's preparation stages.

Each task loads through the result store, calls one stage, saves, and returns a small
``Ref`` (path + content hash). Where the result goes is its cache key (tasks/caching.py).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task

from fer_core import align, augment, detect, duplicates, ingest, quality, resize, split, store
from fer_core.manifest import KEPT
from fer_core.progress import bar
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


@task(name="ingest", task_run_name="ingest {cfg.root}", **task_options(_ingest_dir))
def ingest_task(cfg: ingest.IngestConfig, store_root: str) -> Ref:
    return _manifest_stage(_ingest_dir(locals()), lambda: ingest.ingest(cfg, progress=bar))


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
    return result_dir(a["store_root"], "resize", [a["manifest"].sha256], a["cfg"], [resize, align])


@task(name="resize", task_run_name="resize-{cfg.size}", **task_options(_resize_dir))
def resize_task(manifest: Ref, cfg: resize.ResizeConfig, root: str, store_root: str) -> Ref:
    def make(out: Path) -> dict:
        rows = store_rows(read_manifest(manifest))
        writer = store.ArrayWriter(out / IMAGES, (len(rows), cfg.size, cfg.size, 3))
        batches = store.iter_image_batches(root, rows["path"].tolist(), 512)
        for start, images in bar(batches, total=-(-len(rows) // 512), desc="resize"):
            writer.append(resize.resize_batch(images, rows.iloc[start:start + len(images)], cfg))
        writer.close()
        store.write_frame(out / "index.parquet", rows[["path", "split", "label", "class"]])
        return {"images": len(rows)}

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
        source = Path(resized.path) / IMAGES
        writer = store.ArrayWriter(out / IMAGES, (len(rows), *store.read_array(source).shape[1:]))
        for start in bar(range(0, len(rows), 1024), desc="augment"):
            part = rows.iloc[start:start + 1024]
            # Read just this batch's sources: the whole pre-augmented set never sits in memory.
            images = store.read_rows(source, train[part["source"]])
            writer.append(augment.render_batch(images, part.assign(source=np.arange(len(part)))))
        writer.close()
        store.write_frame(out / "plan.parquet", rows)
        return {"before": int(len(train)), "after": int(len(rows))}

    return store.run_stage(_augment_dir(locals()), make)[0]
