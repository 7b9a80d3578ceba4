"""Section 5's last step as a task: one-hot labels, and the sets saved under RUN_DIR/sets.

The saved sets are a stage result like the others: sealed in the store under a key made of
the content they are made from (the resized and augmented results, the manifest, the
classes, and each subset's list file by its bytes), then published into RUN_DIR/sets
as copies (fer_core.store.publish). A rerun with nothing changed rewrites nothing; an
edited list file redoes this stage alone. The Prefect task itself is never skipped as
cached: publishing into the run folder (which may be new, or share its store with other
runs) must happen every time; a file unchanged since it was published is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect import task

from fer_core import store
from fer_core.prepare import onehot, sets
from fer_core.prepare import subsets as subsets_mod
from fer_core.prepare.subsets import SubsetSpec
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
        # the data). The training array stays where augment sealed it (RUN_DIR/sets gets a
        # copy of it): not copied here, nor hashed a second time.
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
    store.publish_files([(Path(augmented.path) / stage_files.IMAGES,
                          base / "train" / stage_files.IMAGES),
                         *((Path(saved.path) / part / stage_files.IMAGES, base / rel)
                           for rel, part in done["images"].items())], out_dir)
    stage_files.publish_result(saved, base, out_dir)
    return {**done["counts"], **done["subsets"]}


def _images_dir(store_root: str, index, positions) -> Path:
    """Where a split's images are kept: keyed on each image's content, in order."""
    content = index["content"].to_numpy()[positions]
    return result_dir(store_root, "save/images", list(content), None, [stage_files])


def _copy(resized: Ref, index, positions, folder: Path) -> dict:
    stage_files.copy_resized(resized, index, positions, folder / stage_files.IMAGES)
    return {"images": len(positions)}
