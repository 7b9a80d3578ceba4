"""A decompression bomb in a class folder: does `fer prepare` stay as small as without it?

Extracts the first N FER2013 faces per class (train and test) into two folders, the second
with one made 20000x20000 PNG (400 megapixels in about 390 KB, fer_core.datasets.bomb) in
``train/happy``, and runs, as a user does, on each

    fer prepare DATA --out RUN --class-map fer2013 --no-align

through ``measure.run_cli`` (peak RSS of the largest process from ``/usr/bin/time -v``).
The bomb must be rejected with its size (from its header, ``ingest.max_pixels``) and the
peak RSS must stay within 1.3x of the clean folder's. Writes
bench/results/ingest_bomb_memory.json; a memory benchmark: wall times are not the point
(other jobs may share the machine; their CPU share is recorded).

    .venv/bin/python bench/ingest_bomb_memory.py
    .venv/bin/python bench/ingest_bomb_memory.py --per-class 200 --align
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.measure import CpuWatch, run_cli, write_result  # noqa: E402
from bench.prepare_fer2013 import extract  # noqa: E402
from fer_core.datasets.bomb import bomb_png  # noqa: E402

BOMB = "train/happy/bomb.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tarball", type=Path, default=REPO.parent / "shared/data/fer2013.tar.gz")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--side", type=int, default=20000, help="the bomb's width and height")
    ap.add_argument("--align", action="store_true", help="with MTCNN alignment (slower)")
    ap.add_argument("--work", type=Path, default=HERE / "work" / "ingest_bomb")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "ingest_bomb_memory.json")
    args = ap.parse_args()

    clean, bombed = extract(args.tarball, args.work, args.per_class), args.work / "bombed"
    n = sum(1 for p in clean.rglob("*") if p.is_file())
    shutil.rmtree(bombed, ignore_errors=True)
    shutil.copytree(clean, bombed)
    bomb = bomb_png(args.side, args.side)
    (bombed / BOMB).write_bytes(bomb)

    runs, watch = {}, CpuWatch()
    for name, data in (("clean", clean), ("with_bomb", bombed)):
        out = args.work / f"run-{name}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [str(REPO / ".venv/bin/fer"), "prepare", str(data), "--out", str(out),
               "--class-map", "fer2013", *([] if args.align else ["--no-align"])]
        runs[name] = run_cli(cmd, args.work / f"{name}.log")
        if name == "with_bomb":
            import pandas as pd

            m = pd.read_parquet(out / "manifest.parquet").set_index("path")
            runs[name]["bomb_manifest_row"] = {k: str(m.loc[BOMB, k])
                                               for k in ("status", "reason")}
    ratio = runs["with_bomb"]["peak_rss_bytes"] / runs["clean"]["peak_rss_bytes"]
    record = {"images": n, "bomb": {"path": BOMB, "side": args.side, "bytes": len(bomb)},
              "align": args.align, "runs": runs, "peak_rss_ratio": round(ratio, 3),
              "target": "peak RSS with the bomb <= 1.3x without it (issue 24)",
              "met": ratio <= 1.3, "cpu": watch.result()}
    print(f"peak RSS ratio {ratio:.3f}; bomb: {runs['with_bomb'].get('bomb_manifest_row')}")
    write_result(args.results, record)


if __name__ == "__main__":
    main()
