"""Thin Prefect tasks over fer_core's preparation stages.

Each task loads through the result store, calls one stage, saves, and returns a small
``Ref`` (path + content hash). Where the result goes is its cache key (tasks/caching.py).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pandas as pd
from prefect import task

from fer_core import store
from fer_core.prepare import (
    align,
    augment,
    augment_classes,
    detect,
    duplicates,
    groups,
    ingest,
    quality,
    resize,
    split,
)
from fer_core.prepare import batches as batching
from fer_core.runtime.progress import bar
from fer_core.store import Ref, stage_files
from fer_core.store.keys import content_fingerprint, stage_key
from fer_core.store.stage_files import IMAGES, read_manifest
from tasks.caching import result_dir, task_options


def _ingest_dir(a) -> Path:
    # What ingest reads is its files' content: their SHA-1s and paths in the data folder,
    # not where the folder is (cfg.root is left out of keys), so a moved, re-extracted or
    # mounted copy hits. Their stat (ctime included) only decides which are read again.
    content = content_fingerprint(a["cfg"].root, stage_files.sha1_memo(a["store_root"]),
                                  algorithm="sha1")
    # A labels file counts by its content (its options are in the config).
    labels = a["cfg"].labels
    inputs = [content, *([f"labels:{store.file_sha256(labels.file)}"] if labels else [])]
    return result_dir(a["store_root"], "ingest", inputs, a["cfg"], [ingest, stage_files])


@task(name="ingest", task_run_name="ingest {cfg.root}", **task_options(_ingest_dir))
def ingest_task(cfg: ingest.IngestConfig, store_root: str) -> Ref:
    """A file unchanged since the folder's last ingest (same path, inode, size, mtime and
    ctime) is not read again: its SHA-1, decode check and sharpness come from there."""
    reuse = ingest.reuse_key(cfg)

    def make(out: Path) -> dict:
        previous = stage_files.previous_ingest_files(store_root, reuse)
        manifest, inspected = ingest.ingest_files(cfg, progress=bar, previous=previous)
        store.write_frame(stage_files.ingest_files_path(store_root, out), inspected)
        return {**stage_files.write_manifest(out, manifest), "reuse": reuse,
                "previous_files": 0 if previous is None else len(previous)}

    return store.run_stage(_ingest_dir(locals()), make)[0]


def _duplicates_dir(a) -> Path:
    return result_dir(a["store_root"], "duplicates", [a["manifest"].sha256], a["cfg"],
                      [duplicates, stage_files])


@task(name="duplicates", task_run_name="duplicates", **task_options(_duplicates_dir))
def duplicates_task(manifest: Ref, cfg: duplicates.DedupConfig, store_root: str) -> Ref:
    return stage_files.manifest_stage(_duplicates_dir(locals()),
                                lambda: duplicates.find_duplicates(read_manifest(manifest), cfg))


def _split_dir(a) -> Path:
    near = a.get("near")
    return result_dir(a["store_root"], "split",
                      [a["manifest"].sha256, near.sha256 if near else "no-near-duplicates"],
                      a["cfg"], [split, groups, stage_files])


@task(name="split", task_run_name="split", **task_options(_split_dir))
def split_task(manifest: Ref, cfg: split.SplitConfig, store_root: str,
               near: Ref | None = None) -> Ref:
    """Whole groups (``near``: the near-duplicate stage's result, whose pairs join them)."""
    def make() -> pd.DataFrame:
        pairs = stage_files.read_table(near, stage_files.PAIRS) if near else None
        return split.encode_and_split(read_manifest(manifest), cfg, pairs)

    return stage_files.manifest_stage(_split_dir(locals()), make)


@task(name="quality", task_run_name="quality", **task_options(None))
def quality_task(manifest: Ref, cfg: quality.QualityConfig) -> list[str]:
    """Warn (in the run's log) when one split is far blurrier than another."""
    from prefect import get_run_logger

    warnings = quality.split_warnings(read_manifest(manifest), cfg)
    for line in warnings:
        get_run_logger().warning(line)
    return warnings


@task(name="plan-align-batches", task_run_name="plan-align-batches", **task_options(None))
def plan_align_batches(manifest: Ref, cfg: align.AlignConfig) -> list[dict]:
    return batching.align_plan(read_manifest(manifest), cfg)


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
        store.write_frame(out / stage_files.DETECTIONS, found.assign(path=paths))
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


@task(name="align-batch", task_run_name="align-batch-cached-{count}", **task_options(None))
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
    failed = {f["index"] for f in a["failed"]}
    found = sealed_align_batches(a["batches"], a["cfg"], a["store_root"])
    inputs = [a["manifest"].sha256, *(found[i].sha256 for i in sorted(found) if i not in failed),
              *(f"failed:{p}" for f in a["failed"] for p in f["paths"])]
    return result_dir(a["store_root"], "aligned", inputs, None, [align, batching, stage_files])


@task(name="merge-alignment", task_run_name="merge-alignment", **task_options(_merge_dir))
def merge_alignment_task(manifest: Ref, batches: list[dict], failed: list[dict],
                         cfg: align.AlignConfig, store_root: str) -> Ref:
    """The align sub-flow's batch results, read through the store (a batch's result is
    where its key says), merged into the manifest; the failed batches' images marked.
    Reading them through ``store.cached`` also records them as this run's (for gc)."""
    def make():
        gone = {f["index"] for f in failed}
        found = sealed_align_batches(batches, cfg, store_root)
        missing = [i for i in range(len(batches)) if i not in found and i not in gone]
        if missing:
            raise RuntimeError(f"alignment batch(es) {missing} have no result in {store_root} "
                               "and did not fail: was the store changed during the run?")
        tables = [stage_files.read_table(found[i], stage_files.DETECTIONS)
                  for i in sorted(found) if i not in gone]
        return batching.merge_batches(read_manifest(manifest), tables, failed)

    return stage_files.manifest_stage(_merge_dir(locals()), make)


RESIZE_CODE = [resize, align, batching, stage_files]


def _resize_dir(a) -> Path:
    return result_dir(a["store_root"], "resize", [a["manifest"].sha256, str(a["batch_size"])],
                      a["cfg"], RESIZE_CODE)


def _resize_batch_dir(store_root: str, rows, cfg: resize.ResizeConfig) -> Path:
    return result_dir(store_root, "resize/batch", batching.batch_key_lines(rows), cfg,
                      RESIZE_CODE)


@task(name="resize", task_run_name="resize-{cfg.size}", **task_options(_resize_dir))
def resize_task(manifest: Ref, cfg: resize.ResizeConfig, root: str, store_root: str,
                batch_size: int = align.AlignConfig().batch_size) -> Ref:
    """Resized images per alignment batch, each a sealed result keyed on its images' bytes
    and alignment (a rerun redoes only the batches whose images changed); the stage's
    result is the index (manifest order) of where each image's pixels are."""
    def make(out: Path) -> dict:
        m = read_manifest(manifest)
        parts = batching.resize_batches(m, batch_size)
        folders = [_resize_batch_dir(store_root, b, cfg) for b in parts]

        def produce(i: int, folder: Path) -> dict:
            images = store.read_images(root, parts[i]["path"].tolist())
            store.write_array(folder / IMAGES, resize.resize_batch(images, parts[i], cfg))
            return {"images": len(parts[i])}

        stale = sum(store.cached(f, full=False) is None for f in folders)
        sealed = store.sealed_parts(out, produce, bar(folders, total=len(folders),
                                                      desc=f"resize ({stale} batches)"))
        # Each image's content key: its own inputs and how it is resized (augment keys a
        # class's work on its images' keys).
        recipe = stage_key("resize/batch", inputs=[], config=cfg, modules=RESIZE_CODE)
        index = batching.resize_index(m, parts, [os.path.relpath(f, out) for f in folders],
                                      recipe)
        store.write_frame(out / stage_files.INDEX, index)
        return {"images": len(index), "batches": len(parts), "resized_batches": stale,
                "shape": [cfg.size, cfg.size, 3], store.REQUIRES: sealed}

    return store.run_stage(_resize_dir(locals()), make)[0]


def _augment_dir(a) -> Path:
    return result_dir(a["store_root"], "augment", [a["resized"].sha256, *a["classes"]], a["cfg"],
                      [augment, augment_classes, stage_files])


@task(name="augment", task_run_name="augment-{cfg.plan}", **task_options(_augment_dir))
def augment_task(resized: Ref, classes: tuple[str, ...], cfg: augment.AugmentConfig,
                 store_root: str) -> Ref:
    """Each class's noisy images a sealed result of their own, keyed on that class's images
    and draws (a rerun renders again only the classes whose images changed); the stage's
    result is the training set's plan in its reshuffled order, and where each row's pixels
    are (save puts them together, in the run folder)."""
    def make(out: Path) -> dict:
        index = stage_files.read_table(resized, stage_files.INDEX)
        plan = augment_classes.class_plan(index, classes, cfg)
        shape = stage_files.resized_shape(resized)
        # Read just each chunk's sources: the whole pre-augmented set never sits in memory.
        read = lambda positions: stage_files.read_resized(resized, index, positions)  # noqa: E731
        folders = [result_dir(store_root, "augment/class", [augment_classes.part_key(plan, c)],
                              None, [augment, augment_classes, stage_files])
                   for c in range(len(classes))]
        stale = [c for c, f in enumerate(folders) if store.cached(f, full=False) is None]

        def produce(c: int, folder: Path) -> dict:
            n = augment_classes.noisy_count(plan, c)
            stage_files.write_rows(folder / IMAGES, (n, *shape),
                                   augment_classes.render_class(plan, c, read))
            return {"class": classes[c], "noisy": n}

        sealed = store.sealed_parts(out, produce, folders)
        # The set itself is put together where it is published (save): the store would
        # otherwise hold, and a rerun write, a second copy of every training image.
        store.write_frame(out / stage_files.PLAN, plan.rows)
        store.write_frame(out / stage_files.ASSEMBLY, augment_classes.assembly(plan))
        return {"before": int(len(plan.train)), "after": int(len(plan.rows)),
                "shape": [len(plan.rows), *shape],
                "parts": [os.path.relpath(f, out) for f in folders],
                "rendered_classes": [classes[c] for c in stale], store.REQUIRES: sealed}

    return store.run_stage(_augment_dir(locals()), make)[0]
