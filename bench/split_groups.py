"""Benchmark of the split by group (fer_core.prepare.groups) on all of FER2013.

1. cost: the near-duplicate stage (fer_core.prepare.near_search) over every kept image on
   the old default (``probe: held_out``: training images hashed once) and the new one
   (``probe: half``: training images also at half the probes, which finds shifted copies
   inside the training folder), wall and CPU seconds, and the difference as a share of a
   fresh `fer prepare` (bench/results/prepare_fer2013.json, its CLI run: wall, and CPU
   against its user + system CPU seconds).
2. leak: validation images with a near-copy in train, by the pairs of either setting,
   for the per-image split (today's) and the split by group; groups, mixed-label groups.

    .venv/bin/python bench/split_groups.py --data bench/work/fer2013
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from measure import CpuWatch, now, write_result  # noqa: E402

from fer_core import store  # noqa: E402
from fer_core.config.duplicates import DedupConfig  # noqa: E402
from fer_core.config.ingest import IngestConfig  # noqa: E402
from fer_core.config.near_duplicates import NearDupConfig  # noqa: E402
from fer_core.config.split import SplitConfig  # noqa: E402
from fer_core.prepare import groups, ingest, near_search  # noqa: E402
from fer_core.prepare.duplicates import find_duplicates  # noqa: E402
from fer_core.prepare.split import encode_and_split  # noqa: E402


def leak(m: pd.DataFrame, pairs: pd.DataFrame) -> dict:
    """Validation images with a near-copy in train (and those pairs' differing labels)."""
    split = m.set_index("path")["split"]
    cls = m.set_index("path")["class"]
    a, b = split.reindex(pairs["path_a"]).to_numpy(), split.reindex(pairs["path_b"]).to_numpy()
    cross = ((a == "val") & (b == "train")) | ((a == "train") & (b == "val"))
    p = pairs[cross]
    val_side = p["path_a"].where(split.reindex(p["path_a"]).to_numpy() == "val", p["path_b"])
    differ = cls.reindex(p["path_a"]).to_numpy() != cls.reindex(p["path_b"]).to_numpy()
    return {"val_images": int((m["split"] == "val").sum()),
            "val_images_with_near_copy_in_train": int(val_side.nunique()),
            "train_val_pairs": int(len(p)), "train_val_pairs_different_labels": int(differ.sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO / "bench/work/fer2013"))
    ap.add_argument("--results", default=str(REPO / "bench/results/split_groups.json"))
    args = ap.parse_args()
    watch = CpuWatch()
    t = now()
    m = find_duplicates(ingest.ingest(IngestConfig(root=args.data)), DedupConfig())
    ingest_s = now() - t
    reader = lambda paths, size: store.iter_image_batches(args.data, paths, size)  # noqa: E731
    stage, pairs = {}, {}
    for probe in ("held_out", "half"):
        t, cpu = now(), time.process_time()
        pairs[probe], _, meta = near_search.search(m, NearDupConfig(probe=probe), reader)
        stage[probe] = {"seconds": round(now() - t, 1),
                        "cpu_seconds": round(time.process_time() - cpu, 1), **meta}
    cli = store.read_json(HERE / "results/prepare_fer2013.json")["cli"]
    fresh, fresh_cpu = cli["wall_seconds"], cli["user_seconds"] + cli["system_seconds"]
    extra = stage["half"]["seconds"] - stage["held_out"]["seconds"]
    extra_cpu = stage["half"]["cpu_seconds"] - stage["held_out"]["cpu_seconds"]
    splits = {"per_image": encode_and_split(m, SplitConfig(group_near_duplicates=False)),
              "by_group": encode_and_split(m, SplitConfig(), pairs["half"])}
    result = {
        "data": str(args.data), "ingest_and_sha1_seconds": round(ingest_s, 1),
        "near_duplicate_stage": stage, "extra_seconds_of_half": round(extra, 1),
        "fresh_prepare_cli_wall_seconds": fresh,
        "fresh_prepare_source": "bench/results/prepare_fer2013.json (cli.wall_seconds)",
        "extra_share_of_fresh_prepare": round(extra / fresh, 3),
        "extra_cpu_seconds_of_half": round(extra_cpu, 1),
        "fresh_prepare_cli_cpu_seconds": round(fresh_cpu, 1),
        # CPU against CPU: wall times here depend on what else runs on the machine
        "extra_cpu_share_of_fresh_prepare_cpu": round(extra_cpu / fresh_cpu, 3),
        "leak": {name: {judge: leak(s, p) for judge, p in pairs.items()}
                 for name, s in splits.items()},
        "groups": groups.summary(splits["by_group"]),
        "val_per_class": {name: s[s["split"] == "val"].groupby("class").size().to_dict()
                          for name, s in splits.items()},
        "cpu": watch.result()}
    write_result(Path(args.results), result)
    print(json.dumps({k: result[k] for k in (
        "near_duplicate_stage", "extra_seconds_of_half", "extra_share_of_fresh_prepare",
        "extra_cpu_seconds_of_half", "extra_cpu_share_of_fresh_prepare_cpu", "leak", "groups")},
        indent=1))


if __name__ == "__main__":
    main()
