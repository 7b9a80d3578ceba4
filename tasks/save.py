"""Section 5's last step as a task: one-hot labels, and the sets saved under RUN_DIR/sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task

from fer_core import onehot, store
from fer_core.store import Ref
from tasks.caching import task_options
from tasks.prepare import IMAGES


@task(name="one-hot-and-save", task_run_name="save-sets", **task_options(None))
def save_task(resized: Ref, augmented: Ref, classes: tuple[str, ...], out_dir: str) -> dict:
    """Train/val/test images, one-hot labels and sources in the layout of docs/FORMATS.md."""
    base = store.sets_dir(out_dir)
    index = store.read_frame(Path(resized.path) / "index.parquet")
    plan = store.read_frame(Path(augmented.path) / "plan.parquet")
    images = store.read_array(Path(resized.path) / IMAGES)
    # The augmented training array is already in the store: publish it without a copy.
    store.link_or_copy(Path(augmented.path) / IMAGES, base / "train" / IMAGES)
    _save_labels(base / "train", plan["label"].to_numpy(), len(classes),
                 plan[["path", "noise"]].rename(columns={"path": "source"}))
    counts = {"train": len(plan)}
    for name in ("val", "test"):
        pos = np.flatnonzero(index["split"].to_numpy() == name)
        if name == "test" and not len(pos):
            continue
        store.write_array(base / name / IMAGES, store.read_rows(Path(resized.path) / IMAGES, pos))
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
