"""New classes from few images: does fine-tuning beat training from scratch?

A model is trained from scratch on FER2013 with one class held out (``--held-out``,
default surprise), then fine-tuned with bench/configs/finetune_small.yaml on 50 and on 200
training images per class that now include the held-out class (its head row starts fresh,
the six others keep theirs by name); the same images also train a model from scratch with
the same epochs. Each is scored on all of FER2013's test split: overall accuracy, macro-F1,
and the held-out class's recall (its accuracy). The small sets' images are disjoint from
the base model's. Faces: FER2013's 48x48 grey JPEGs, upscaled to 96x96 RGB as `fer prepare`
saves them (no alignment: a crop is already a face). Training goes through
fer_core.train.loop.fit (what `fer train`'s task runs), without Prefect.

Sized for a loaded 2-core CPU (6-13 minutes): vgg_faces, ``--base-per-class`` images
per class and ``--base-epochs`` for the base model, ``--epochs`` for the small runs.

    .venv/bin/python bench/finetune_small.py            # -> bench/results/finetune_small.json
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, recall_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import measure  # noqa: E402
from fer_core import store  # noqa: E402
from fer_core.models.checkpoint import load_model  # noqa: E402
from fer_core.train.loop import TrainConfig, fit  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FAST = {"device": "cpu", "cpu_amp": True, "channels_last": True, "num_threads": None}


def read_fer(tarball: Path, want: dict[str, int]) -> dict[tuple[str, str], list[np.ndarray]]:
    """(subset, class) -> 96x96 RGB faces in archive order, at most want[subset] each."""
    got: dict[tuple[str, str], list[np.ndarray]] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if len(parts) != 4 or not m.isfile() or parts[1] not in want:
                continue
            faces = got.setdefault((parts[1], parts[2]), [])
            if len(faces) >= want[parts[1]]:
                continue
            grey = cv2.imdecode(np.frombuffer(tar.extractfile(m).read(), np.uint8), 0)
            grey = cv2.resize(grey, (96, 96), interpolation=cv2.INTER_LINEAR)
            faces.append(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))
    return got


def write_run(run: Path, classes: tuple[str, ...], splits: dict[str, dict[str, list]]) -> Path:
    """A run folder in fer prepare's layout: splits[split][class] -> faces."""
    counts = {}
    for split, by_class in splits.items():
        imgs = [f for c in classes for f in by_class[c]]
        codes = [k for k, c in enumerate(classes) for _ in by_class[c]]
        store.write_array(run / "sets" / split / "images.npy", np.stack(imgs))
        store.write_array(run / "sets" / split / "labels.npy",
                          np.eye(len(classes), dtype=np.uint8)[codes])
        counts[split] = len(codes)
    store.write_json(run / "sets" / store.SETS_META,
                     {"classes": list(classes), "image_size": [96, 96], "channels": "RGB",
                      "scale": 255, "splits": counts})
    return run


def predicted_names(checkpoint: Path, test_x: np.ndarray) -> np.ndarray:
    """The checkpoint's class name for each uint8 NHWC face (its forward on pixels / 255)."""
    model, meta = load_model(checkpoint)
    x = torch.from_numpy(test_x).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + 512]).argmax(1) for i in range(0, len(x), 512)])
    return np.asarray(meta["classes"])[pred.numpy()]


def tuned_and_scratch(weights: str | Path, epochs: int) -> tuple[TrainConfig, TrainConfig]:
    """bench/configs/finetune_small.yaml from ``weights``, and the same recipe from scratch
    (no frozen epochs, one learning rate), vgg_faces on the CPU either way."""
    recipe = TrainConfig.from_file(REPO / "bench" / "configs" / "finetune_small.yaml")
    tuned = recipe.model_copy(update={"model": "vgg_faces", "epochs": epochs,
                                      "weights": str(weights), **FAST})
    return tuned, tuned.model_copy(update={"weights": None, "freeze_epochs": 0,
                                           "backbone_lr_scale": 1.0})


def fine_tune_vs_scratch(run: Path, weights: str | Path, epochs: int, score,
                         row: dict, start: str) -> list[dict]:
    """Fine-tune ``weights`` on ``run`` and train from scratch on it, each scored by
    ``score(best checkpoint)``; one result row each (``row`` plus what was measured)."""
    rows = []
    for label, cfg in zip((f"fine-tuned from {start}", "scratch"),
                          tuned_and_scratch(weights, epochs), strict=True):
        t = time.perf_counter()
        r = fit(run, cfg, out_dir=run / label.split()[0], resume=False)
        rows.append({"training": label, **row, "epochs": epochs,
                     "train_seconds": round(time.perf_counter() - t, 1),
                     **score(r.best_checkpoint)})
        print(rows[-1], flush=True)
    return rows


