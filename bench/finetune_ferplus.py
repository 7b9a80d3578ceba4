"""New labels from few images: the shipped FER2013 model fine-tuned to FER+'s 8 labels,
against training from scratch on the same images.

FER+ is prepared as users prepare it (``fer prepare FER2013 --labels ferplus_votes.csv
--preset ferplus --augment none``, majority labels; ``--no-align`` skips MTCNN), then
``--sizes`` training faces per class (FER+ Training; all of them for a class with fewer:
contempt has 119) and up to 40 validation faces per class (PublicTest) make small runs.
Each is fine-tuned from the shipped model (``--weights fer2013``: its 7 rows kept by class
name, contempt's fresh) with bench/configs/finetune_small.yaml, and trained from scratch
with the same recipe (bench/finetune_small.py's code). The shipped model as it is scores
too (its 7 classes mapped by name; it never says contempt). Scored on every face of FER+'s
test split (PrivateTest) by its majority label: accuracy, macro-F1 and recall per class.

NOT a clean test of new data: every training face here is a FER2013 Training face that the
shipped model was trained (or validated) on with FER2013's labels; only the labels are new.

    .venv/bin/python bench/finetune_ferplus.py          # -> bench/results/finetune_ferplus.json
    .venv/bin/python bench/finetune_ferplus.py --per-class-data 60 --sizes 5 --epochs 3 \\
        --no-align --results bench/work/finetune_ferplus_smoke.json       # a smoke run
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import measure  # noqa: E402
from bench.finetune_small import fine_tune_vs_scratch, predicted_names, write_run  # noqa: E402
from bench.prepare_fer2013 import extract  # noqa: E402
from fer_core import store  # noqa: E402
from fer_core.models.reference import resolve_model  # noqa: E402
from fer_core.models.transfer import canonical  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
VAL_PER_CLASS = 40
SEEN = ("These training faces are FER2013 Training images: the shipped model (fer2013) was "
        "trained on them (or chose its epoch on them) with FER2013's 7 labels; only FER+'s "
        "labels are new to it. The test faces (PrivateTest) were not trained on, but the "
        "shipped model was scored on them (its test_private). Not a test on unseen faces.")


def by_class(saved: store.SavedSet, n: int | None, seed: int) -> dict[str, np.ndarray]:
    """Up to ``n`` faces of each class (None: all), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, c in enumerate(saved.classes):
        rows = np.flatnonzero(saved.targets == k)
        rows = np.sort(rng.permutation(rows)[:n]) if n is not None else rows
        out[c] = np.asarray(saved.images[rows]) if len(rows) else \
            np.empty((0, *saved.images.shape[1:]), np.uint8)
    return out


def scores(names: np.ndarray, test_y: np.ndarray, classes: tuple[str, ...]) -> dict:
    """``names`` (a model's class names) against the majority labels, classes by name."""
    pred = np.array([next((k for k, c in enumerate(classes) if canonical(c) == canonical(p)),
                          -1) for p in names])
    labels = list(range(len(classes)))
    recall = recall_score(test_y, pred, labels=labels, average=None, zero_division=0)
    return {"test_accuracy": round(accuracy_score(test_y, pred), 4),
            "test_macro_f1": round(f1_score(test_y, pred, labels=labels, average="macro",
                                            zero_division=0), 4),
            "test_recall": {c: round(float(r), 4) for c, r in zip(classes, recall,
                                                                 strict=True)}}


def prepare(a) -> tuple[Path, dict]:
    data = a.data or extract(SHARED / "fer2013.tar.gz", a.work, a.per_class_data)
    run = a.work / "ferplus_prepared"
    shutil.rmtree(run, ignore_errors=True)
    cmd = [str(REPO / ".venv" / "bin" / "fer"), "prepare", str(data), "--labels",
           str(a.votes), "--preset", "ferplus", "--augment", "none", "--out", str(run),
           *(["--no-align"] if a.no_align else [])]
    measured = measure.run_cli(cmd, a.work / "ferplus_prepare.log")
    if measured["returncode"]:
        print("\n".join(measured["log_tail"]))
        raise SystemExit(1)
    return run, measured


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="FER2013's folder (default: extract the tarball)")
    ap.add_argument("--per-class-data", type=int, help="extract only the first N files of "
                    "each FER2013 folder (a smoke run)")
    ap.add_argument("--votes", type=Path, default=SHARED / "ferplus_votes.csv")
    ap.add_argument("--no-align", action="store_true", help="skip MTCNN (the shipped model "
                    "was trained on aligned faces)")
    ap.add_argument("--sizes", default="50,200")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "finetune_ferplus")
    ap.add_argument("--results", type=Path,
                    default=REPO / "bench" / "results" / "finetune_ferplus.json")
    a = ap.parse_args()
    t0, watch = time.perf_counter(), measure.CpuWatch()
    a.work.mkdir(parents=True, exist_ok=True)
    prepared, prep = prepare(a)
    train, test = store.load_set(prepared, "train"), store.load_set(prepared, "test")
    classes = train.classes
    test_x, test_y = np.array(test.images), test.targets  # a writable copy for torch
    val = by_class(store.load_set(prepared, "val"), VAL_PER_CLASS, a.seed)
    shipped = resolve_model("fer2013")
    rows = [{"training": "shipped fer2013 model, not fine-tuned", "images_per_class": 0,
             **scores(predicted_names(shipped, test_x), test_y, classes)}]
    for n in [int(s) for s in a.sizes.split(",")]:
        small = by_class(train, n, a.seed)
        run = write_run(a.work / f"n{n}", classes, {"train": small, "val": val})
        rows += fine_tune_vs_scratch(
            run, shipped, a.epochs, lambda ckpt: scores(predicted_names(ckpt, test_x), test_y,
                                                        classes),
            {"images_per_class": {c: len(f) for c, f in small.items()}}, "shipped fer2013")
    measure.write_result(a.results, {
        "what": "new labels from few images: the shipped FER2013 model fine-tuned to FER+'s 8 "
                "labels vs from scratch; FER+ test split (PrivateTest), majority labels",
        "caveat_faces_seen": SEEN, "prepare": prep,
        "test_faces": {c: int((test_y == k).sum()) for k, c in enumerate(classes)},
        "val_per_class": VAL_PER_CLASS, "aligned": not a.no_align,
        "recipe": "bench/configs/finetune_small.yaml (epochs, device and CPU speed options "
                  "overridden)", "rows": rows,
        "wall_seconds": round(time.perf_counter() - t0, 1), "cpu": watch.result()})
    print(f"wrote {a.results}")


if __name__ == "__main__":
    main()
