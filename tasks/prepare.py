"""Thin Prefect tasks over fer_core's preparation stages.

Each task loads through the result store, calls one stage, saves, and returns a small
``Ref`` (path + content hash). Results live in the store under a key made of the input
hashes, the config and the stage's code (fer_core.cache), so only stale stages rerun.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NONE

from fer_core import align, augment, duplicates, ingest, onehot, resize, split, store
from fer_core.cache import stage_key
from fer_core.manifest import KEPT
from fer_core.progress import bar
from fer_core.store import Ref

MANIFEST = "manifest.parquet"
IMAGES = "images.npy"
# Results are files in the store, keyed by content; Prefect only passes the references.
TASK = {"cache_policy": NONE, "persist_result": False}


def _manifest(ref: Ref) -> pd.DataFrame:
    return store.read_frame(Path(ref.path) / MANIFEST)


def _save_manifest(store_root: str, stage: str, inputs: list[str], cfg, module, make) -> Ref:
    out = store.result_dir(store_root, stage, stage_key(stage, inputs=inputs, config=cfg,
                                                        modules=[module]))

    def produce(out_dir: Path) -> dict:
        manifest = make()
        store.write_frame(out_dir / MANIFEST, manifest)
        return {"rows": len(manifest)}

    return store.run_stage(out, produce)[0]


@task(name="ingest", task_run_name="ingest {cfg.root}", **TASK)
def ingest_task(cfg: ingest.IngestConfig, store_root: str) -> Ref:
    # Reading every file is the stage itself; its manifest's hash keys everything after it.
    manifest = ingest.ingest(cfg, progress=bar)
    digest = pd.util.hash_pandas_object(manifest, index=False).to_numpy().tobytes()
    return _save_manifest(store_root, "ingest", [store.bytes_sha256(digest)], cfg, ingest,
                          lambda: manifest)


@task(name="duplicates", task_run_name="sha1-duplicates", **TASK)
def duplicates_task(manifest: Ref, cfg: duplicates.DedupConfig, store_root: str) -> Ref:
    return _save_manifest(store_root, "duplicates", [manifest.sha256], cfg, duplicates,
                          lambda: duplicates.find_duplicates(_manifest(manifest), cfg))


@task(name="split", task_run_name="label-encode-and-split", **TASK)
def split_task(manifest: Ref, cfg: split.SplitConfig, store_root: str) -> Ref:
    def make():
        encoded, _ = split.encode_labels(_manifest(manifest))
        return split.split(encoded, cfg)

    return _save_manifest(store_root, "split", [manifest.sha256], cfg, split, make)


@task(name="plan-align-batches", task_run_name="plan-align-batches", **TASK)
def plan_align_batches(manifest: Ref, cfg: align.AlignConfig) -> list[list[str]]:
    return align.plan_batches(_manifest(manifest), cfg) if cfg.enabled else []


@lru_cache(maxsize=2)
def _detector(cfg: align.AlignConfig):
    return align.load_detector(cfg)


@task(name="align-batch", task_run_name="align-batch-{index}", **TASK)
def align_batch_task(paths: list[str], index: int, manifest: Ref, cfg: align.AlignConfig,
                     root: str, store_root: str) -> Ref:
    m = _manifest(manifest).set_index("path")
    sha1s = m.loc[paths, "sha1"].tolist()
    key = stage_key("align", inputs=sha1s, config=cfg, modules=[align])

    def make(out: Path) -> dict:
        found = align.detect_landmarks(store.read_images(root, paths), _detector(cfg))
        store.write_frame(out / "detections.parquet", found.assign(path=paths))
        return {"images": len(paths), "aligned": int(found["aligned"].sum())}

    return store.run_stage(store.result_dir(store_root, "align", key), make)[0]


@task(name="merge-alignment", task_run_name="merge-alignment", **TASK)
def merge_alignment_task(manifest: Ref, batches: list[Ref], store_root: str) -> Ref:
    def make():
        m = _manifest(manifest)
        for b in batches:
            found = store.read_frame(Path(b.path) / "detections.parquet")
            m = align.merge_alignment(m, found["path"].tolist(), found)
        return m

    return _save_manifest(store_root, "aligned", [manifest.sha256, *(b.sha256 for b in batches)],
                          None, align, make)


@task(name="resize", task_run_name="resize-{cfg.size}", **TASK)
def resize_task(manifest: Ref, cfg: resize.ResizeConfig, root: str, store_root: str) -> Ref:
    rows = store_rows(_manifest(manifest))
    out = store.result_dir(store_root, "resize", stage_key(
        "resize", inputs=[manifest.sha256], config=cfg, modules=[resize, align]))

    def make(out: Path) -> dict:
        writer = store.ArrayWriter(out / IMAGES, (len(rows), cfg.size, cfg.size, 3))
        batches = store.iter_image_batches(root, rows["path"].tolist(), 512)
        for start, images in bar(batches, total=-(-len(rows) // 512), desc="resize"):
            writer.append(resize.resize_batch(images, rows.iloc[start:start + len(images)], cfg))
        writer.close()
        store.write_frame(out / "index.parquet", rows[["path", "split", "label", "class"]])
        return {"images": len(rows)}

    return store.run_stage(out, make)[0]


def store_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows that have pixels in the resized array, in its order (manifest order)."""
    return manifest[(manifest["status"] == KEPT) & (manifest["split"] != "")].reset_index(drop=True)


