"""Diagnostic: how much of a model's test error is the blur of the training images?

    python bench/blur_gap.py RUN_DIR CHECKPOINT [--name NAME]

FER2013 as shipped in ../shared has blurred ``train/`` images and sharp ``test/`` ones.
This finds the Gaussian blur that makes the sharp test faces as blurry as the validation
faces (which come from ``train/``; the training set itself is not used, its noise
augmentation raises the sharpness score), then scores CHECKPOINT on the test set as it is
and blurred to match. The second figure is not FER2013's benchmark: it shows what the
model learnt from the data it was given. Writes bench/results/blur_gap_<name>.json.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import cv2
import numpy as np

from fer_core import store
from fer_core.checkpoint import load_model
from fer_core.device import machine_info
from fer_core.evaluate import evaluate
from fer_core.quality import sharpness

BENCH = Path(__file__).resolve().parent


def median_sharpness(images: np.ndarray, sample: int = 1000) -> float:
    step = max(1, len(images) // sample)
    return float(np.median([sharpness(np.asarray(im)) for im in images[::step]]))


def blurred(images: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(np.asarray(im), (0, 0), sigma) for im in images])


def matching_sigma(sharp: np.ndarray, target: float, *, lo: float = 0.1,
                   hi: float = 20.0) -> float:
    """Bisection on sigma: the blur whose median sharpness equals ``target``."""
    for _ in range(20):
        mid = (lo + hi) / 2
        if median_sharpness(blurred(sharp, mid), sample=300) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--name", help="result name (default: the checkpoint's folder)")
    ap.add_argument("--results", type=Path, default=BENCH / "results")
    args = ap.parse_args(argv)

    val, test = (store.load_set(args.run_dir, s) for s in ("val", "test"))
    val_s, test_s = median_sharpness(val.images), median_sharpness(test.images)
    sigma = matching_sigma(np.asarray(test.images[::7]), val_s)
    model, meta = load_model(args.checkpoint)
    matched = store.SavedSet(images=blurred(test.images, sigma), labels=test.labels,
                             classes=test.classes)
    scores = {name: {k: m[k] for k in ("accuracy", "macro_f1", "n")}
              for name, m in (("test", evaluate(model, test)),
                              ("test_blurred_to_match", evaluate(model, matched)))}
    name = args.name or args.checkpoint.parent.parent.name
    record = {"name": name, "command": shlex.join([sys.executable, *sys.argv]),
              "run_dir": str(args.run_dir), "checkpoint": str(args.checkpoint),
              "model": meta["model"], "median_sharpness_96px": {"val": val_s, "test": test_s},
              "matching_sigma_px_at_96": sigma, **scores, "machine": machine_info()}
    out = args.results / f"blur_gap_{name}.json"
    store.write_json(out, record)
    print({k: record[k] for k in ("median_sharpness_96px", "matching_sigma_px_at_96", "test",
                                  "test_blurred_to_match")})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
