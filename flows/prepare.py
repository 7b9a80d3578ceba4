"""The paper's data preparation (sections 4-5) as a Prefect flow, one line per stage."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from fer_core import ingest, store
from fer_core.config import PrepareConfig, build_config
from fer_core.split import classes_of
from tasks.prepare import (
    _manifest,
    align_batch_task,
    augment_task,
    duplicates_task,
    ingest_task,
    merge_alignment_task,
    plan_align_batches,
    resize_task,
    save_task,
    split_task,
)
from tasks.reports import reports_task


def prepare_sets(cfg: PrepareConfig, out_dir: str, store_root: str | None = None) -> dict:
    """Run every preparation stage of ``cfg`` and save the sets under ``out_dir``."""
    store_root = store_root or str(Path(out_dir) / "store")
    root = ingest.data_root(cfg.ingest.root)
    manifest = ingest_task(cfg.ingest, store_root)                          # 4: read (OpenCV)
    manifest = duplicates_task(manifest, cfg.dedup, store_root)             # 4: SHA-1 duplicates
    manifest = split_task(manifest, cfg.split, store_root)                  # 4: encode, 80/20
    classes = classes_of(_manifest(manifest))
    batches = plan_align_batches(manifest, cfg.align)                       # 5: MTCNN alignment
    found = align_batch_task.map(batches, range(len(batches)), unmapped(manifest),
                                 unmapped(cfg.align), unmapped(root), unmapped(store_root))
    manifest = merge_alignment_task(manifest, found.result(), store_root)
    resized = resize_task(manifest, cfg.resize, root, store_root)           # 5: 96x96, /255 on load
    augmented = augment_task(resized, classes, cfg.augment, store_root)     # 5: noise augmentation
    counts = save_task(resized, augmented, classes, out_dir)                # 5: one-hot, save
    reports = reports_task(manifest, resized, augmented, classes, root, out_dir)
    return {"classes": list(classes), "sets": counts, "reports": reports,
            "manifest": str(Path(out_dir) / "manifest.parquet")}


@flow(name="prepare", task_runner=ThreadPoolTaskRunner(max_workers=1), log_prints=True)
def prepare(data: str, out: str, classes: str | None = None, class_map: str | None = None,
            augment: str = "auto", align: bool = True, config_file: str | None = None,
            store_root: str | None = None) -> dict:
    """Prepare a labelled face folder as the paper does: manifest to saved, augmented sets."""
    cfg = build_config(data, file=config_file, classes=classes, class_map=class_map,
                       augment=augment, align=align)
    result = prepare_sets(cfg, out, store_root)
    store.write_json(Path(out) / "prepare.json", {"config": cfg.to_dict(), **result})
    return result
