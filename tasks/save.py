"""Section 5's last step as a task: one-hot labels, and the sets saved under RUN_DIR/sets.

The saved sets are a stage result like the others: sealed in the store under a key made of
the content they are made from (the resized and augmented results, the manifest, the
classes, and each subset's list file by its bytes), then published into RUN_DIR/sets
without a copy. A rerun with nothing changed rewrites nothing; an edited list file redoes
this stage alone. The Prefect task itself is never skipped as cached: publishing into the
run folder (which may be new, or share its store with other runs) must happen every time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task

from fer_core import store
from fer_core.prepare import onehot
from fer_core.prepare import subsets as subsets_mod
from fer_core.prepare.subsets import SubsetSpec
from fer_core.store import Ref
from tasks.caching import result_dir, task_options
from tasks.prepare import IMAGES, read_manifest, read_resized

INDEX = "index.npy"


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
    return result_dir(_store_root(a), "save", inputs, None, [onehot, subsets_mod])


@task(name="one-hot-and-save", task_run_name="save-sets", **task_options(None))
def save_task(resized: Ref, augmented: Ref, classes: tuple[str, ...], out_dir: str,
              subsets: tuple[SubsetSpec, ...] = (), manifest: Ref | None = None,
              store_root: str | None = None) -> dict:
    """Train/val/test images, one-hot labels and sources, and each named subset as row
    indices into its parent split, in the layout of docs/FORMATS.md. Returns the number
    of images per split and subset."""
    augmented_images = Path(augmented.path) / IMAGES

    def make(out: Path) -> dict:
        index = store.read_frame(Path(resized.path) / "index.parquet")
        plan = store.read_frame(Path(augmented.path) / "plan.parquet")
        shape = store.result_meta(resized)["shape"]
        # The training array stays where augment sealed it (RUN_DIR/sets links to it): not
        # copied, nor hashed a second time here.
        _save_labels(out / "train", plan["label"].to_numpy(), len(classes),
                     plan[["path", "noise"]].rename(columns={"path": "source"}))
        counts = {"train": len(plan)}
        paths = {}
        for name in ("val", "test"):
            pos = np.flatnonzero(index["split"].to_numpy() == name)
            if name == "test" and not len(pos):
                continue
            # In chunks: a split's images never sit in memory whole (prepare's memory
            # must not grow with the data).
            _copy_resized(resized, index, pos, out / name / IMAGES)
            paths[name] = index["path"].to_numpy()[pos]
            _save_labels(out / name, index["label"].to_numpy()[pos], len(classes),
                         pd.DataFrame({"source": paths[name], "noise": "none"}))
            counts[name] = len(pos)
        meta = {"classes": list(classes),
                "image_size": [int(shape[0]), int(shape[1])],
                "channels": "RGB", "scale": 255, "splits": counts}
        if subsets:
            meta["subsets"] = _save_subsets(out, subsets, paths, manifest)
        store.write_json(out / store.SETS_META, meta)
        return {"counts": counts,
                "subsets": {n: s["n"] for n, s in meta.get("subsets", {}).items()}}

    saved, _ = store.run_stage(_save_dir(locals()), make)
    base = store.sets_dir(out_dir)
    store.publish(augmented_images, base / "train" / IMAGES)
    for path in sorted(Path(saved.path).rglob("*")):
        rel = path.relative_to(saved.path)
        if path.is_file() and rel.name != store.DONE:
            store.publish(path, base / rel)
    done = store.result_meta(saved)
    return {**done["counts"], **done["subsets"]}


def _copy_resized(resized: Ref, index: pd.DataFrame, pos: np.ndarray, dst: Path,
                  chunk: int = 4096) -> None:
    """Rows ``pos`` of the resized images into one array, ``chunk`` rows at a time."""
    writer = store.ArrayWriter(dst, (len(pos), *store.result_meta(resized)["shape"]))
    try:
        for start in range(0, len(pos), chunk):
            writer.append(read_resized(resized, index, pos[start:start + chunk]))
    except BaseException:
        writer.abort()
        raise
    writer.close()


def _save_subsets(out: Path, specs: tuple[SubsetSpec, ...], paths: dict[str, np.ndarray],
                  manifest: Ref | None) -> dict:
    frame = read_manifest(manifest) if manifest is not None else None
    recorded = {}
    for spec in specs:
        parent = paths.get(spec.parent, np.array([], dtype=object))
        entries = subsets_mod.parse_list(store.read_bytes(spec.list_path).decode("utf-8-sig"))
        found = subsets_mod.match(entries, parent.tolist(), frame, parent=spec.parent)
        subsets_mod.check_matched(spec, found, parent.tolist())
        rel = f"{spec.name}/{INDEX}"
        store.write_array(out / rel, found.rows)
        store.write_csv(out / spec.name / "sources.csv",
                        pd.DataFrame({"source": parent[found.rows], "row": found.rows}))
        recorded[spec.name] = {"parent": spec.parent, "index": rel,
                               "list": Path(spec.list_path).name,
                               "list_sha256": store.file_sha256(spec.list_path),
                               **subsets_mod.summary(found)}
    return recorded


def _save_labels(folder: Path, labels: np.ndarray, n_classes: int, sources: pd.DataFrame) -> None:
    store.write_array(folder / "labels.npy", onehot.one_hot(labels, n_classes))
    store.write_csv(folder / "sources.csv", sources)
