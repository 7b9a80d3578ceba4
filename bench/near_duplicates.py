"""Benchmark of the near-duplicate stage (fer_core.prepare.near_duplicates) on FER2013.

1. made: real FER2013 test faces, a quarter of them copied by one edit each (JPEG q50-90,
   resize and back, brightness +-10..20, a 0-3 px crop per side, a 2-3 px horizontal shift;
   fer_core.datasets.near_copies), copies held out, the rest distinct faces split between training
   and held out. Recall of the made pairs per edit, and the share of distinct faces falsely
   paired, over a grid of thresholds, with and without the probes. "Distinct" is judged two
   ways: every other face (FER2013 holds re-cropped copies of one photo, which count as false
   here) and faces with no copy-like neighbour by fer_core.datasets.near_copies.distinct (a pixel
   check independent of the hashes). bench/work/near_duplicates_false_pairs.png (git-ignored:
   FER2013 faces stay out of the repository) shows the "false" pairs on the raw pool, to
   judge by eye.
2. fer2013: the stage on every kept image of a prepared FER2013 run (default
   bench/work/fer7, read only): hashing and search time, peak RSS, and what it finds (pairs
   per split pair, with different labels).

    .venv/bin/python bench/near_duplicates.py [--faces 4000] [--run bench/work/fer7]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from measure import CpuWatch, command_line, cpu_model, mib, now, peak_rss_bytes, total_ram_bytes  # noqa: E402

from fer_core import store  # noqa: E402
from fer_core.datasets.near_copies import EDITS, distinct, near_copy  # noqa: E402
from fer_core.prepare import near_duplicates as nd  # noqa: E402


def made_check(data: Path, faces_n: int, out: Path) -> dict:
    paths = sorted((data / "test").rglob("*.jpg"))
    rng = np.random.default_rng(0)
    paths = [paths[i] for i in rng.permutation(len(paths))[:faces_n]]
    faces = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths])
    t = now()
    clean = distinct(faces)
    oracle_s = now() - t
    n_src = len(faces) // 4
    sources, others = faces[:n_src], faces[n_src:]
    copies = np.stack([near_copy(f, EDITS[i % len(EDITS)], rng) for i, f in enumerate(sources)])
    half = len(others) // 2
    images = [*sources, *others[:half], *copies, *others[half:]]
    subsets = np.array(["train"] * (n_src + half) + ["test"] * (n_src + len(others) - half))
    copy_at = n_src + half
    other_pos = np.r_[n_src:copy_at, copy_at + n_src:len(images)]
    other_clean = set(other_pos[clean[n_src:]].tolist())
    other_all = set(other_pos.tolist())
    made = {(i, copy_at + i) for i in range(n_src)}
    rgb = [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in images]
    rows = []
    for label, cfg in (("probes", nd.NearDupConfig(probe="held_out")),
                       ("no probes", nd.NearDupConfig(probe="none"))):
        t = now()
        coarse = nd.coarse_hashes(rgb, cfg, probed=nd.probed(subsets, cfg))
        loose = nd.candidates(coarse, subsets, nd.NearDupConfig(probe=cfg.probe, max_distance=12))
        fine = nd.fine_hashes(rgb, nd.wanted_fine(loose, len(rgb)), cfg)
        hash_s = now() - t
        for k, f in itertools.product((6, 8, 10, 12), (64, 72, 80, 256)):
            c = nd.NearDupConfig(probe=cfg.probe, max_distance=k, max_fine_distance=f)
            pairs = nd.confirm(loose[loose["distance"] <= k], fine, c)
            found = set(zip(pairs["a"].tolist(), pairs["b"].tolist(), strict=True))
            touched = {i for p in found - made for i in p}
            rows.append({
                "hashing": label, "max_distance": k, "max_fine_distance": f,
                "recall": round(len(found & made) / len(made), 4),
                "recall_per_edit": {e: round(float(np.mean([(i, copy_at + i) in found
                                                            for i in range(e_i, n_src, 5)])), 4)
                                    for e_i, e in enumerate(EDITS)},
                "false_share_all_faces": round(len(touched & other_all) / len(other_all), 4),
                "false_share_distinct_faces": round(len(touched & other_clean)
                                                    / len(other_clean), 4),
                "hash_seconds": round(hash_s, 2)})
            if label == "probes" and (k, f) == (nd.NearDupConfig().max_distance,
                                                nd.NearDupConfig().max_fine_distance):
                false = sorted(found - made)[:24]
                from fer_core.audit.figures import pair_grid
                store.write_figure(REPO / "bench/work/near_duplicates_false_pairs.png", pair_grid(
                    [(images[a], images[b]) for a, b in false],
                    [f"{'distinct' if a in other_clean or b in other_clean else 'oracle: copy'}"
                     for a, b in false],
                    title="Pairs found that were not made (raw FER2013 test pool)"))
    return {"faces": len(faces), "made_pairs": n_src, "distinct_faces_all": len(other_all),
            "distinct_faces_by_oracle": len(other_clean), "oracle_seconds": round(oracle_s, 1),
            "default": {"max_distance": nd.NearDupConfig().max_distance,
                        "max_fine_distance": nd.NearDupConfig().max_fine_distance},
            "grid": rows}


def fer2013_check(run: Path) -> dict:
    prep = store.read_json(run / "prepare.json")
    root = prep["config"]["ingest"]["root"]
    m = store.read_frame(run / "manifest.parquet")
    rows = nd.hashed_rows(m)
    cfg = nd.NearDupConfig()
    probed = nd.probed(rows["subset"].to_numpy(), cfg)
    paths, subsets = rows["path"].tolist(), rows["subset"].to_numpy()
    watch, t = CpuWatch(), now()
    coarse = np.concatenate([nd.coarse_hashes(images, cfg, probed=probed[s:s + len(images)])
                             for s, images in store.iter_image_batches(root, paths, cfg.chunk)])
    hash_s = now() - t
    t = now()
    cands = nd.candidates(coarse, subsets, cfg)
    search_s = now() - t
    t = now()
    wanted = nd.wanted_fine(cands, len(rows))
    need = [i for i, w in enumerate(wanted) if w]
    fine = [{} for _ in wanted]
    for s, images in store.iter_image_batches(root, [paths[i] for i in need], cfg.chunk):
        for i, h in zip(need[s:s + len(images)], nd.fine_hashes(
                images, [wanted[i] for i in need[s:s + len(images)]], cfg), strict=True):
            fine[i] = h
    pairs = nd.with_paths(nd.confirm(cands, fine, cfg), rows)
    confirm_s = now() - t
    table = nd.pair_table(m, pairs)
    cross = table[table["split_a"] != table["split_b"]]
    return {"images": len(rows), "probed_images": int(probed[:, 1:].any(1).sum()),
            "hash_seconds": round(hash_s, 1), "search_seconds": round(search_s, 2),
            "candidates": len(cands), "fine_hashed_images": len(need),
            "confirm_seconds": round(confirm_s, 1),
            "total_seconds": round(hash_s + search_s + confirm_s, 1),
            "cpu": watch.result(), "peak_rss_mib": mib(peak_rss_bytes()),
            "pairs": len(table), "cross_split_pairs": len(cross),
            "train_or_val_with_test_pairs": int(((table["split_a"] == "test")
                                                 != (table["split_b"] == "test")).sum()),
            "cross_split_different_labels": int((cross["class_a"] != cross["class_b"]).sum()),
            "by_split": nd.split_counts(table).to_dict("records"),
            "by_class": nd.class_counts(table).to_dict("records")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO / "bench/work/fer2013"))
    ap.add_argument("--faces", type=int, default=4000)
    ap.add_argument("--run", default=str(REPO / "bench/work/fer7"))
    ap.add_argument("--results", default=str(REPO / "bench/results/near_duplicates.json"))
    ap.add_argument("--skip-made", action="store_true")
    args = ap.parse_args()
    out = Path(args.results)
    result = {"command": command_line(),
              "machine": {"cpu": cpu_model(), "cpus": len(__import__("os").sched_getaffinity(0)),
                          "ram_bytes": total_ram_bytes()}}
    if not args.skip_made:
        result["made"] = made_check(Path(args.data), args.faces, out)
        store.write_json(out, result)
    result["fer2013"] = fer2013_check(Path(args.run))
    store.write_json(out, result)
    print(json.dumps({k: v for k, v in result.get("fer2013", {}).items()
                      if k not in ("by_class", "by_split")}, indent=1))


if __name__ == "__main__":
    main()
