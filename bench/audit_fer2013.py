"""Benchmark of the label audit (fer_core.audit.labels) on FER2013.

1. flips: a seeded random subset of a prepared run's training images (``--subset``), 5% of
   its labels changed to another class at random (seeded), k-fold out-of-sample
   probabilities and cleanlab's ranking as `fer audit` does them: precision and recall of
   the flips found, against the flip rate (what flagging at random would give), per model.
2. cli: ``fer audit RUN`` on a copy of the run's manifest (the prepared run is read, not
   changed): wall time, peak RSS, what it flags.

    .venv/bin/python bench/audit_fer2013.py [--run bench/work/fer7] [--subset 6000]
        [--models cnn,hog_logreg] [--skip-cli] [--cli-model cnn|hog_logreg]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from measure import CpuWatch, command_line, cpu_model, now, run_cli, total_ram_bytes  # noqa: E402

from fer_core import store
from fer_core.audit import labels as audit  # noqa: E402


def flip_check(run: Path, subset: int, model: str, seed: int = 0) -> dict:
    root = store.read_json(run / "prepare.json")["config"]["ingest"]["root"]
    m = store.read_frame(run / "manifest.parquet")
    cfg = audit.AuditConfig(model=model)
    rows = audit.audited_rows(m, cfg)
    classes = audit.classes_of(m)
    pick = np.sort(np.random.default_rng(seed).permutation(len(rows))[:subset])
    rows = rows.iloc[pick].reset_index(drop=True)
    faces = np.zeros((len(rows), cfg.size, cfg.size), np.uint8)
    for s, images in store.iter_image_batches(root, rows["path"].tolist(), 1024):
        faces[s:s + len(images)] = audit.grey_faces(images, cfg.size)
    noisy, flipped = audit.flip_labels(rows["label"].to_numpy(), 0.05, len(classes), seed)
    watch, t = CpuWatch(), now()
    probs = audit.out_of_sample_probs(faces, noisy, len(classes), cfg)
    fit_s = now() - t
    found = audit.ranked_issues(probs, noisy)
    scores = audit.flip_scores(found, flipped)
    # The flips' share among the likeliest: precision of the top len(flips) of the ranking.
    top = np.argsort(probs[np.arange(len(noisy)), noisy])[:int(flipped.sum())]
    return {"model": model, "images": len(rows), "folds": cfg.folds, "epochs": cfg.epochs,
            "accuracy_on_true_labels": round(float((probs.argmax(1)
                                                    == rows["label"].to_numpy()).mean()), 4),
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
            "precision_at_n_flips": round(float(flipped[top].mean()), 4),
            "fit_seconds": round(fit_s, 1), "cpu": watch.result()}


def cli_check(run: Path, work: Path, model: str) -> dict:
    """`fer audit` on a run folder that links the prepared run's files (never writes them)."""
    if work.exists():
        shutil.rmtree(work)
    (work / "sets").mkdir(parents=True)
    for name in ("manifest.parquet", "prepare.json"):
        shutil.copyfile(run / name, work / name)
    shutil.copyfile(run / "sets" / "meta.json", work / "sets" / "meta.json")
    cmd = [str(REPO / ".venv/bin/fer"), "audit", str(work), "--review", "relabel",
           "--model", model]
    result = run_cli(cmd, work.with_suffix(".log"), env={"OMP_NUM_THREADS": "1"})
    if result["returncode"] == 0:
        result["audit"] = store.read_json(work / "audit.json")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=str(REPO / "bench/work/fer7"))
    ap.add_argument("--subset", type=int, default=6000)
    ap.add_argument("--models", default="cnn,hog_logreg")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--cli-model", default="cnn", help="the model `fer audit` runs with")
    ap.add_argument("--results", default=str(REPO / "bench/results/audit_fer2013.json"))
    args = ap.parse_args()
    out = Path(args.results)
    result = {"command": command_line(),
              "machine": {"cpu": cpu_model(), "cpus": len(os.sched_getaffinity(0)),
                          "ram_bytes": total_ram_bytes()}, "flips": []}
    for model in filter(None, args.models.split(",")):
        result["flips"].append(flip_check(Path(args.run), args.subset, model))
        print(result["flips"][-1], flush=True)
        store.write_json(out, result)
    if not args.skip_cli:
        result["cli"] = cli_check(Path(args.run), REPO / "bench/work/audit_run", args.cli_model)
        store.write_json(out, result)


if __name__ == "__main__":
    main()
