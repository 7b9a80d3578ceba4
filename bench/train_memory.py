"""Training memory on a large saved set: does `fer train` stay small on 300,000 faces?

Builds a synthetic saved set in the format `fer prepare` writes (``sets/{train,val}/
images.npy`` uint8 (N, 96, 96, 3), ``labels.npy`` uint8 one-hot, ``sources.csv``, and
``sets/meta.json``; see docs/FORMATS.md) from the real FER2013 faces of a prepared run
(``RUN/sets/train``): each image is a random source face, shifted by up to 8 px (edges
replicated), mirrored half the time, and given a random contrast (x0.75-1.25) and
brightness (+-20), so no two rows are one constant image. It is written in chunks with
``store.ArrayWriter`` (source rows read with ``store.read_rows``), so the builder holds one
chunk at a time. Then it runs, as a user does,

    fer train SYNTH --config bench/configs/memory_epoch.yaml --store SYNTH/store_bench

through ``measure.run_cli`` (peak RSS of the largest process from ``/usr/bin/time -v``, and
the process tree's RSS sampled every 0.5 s, split into anonymous memory and mapped files),
and writes bench/results/train_memory.json.

    .venv/bin/python bench/train_memory.py                       # 300,000 images (~9 GB)
    .venv/bin/python bench/train_memory.py --images 2000 --results /tmp/tm.json --out /tmp/s
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.measure import CpuWatch, current_rss_bytes, mib, run_cli  # noqa: E402
from fer_core import store  # noqa: E402
from fer_core.runtime.device import machine_info  # noqa: E402

MARKER = ".train_memory"  # the folder was made by this script (it may be wiped)
SHIFT = 8  # pixels
CONTRAST, BRIGHTNESS = (0.75, 1.25), 20.0


def jitter(faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each face shifted (edges replicated), maybe mirrored, its contrast and brightness
    changed at random (uint8 in, uint8 out)."""
    out = np.empty_like(faces)
    h, w = faces.shape[1:3]
    for i, face in enumerate(faces):
        dx, dy = rng.integers(-SHIFT, SHIFT + 1, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        img = cv2.warpAffine(face, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        gain, offset = rng.uniform(*CONTRAST), rng.uniform(-BRIGHTNESS, BRIGHTNESS)
        out[i] = np.clip((img.astype(np.float32) - 128) * gain + 128 + offset, 0, 255)
    return out


def write_split(folder: Path, n: int, src: Path, src_labels: np.ndarray,
                rng: np.random.Generator, chunk: int) -> dict:
    """``n`` jittered faces drawn from ``src`` (an images.npy) into ``folder``."""
    size = tuple(np.load(src, mmap_mode="r").shape[1:])
    rows = rng.integers(0, len(src_labels), n)
    images = store.ArrayWriter(folder / "images.npy", (n, *size))
    peak = 0
    try:
        for start in range(0, n, chunk):
            part = rows[start:start + chunk]
            order = np.argsort(part, kind="stable")  # sequential reads
            faces = np.empty((len(part), *size), np.uint8)
            faces[order] = store.read_rows(src, part[order])
            images.append(jitter(faces, rng))
            peak = max(peak, current_rss_bytes())
    except BaseException:
        images.abort()
        raise
    images.close()
    store.write_array(folder / "labels.npy", src_labels[rows])
    store.write_csv(folder / "sources.csv",
                    pd.DataFrame({"source": [f"synthetic:{r}" for r in rows], "noise": "none"}))
    return {"images": n, "builder_rss_mib": mib(peak)}


def build(out: Path, source_run: Path, n_train: int, n_val: int, seed: int,
          chunk: int) -> dict:
    meta = store.read_sets_meta(source_run)
    src = store.sets_dir(source_run) / "train"
    labels = store.read_array(src / "labels.npy", mmap=False)
    rng = np.random.default_rng(seed)
    sets = store.sets_dir(out)
    built = {s: write_split(sets / s, n, src / "images.npy", labels, rng, chunk)
             for s, n in (("train", n_train), ("val", n_val))}
    store.write_json(sets / store.SETS_META, {
        "classes": meta["classes"], "image_size": meta["image_size"], "channels": "RGB",
        "scale": 255, "splits": {"train": n_train, "val": n_val}})
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=300_000, help="training images")
    ap.add_argument("--val-images", type=int, default=None,
                    help="validation images (default: a tenth of --images)")
    ap.add_argument("--source", type=Path, default=HERE / "work" / "fer7",
                    help="a run prepared by `fer prepare` whose sets/train faces are tiled")
    ap.add_argument("--out", type=Path, default=HERE / "work" / "synth300k",
                    help="the synthetic run folder (wiped first)")
    ap.add_argument("--config", type=Path, default=HERE / "configs" / "memory_epoch.yaml")
    ap.add_argument("--chunk", type=int, default=2048, help="images per write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep an existing --out set as it is")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "train_memory.json")
    args = ap.parse_args(argv)
    n_val = args.val_images if args.val_images is not None else max(args.images // 10, 1)
    row_bytes = int(np.prod(store.read_sets_meta(args.source)["image_size"])) * 3
    need = (args.images + n_val) * row_bytes
    result = {"benchmark": "train_memory", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "benchmark_command": shlex.join([sys.executable, *sys.argv]),
              "machine": machine_info(), "images": args.images, "val_images": n_val,
              "images_npy_bytes": need, "config_file": str(args.config),
              "config": store.read_yaml(args.config), "source": str(args.source)}

    t0 = time.perf_counter()
    meta = args.out / "sets" / store.SETS_META
    if args.keep and meta.is_file():
        splits = store.read_json(meta)["splits"]
        if splits != {"train": args.images, "val": n_val}:
            raise SystemExit(f"{args.out} holds {splits}, not {args.images} + {n_val}")
        result["build"] = {"kept": str(args.out)}
    else:
        if args.out.exists():
            if not (args.out / MARKER).exists():
                raise SystemExit(f"{args.out} exists and was not made by this script")
            shutil.rmtree(args.out)
        args.out.mkdir(parents=True)
        (args.out / MARKER).touch()
        free = shutil.disk_usage(args.out).free
        if free < need * 1.1:
            raise SystemExit(f"{need / 1e9:.1f} GB needed in {args.out}, {free / 1e9:.1f} free")
        print(f"building {args.images:,} + {n_val:,} images ({need / 1e9:.2f} GB) in "
              f"{args.out} ...", flush=True)
        before = current_rss_bytes()
        result["build"] = build(args.out, args.source, args.images, n_val, args.seed,
                                args.chunk)
        result["build"]["builder_rss_before_mib"] = mib(before)
        result["build"]["seconds"] = round(time.perf_counter() - t0, 1)

    fer = Path(sys.executable).with_name("fer")
    store_dir = args.out / "store_bench"
    shutil.rmtree(store_dir, ignore_errors=True)  # nothing cached: a whole epoch
    cmd = [str(fer), "train", str(args.out), "--config", str(args.config),
           "--store", str(store_dir)]
    watch = CpuWatch()
    run = run_cli(cmd, args.out / "train.log")
    run["cpu"] = watch.result()
    result |= {"command": run["command"], "run": run, "returncode": run["returncode"],
               "peak_rss_mib": run["peak_rss_mib"], "peak_rss_bytes": run["peak_rss_bytes"],
               "peak_tree_rss_anon_sampled_mib": run["peak_tree_rss_anon_sampled_mib"],
               "peak_tree_rss_file_sampled_mib": run["peak_tree_rss_file_sampled_mib"],
               "wall_seconds": run["wall_seconds"]}
    history = args.out / "reports" / "history.csv"
    if history.is_file():
        h = store.read_csv(history)
        result["history"] = h.to_dict("records")
    store.write_json(args.results, result)
    print(f"peak RSS {run['peak_rss_mib']} MiB (anon {run['peak_tree_rss_anon_sampled_mib']}, "
          f"files {run['peak_tree_rss_file_sampled_mib']}), wall {run['wall_seconds']} s; "
          f"results: {args.results}")
    return 0 if run["returncode"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