def scores(checkpoint: Path, test_x: np.ndarray, test_y: np.ndarray, held: int) -> dict:
    # Map the model's class order to CLASSES (a base model lacks the held-out class).
    pred = np.array([CLASSES.index(c) for c in predicted_names(checkpoint, test_x)])
    return {"test_accuracy": round(accuracy_score(test_y, pred), 4),
            "test_macro_f1": round(f1_score(test_y, pred, average="macro"), 4),
            "held_out_recall": round(recall_score(test_y, pred, labels=[held],
                                                  average="macro"), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "fer2013.tar.gz"))
    ap.add_argument("--held-out", default="surprise", choices=CLASSES)
    ap.add_argument("--base-per-class", type=int, default=1500)
    ap.add_argument("--base-epochs", type=int, default=6)
    ap.add_argument("--base-config", default=None,
                    help="the base model's recipe (e.g. bench/configs/cpu_30min.yaml, its "
                         "epochs set by --base-epochs); default: AdamW at lr 2e-3, batch 64, "
                         "sized for a loaded machine")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--sizes", default="50,200")
    ap.add_argument("--work", default=str(REPO / "bench" / "work" / "finetune_small"))
    ap.add_argument("--results", default=str(REPO / "bench" / "results" / "finetune_small.json"))
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    work, held = Path(a.work), CLASSES.index(a.held_out)
    t0, watch = time.perf_counter(), measure.CpuWatch()
    # Per class, in archive order: val | small sets | base. Disgust has 436 training faces:
    # its val and small sets come first, so each small set holds every class in full; the
    # base takes what is left (at most --base-per-class).
    n_val, base0 = 40, 40 + max(sizes)
    faces = read_fer(Path(a.data), {"train": base0 + a.base_per_class, "test": 10**6})
    test_x = np.stack([f for c in CLASSES for f in faces[("test", c)]])
    test_y = np.array([k for k, c in enumerate(CLASSES) for _ in faces[("test", c)]])
    val = {c: faces[("train", c)][:n_val] for c in CLASSES}
    six = tuple(c for c in CLASSES if c != a.held_out)
    base_run = write_run(work / "base", six, {
        "train": {c: faces[("train", c)][base0:] for c in six}, "val": val})
    if a.base_config:
        base_cfg = TrainConfig.from_file(a.base_config).model_copy(
            update={"model": "vgg_faces", "epochs": a.base_epochs, **FAST})
    else:
        base_cfg = TrainConfig(model="vgg_faces", epochs=a.base_epochs, batch_size=64,
                               lr=2e-3, weight_decay=1e-4, warmup_epochs=0, patience=0, **FAST)
    base = fit(base_run, base_cfg, out_dir=work / "base" / "out", resume=False)
    counts = {c: len(faces[("train", c)][base0:]) for c in six}
    rows = [{"training": f"base (scratch, no {a.held_out})", "images_per_class": counts,
             "epochs": a.base_epochs, **scores(base.best_checkpoint, test_x, test_y, held)}]
    for n in sizes:
        run = write_run(work / f"n{n}", CLASSES, {
            "train": {c: faces[("train", c)][n_val:n_val + n] for c in CLASSES}, "val": val})
        rows += fine_tune_vs_scratch(run, base.best_checkpoint, a.epochs,
                                     lambda ckpt: scores(ckpt, test_x, test_y, held),
                                     {"images_per_class": n}, "base")
    measure.write_result(Path(a.results), {
        "what": "new class from few images: fine-tuned vs from scratch, FER2013 test split "
                f"({len(test_y)} faces, {int((test_y == held).sum())} {a.held_out})",
        "command": measure.shown_command([sys.executable, *sys.argv]),
        "base_config": a.base_config or "inline (lr 2e-3, batch 64)",
        "held_out": a.held_out, "val_per_class": n_val, "recipe": "bench/configs/"
        "finetune_small.yaml (epochs, device and CPU speed options overridden)",
        "rows": rows, "wall_seconds": round(time.perf_counter() - t0, 1), "cpu": watch.result()})


if __name__ == "__main__":
    main()
