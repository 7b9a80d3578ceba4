"""Benchmark: choose a trained model's test-time augmentation on validation (issue 32).

    python bench/tta_fer2013.py bench/results/train_shipped_mixup.json

Scores the result's model (the checkpoint in RUN_DIR trained with the result's config to
its best epoch: ``measure.result_checkpoint``) on every saved split with each TTA of
``fer_core.models.tta`` (none, mirror, five crops, ten crops) through
``fer_core.evaluate.checkpoints.score_run``, what ``fer evaluate`` runs, and chooses the
TTA with the best validation macro-F1: the rule that chose the epoch. Test and PrivateTest
are only reported. Writes bench/results/tta_<name>.json (the scores and the scoring time of
each TTA, the choice, the checkpoint's sha256, the command and the machine);
``bench/ship_model.py --tta-result`` ships the model with that choice. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from measure import REPO, result_checkpoint, shown_path, write_result  # noqa: E402
from train_fer2013 import scores  # noqa: E402

from fer_core import store  # noqa: E402 - after the path set-up above
from fer_core.evaluate.checkpoints import score_run  # noqa: E402
from fer_core.models.spec import TTA_MODES  # noqa: E402

CHOSEN_ON = ("val", "macro_f1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", type=Path, help="bench/results/train_<name>.json")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    result = store.read_json(args.result)
    best = result_checkpoint(result)
    result_run = REPO / result["run_dir"]  # absolute stays absolute
    modes = {}
    for mode in TTA_MODES:
        t0 = time.perf_counter()
        metrics, _ = score_run(best, result_run, tta=mode)
        modes[mode] = {"scores": scores(metrics), "seconds": time.perf_counter() - t0}
        shown = {s: round(100 * m["accuracy"], 2) for s, m in modes[mode]["scores"].items()}
        print(f"{mode}: accuracy {shown} in {modes[mode]['seconds']:.0f} s", flush=True)
    split, key = CHOSEN_ON
    chosen = max(TTA_MODES, key=lambda m: modes[m]["scores"][split][key])
    out = write_result(args.results / f"tta_{result['name']}.json", {
        "name": result["name"], "result": shown_path(args.result),
        "checkpoint": {"path": shown_path(best), "sha256": store.file_sha256(best)},
        "chosen_on": f"{split} {key}", "chosen": chosen, "modes": modes})
    print(f"chosen on {split} {key}: {chosen}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
