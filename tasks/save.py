"""Section 5's last step as a task: one-hot labels, and the sets saved under RUN_DIR/sets.

The saved sets are a stage result like the others: sealed in the store under a key made of
the content they are made from (the resized and augmented results, the manifest, the
classes, and each subset's list file by its bytes), then published into RUN_DIR/sets
as copies (fer_core.store.publish); the training set is put together there from augment's
result, and so is never stored twice. A rerun with nothing changed rewrites nothing; an
edited list file redoes this stage alone. The Prefect task itself is never skipped as
cached: publishing into the run folder (which may be new, or share its store with other
runs) must happen every time; a file unchanged since it was published is left alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from prefect import task

from fer_core import store
from fer_core.prepare import augment, augment_classes, onehot, sets
from fer_core.prepare import subsets as subsets_mod
from fer_core.prepare.subsets import SubsetSpec
from fer_core.runtime.progress import bar
from fer_core.store import Ref, stage_files
from tasks.caching import result_dir, task_options


def _store_root(a) -> str:
    return a.get("store_root") or str(Path(a["out_dir"]) / "store")


def _save_dir(a) -> Path:
    inputs = [a["resized"].sha256, a["augmented"].sha256, *a["classes"]]
    if a.get("manifest") is not None:
        inputs.append(a["manifest"].sha256)
    # A list file counts by its bytes (and its name, which meta.json records), not its path:
    # the same list beside another copy of the data is the same subset.
    inputs += [f"subset:{s.name}:{s.parent}:{Path(s.list_path).name}:"
               f"{store.file_sha256(s.list_path)}" for s in a.get("subsets") or ()]
    return result_dir(_store_root(a), "save", inputs, None,
                      [onehot, subsets_mod, sets, stage_files])


@task(name="save-sets", task_run_name="save-sets", **task_options(None))
def save_task(resized: Ref, augmented: Ref, classes: tuple[str, ...], out_dir: str,
              subsets: tuple[SubsetSpec, ...] = (), manifest: Ref | None = None,
              store_root: str | None = None) -> dict:
    """Train/val/test images, one-hot labels and sources, and each named subset as row
    indices into its parent split, in the layout of docs/FORMATS.md. Returns the number
    of images per split and subset."""
    def make(out: Path) -> dict:
        index = stage_files.read_table(resized, stage_files.INDEX)
        lists = [sets.SubsetList(spec=s, text=store.read_bytes(s.list_path).decode("utf-8-sig"),
                                 sha256=store.file_sha256(s.list_path)) for s in subsets]
        # The manifest names why a listed image matched nothing, and holds the distributions.
        frame = stage_files.read_manifest(manifest) if manifest is not None else None
        saved = sets.sets_layout(index, stage_files.read_table(augmented, stage_files.PLAN),
                                 classes, stage_files.resized_shape(resized), lists, frame)
        # Each split's images a sealed result of their own, keyed on their content: a split
        # whose images are unchanged is neither copied again nor published again. In chunks:
        # a split's images never sit in memory whole (prepare's memory must not grow with
        # the data). The training array is not stored at all: it is put together from
        # augment's result straight into RUN_DIR/sets (below).
        parts = {rel: _images_dir(store_root, index, positions)
                 for rel, positions in saved.images.items()}
        names = list(parts)
        sealed = store.sealed_parts(out, lambda i, folder: _copy(
            resized, index, saved.images[names[i]], folder), list(parts.values()))
        stage_files.write_files(out, saved.files)
        return {"counts": saved.counts, "subsets": saved.subsets,
                "images": {rel: os.path.relpath(f, out) for rel, f in parts.items()},
                store.REQUIRES: sealed}

    store_root = _store_root(locals())
    saved, _ = store.run_stage(_save_dir(locals()), make)
    base = store.sets_dir(out_dir)
    done = store.result_meta(saved)
    store.publish_made(base / "train" / stage_files.IMAGES,
                       *_training_images(resized, augmented), out_dir)
    store.publish_files([(Path(saved.path) / part / stage_files.IMAGES, base / rel)
                         for rel, part in done["images"].items()], out_dir)
    stage_files.publish_result(saved, base, out_dir)
    return {**done["counts"], **done["subsets"]}


def _training_images(resized: Ref, augmented: Ref) -> tuple[str, Callable[[Path], None]]:
    """What the augmented training set is made of (each row's image by its content key, or
    its class's rendered image by its place), and how to write it: streamed from the
    resized images and the classes' rendered ones, as augment's result says."""
    index = stage_files.read_table(resized, stage_files.INDEX)
    rows = stage_files.read_table(augmented, stage_files.ASSEMBLY)
    meta = store.result_meta(augmented)
    content = index["content"].to_numpy()[rows["position"].to_numpy()]
    made_of = "\n".join(c if n < 0 else f"{meta['parts'][p]}#{n}" for c, p, n in
                        zip(content, rows["part"].to_numpy(), rows["noisy"].to_numpy(),
                            strict=True))
    source = hashlib.sha256(f"{meta['shape']}\n{made_of}".encode()).hexdigest()
    parts = [Path(augmented.path) / p / stage_files.IMAGES for p in meta["parts"]]

    def write(dst: Path) -> None:
        chunks = augment_classes.assemble(
            rows, lambda positions: stage_files.read_resized(resized, index, positions),
            lambda code, places: store.read_rows(parts[code], places))
        stage_files.write_rows(dst, meta["shape"], bar(
            chunks, total=-(-len(rows) // augment.RENDER_CHUNK), desc="training set"),
            digest=False)

    return source, write


def _images_dir(store_root: str, index, positions) -> Path:
    """Where a split's images are kept: keyed on each image's content, in order."""
    content = index["content"].to_numpy()[positions]
    return result_dir(store_root, "save/images", list(content), None, [stage_files])


def _copy(resized: Ref, index, positions, folder: Path) -> dict:
    stage_files.copy_resized(resized, index, positions, folder / stage_files.IMAGES)
    return {"images": len(positions)}
