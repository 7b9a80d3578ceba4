"""The align stage against bare batched MTCNN on the same images (issue 10: >= 90%).

One measure: images/s of the align stage's task body (``tasks.prepare.align_batch_task.fn``:
files read and decoded, MTCNN with the retry passes for the faces it misses, detections
stored in a fresh store) as a share of bare ``MTCNN.detect(batch, landmarks=True)`` on the
same batch decoded beforehand. The two alternate batch by batch (the order swapped every
batch), in this process at the same torch threads, so both see the same load from other
jobs on a shared machine; both are warmed up first on 32 images, untimed.

The batches are the stage's own (``align.plan_batches`` of a prepared run's manifest, the
run's align config): give ``--run`` a run made by ``fer prepare`` (e.g. the run of
bench/prepare_fer2013.py), or ``--data`` to have ``fer prepare DATA --out WORK/run
--no-align`` make the manifest first. Usage::

    .venv/bin/python bench/align_vs_mtcnn.py --run bench/work/prepare_run/run --images 4096
    .venv/bin/python bench/align_vs_mtcnn.py --data /tmp/small --images 64 --results /tmp/a.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (HERE, REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from measure import CpuWatch, now, rate, run_cli, write_result  # noqa: E402


def align_config(saved: dict):
    """The run's AlignConfig, from the config its prepare.json records."""
    from fer_core.prepare.align import AlignConfig

    return AlignConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})


def planned(run: Path, limit: int | None):
    """The run's align batches (path, sha1 lists), cut to their first ``limit`` images,
    its data root and its align config."""
    import pandas as pd

    from fer_core.prepare import align, ingest

    saved = json.loads((run / "prepare.json").read_text())["config"]
    cfg = align_config({**saved["align"], "enabled": True})
    manifest = pd.read_parquet(run / "manifest.parquet")
    out, n = [], 0
    for b in align.plan_batches(manifest, cfg):
        if limit and n >= limit:
            break
        b = b.iloc[:limit - n] if limit else b
        out.append({"paths": b["path"].tolist(), "sha1s": b["sha1"].tolist()})
        n += len(b)
    return out, ingest.data_root(saved["ingest"]["root"]), cfg


def interleaved(batches: list[dict], root: str, cfg) -> dict:
    import numpy as np
    import torch

    from fer_core import store
    from fer_core.prepare.align import AlignConfig, load_detector
    from tasks import prepare as tp

    work = Path(tempfile.mkdtemp(prefix="align_vs_mtcnn_store_"))
    try:
        t0 = now()
        tp._detector(cfg)  # the stage's detector, loaded before its first timed batch
        bare_detector = load_detector(AlignConfig(device=cfg.device))
        # Warm-up, untimed: both detectors' first calls (and any one-off set-up of the
        # retry passes) on the first 32 images, the task's into a store of its own.
        warm = {k: v[:32] for k, v in batches[0].items()}
        tp.align_batch_task.fn(warm, -1, cfg, root, str(work / "warm-up"))
        bare_detector.detect(np.stack(store.read_images(root, warm["paths"])), landmarks=True)
        load_s = now() - t0
        task_s, bare_s, found_task, found_bare = [], [], 0, 0
        for i, batch in enumerate(batches):
            pixels = np.stack(store.read_images(root, batch["paths"]))
            order = ("task", "bare") if i % 2 == 0 else ("bare", "task")
            for which in order:
                t = now()
                if which == "task":
                    ref = tp.align_batch_task.fn(batch, i, cfg, root, str(work))
                    task_s.append(now() - t)
                    found_task += store.result_meta(ref)["aligned"]
                else:
                    _, _, points = bare_detector.detect(pixels, landmarks=True)
                    bare_s.append(now() - t)
                    found_bare += sum(p is not None for p in points)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n, tt, tb = sum(len(b["paths"]) for b in batches), sum(task_s), sum(bare_s)
    return {"images": n, "batches": len(batches),
            "batch_images": {"min": min(len(b["paths"]) for b in batches),
                             "max": max(len(b["paths"]) for b in batches)},
            "torch_threads": torch.get_num_threads(), "load_and_warm_up_seconds": round(load_s, 2),
            "align_task_seconds": round(tt, 2), "bare_detect_seconds": round(tb, 2),
            "align_images_per_s": rate(n, tt), "bare_images_per_s": rate(n, tb),
            "align_pct_of_bare_mtcnn": round(100 * tb / tt, 1) if tt else None,
            "median_batch_seconds": {"task": round(statistics.median(task_s), 3),
                                     "bare": round(statistics.median(bare_s), 3)},
            "aligned_by_task": int(found_task), "faces_found_by_bare": int(found_bare)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="a run folder made by fer prepare (read only)")
    src.add_argument("--data", type=Path, help="a data folder: fer prepare --no-align makes "
                     "the manifest in WORK/run first")
    p.add_argument("--images", type=int, default=2048, help="the first N planned images "
                   "(0: all)")
    p.add_argument("--work", type=Path, default=HERE / "work" / "align_vs_mtcnn")
    p.add_argument("--results", type=Path, default=HERE / "results" / "align_vs_mtcnn.json")
    p.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = p.parse_args(argv)
    record: dict = {"benchmark": "align stage vs bare batched MTCNN (bench/align_vs_mtcnn.py)",
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "note": args.note,
                    "target": "align_pct_of_bare_mtcnn >= 90 (issue 10)"}
    run = args.run
    if run is None:
        run = args.work / "run"
        shutil.rmtree(run, ignore_errors=True)
        run.parent.mkdir(parents=True, exist_ok=True)
        made = run_cli([str(Path(sys.executable).parent / "fer"), "prepare", str(args.data),
                        "--out", str(run), "--no-align"], args.work / "prepare.log")
        if made["returncode"]:
            raise SystemExit("fer prepare failed:\n" + "\n".join(made["log_tail"]))
        record["manifest_from"] = made["command"]
    batches, root, cfg = planned(run.resolve(), args.images or None)
    if not batches:
        raise SystemExit(f"no images to align in {run}")
    record |= {"run": str(run), "data_root": root, "align_config": json.loads(
        (run / "prepare.json").read_text())["config"]["align"]}
    print(f"{sum(len(b['paths']) for b in batches)} images in {len(batches)} batches of {run}",
          flush=True)
    watch = CpuWatch()
    record["interleaved"] = interleaved(batches, root, cfg)
    record["cpu"] = watch.result()
    write_result(args.results, record)
    r = record["interleaved"]
    print(f"align task {r['align_images_per_s']} img/s, bare MTCNN {r['bare_images_per_s']} "
          f"img/s: {r['align_pct_of_bare_mtcnn']}% (other processes: "
          f"{record['cpu']['other_processes_cpu_share']:.0%} of the CPUs)")
    print(f"results: {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