@task(name="augment", task_run_name="augment-{cfg.plan}", **TASK)
def augment_task(resized: Ref, classes: tuple[str, ...], cfg: augment.AugmentConfig,
                 store_root: str) -> Ref:
    out = store.result_dir(store_root, "augment", stage_key(
        "augment", inputs=[resized.sha256, *classes], config=cfg, modules=[augment]))

    def make(out: Path) -> dict:
        index = store.read_frame(Path(resized.path) / "index.parquet")
        train = np.flatnonzero(index["split"].to_numpy() == "train")
        labels = index["label"].to_numpy()[train]
        rows = augment.plan_augmentation(labels, classes, cfg)
        rows.insert(1, "path", index["path"].to_numpy()[train][rows["source"]])
        images = store.read_array(Path(resized.path) / IMAGES)
        writer = store.ArrayWriter(out / IMAGES, (len(rows), *images.shape[1:]))
        for start in bar(range(0, len(rows), 1024), desc="augment"):
            part = rows.iloc[start:start + 1024]
            writer.append(augment.render_batch(images, part.assign(source=train[part["source"]])))
        writer.close()
        store.write_frame(out / "plan.parquet", rows)
        return {"before": int(len(train)), "after": int(len(rows))}

    return store.run_stage(out, make)[0]


@task(name="one-hot-and-save", task_run_name="save-sets", **TASK)
def save_task(resized: Ref, augmented: Ref, classes: tuple[str, ...], out_dir: str) -> dict:
    """One-hot labels; train/val/test sets under RUN_DIR/sets in the documented layout."""
    base = store.sets_dir(out_dir)
    index = store.read_frame(Path(resized.path) / "index.parquet")
    plan = store.read_frame(Path(augmented.path) / "plan.parquet")
    images = store.read_array(Path(resized.path) / IMAGES)
    counts = {}
    store.link_or_copy(Path(augmented.path) / IMAGES, base / "train" / IMAGES)
    _save_labels(base / "train", plan["label"].to_numpy(), len(classes),
                 plan[["path", "noise"]].rename(columns={"path": "source"}))
    counts["train"] = len(plan)
    for name in ("val", "test"):
        pos = np.flatnonzero(index["split"].to_numpy() == name)
        if name == "test" and not len(pos):
            continue
        store.write_array(base / name / IMAGES, images[pos])
        _save_labels(base / name, index["label"].to_numpy()[pos], len(classes),
                     pd.DataFrame({"source": index["path"].to_numpy()[pos], "noise": "none"}))
        counts[name] = len(pos)
    store.write_json(base / store.SETS_META, {
        "classes": list(classes), "image_size": [int(images.shape[1]), int(images.shape[2])],
        "channels": "RGB", "scale": 255, "splits": counts})
    return counts


def _save_labels(folder: Path, labels: np.ndarray, n_classes: int, sources: pd.DataFrame) -> None:
    store.write_array(folder / "labels.npy", onehot.one_hot(labels, n_classes))
    store.write_csv(folder / "sources.csv", sources)
