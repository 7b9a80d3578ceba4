"""Preparation memory on a large folder: does `fer prepare` stay small on 300,000 faces?

Builds an AffectNet-sized folder of real faces in FER2013's layout (``train|test/<class>/
*.jpg``): each image is a random FER2013 face (same split and class), mirrored half the
time, turned by up to 8 degrees, shifted by up to 3 px, scaled by 0.92-1.08 (edges
replicated), given a random contrast (x0.8-1.2), brightness (+-15) and pixel noise (sd 3),
and saved as JPEG (quality 90): no two files are the same bytes, so SHA-1 deduplication
keeps them all. Then it runs, as a user does,

    fer prepare SYNTH --out RUN --class-map fer2013

through ``measure.run_cli`` (peak RSS of the largest process from ``/usr/bin/time -v``, and
the process tree's RSS sampled every 0.5 s, split into anonymous memory and mapped
files), and writes bench/results/prepare_memory.json. Wall time is reported, but this is
a memory benchmark: other jobs may share the machine (their CPU share is recorded).

    .venv/bin/python bench/prepare_memory.py                      # 300,000 images
    .venv/bin/python bench/prepare_memory.py --images 3000 --results /tmp/pm.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.measure import CpuWatch, command_line, run_cli  # noqa: E402
from fer_core.runtime.device import machine_info  # noqa: E402


def jittered(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = face.shape[:2]
    if rng.random() < 0.5:
        face = face[:, ::-1]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), rng.uniform(0.92, 1.08))
    m[:, 2] += rng.uniform(-3, 3, 2)
    out = cv2.warpAffine(np.ascontiguousarray(face), m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    out = out * rng.uniform(0.8, 1.2) + rng.uniform(-15, 15) + rng.normal(0, 3, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def build(source: Path, dest: Path, n: int, seed: int) -> dict:
    files = sorted(source.glob("*/*/*.jpg"))
    if not files:
        raise SystemExit(f"no FER2013 images under {source} (expected train|test/<class>/*.jpg)")
    done = dest / ".complete"
    if done.exists() and json.loads(done.read_text()) == {"images": n, "seed": seed}:
        return {"images": n, "built": False}
    shutil.rmtree(dest, ignore_errors=True)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(files), n)
    for i, k in enumerate(picks):
        src = files[k]
        rel = src.relative_to(source)
        out = dest / rel.parent / f"synth{i:06d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        face = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(out), jittered(face, rng), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if (i + 1) % 50000 == 0:
            print(f"  built {i + 1}/{n}", flush=True)
    done.write_text(json.dumps({"images": n, "seed": seed}))
    return {"images": n, "built": True}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=HERE / "work/fer2013",
                    help="extracted FER2013 (train|test/<class>/*.jpg)")
    ap.add_argument("--images", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--no-align", action="store_true",
                    help="pass --no-align: every stage but MTCNN, in a fraction of the time")
    ap.add_argument("--results", type=Path, default=HERE / "results/prepare_memory.json")
    args = ap.parse_args()
    data = args.work / f"synth{args.images}"
    built = build(args.source, data, args.images, args.seed)
    tag = f"{args.images}{'_no_align' if args.no_align else ''}"
    run = args.work / f"synth{tag}_run"
    shutil.rmtree(run, ignore_errors=True)
    cmd = [str(REPO / ".venv/bin/fer"), "prepare", str(data), "--out", str(run),
           "--class-map", "fer2013", *(["--no-align"] if args.no_align else [])]
    watch = CpuWatch()
    result = run_cli(cmd, args.work / f"prepare_memory_{tag}.log")
    result["cpu"] = watch.result()
    alignment = run / "reports/alignment.csv"
    record = {"command": command_line(), "machine": machine_info(),
              "data": {"path": str(data), **built}, "prepare": result,
              "alignment_csv": alignment.read_text() if alignment.exists() else None,
              "target": "peak RSS <= 3 GB (issue 10)"}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(record, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "log_tail"}, indent=2))


if __name__ == "__main__":
    main()
