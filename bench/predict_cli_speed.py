"""`fer predict` speed through the command users run, with the shipped model.

Two workloads, written as files (JPEG, quality 95) and given to ``fer predict FOLDER``:

* 128x128 single-face images (the astronaut's face at random tilts and brightness, as in
  ``bench/predict_speed.py``): target >= 30 images/s including detection;
* 640x480 photos with one face: target <= 150 ms per photo.

Each is run on a folder of 1 file and of N files (``measure.run_cli``: wall time and peak
RSS). The command's fixed cost (Python, torch and model start-up, which a user pays once
per command) is the 1-file run; the per-image figure is the difference,
(wall_N - wall_1) / (N - 1). Both figures, and the plain wall_N / N, are reported.

    .venv/bin/python bench/predict_cli_speed.py       # bench/results/predict_cli_speed.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from measure import CpuWatch, command_line, run_cli  # noqa: E402
from predict_speed import BenchConfig, face_images, photo  # noqa: E402

from fer_core.models.reference import shipped_path  # noqa: E402
from fer_core.runtime.device import machine_info  # noqa: E402

TARGETS = {"images_128_per_s": 30.0, "photo_640x480_ms": 150.0}


def write(folder: Path, images, name: str) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        cv2.imwrite(str(folder / f"{name}{i:04d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def timed(folder: Path, work: Path, tag: str) -> dict:
    out = work / f"{tag}.csv"
    cmd = [str(REPO / ".venv/bin/fer"), "predict", str(folder), "--out", str(out)]
    watch = CpuWatch()
    run = run_cli(cmd, work / f"{tag}.log")
    run["cpu"] = watch.result()
    if run["returncode"] != 0:
        raise SystemExit(f"{tag}: fer predict failed; see {run['log']}")
    rows = out.read_text().splitlines()[1:]
    run["rows"] = len(rows)
    return run


def workload(images, work: Path, name: str) -> dict:
    one = timed(write(work / f"{name}_1", images[:1], name), work, f"{name}_1")
    many = timed(write(work / f"{name}_n", images, name), work, f"{name}_n")
    n = len(images)
    per = (many["wall_seconds"] - one["wall_seconds"]) / (n - 1)
    return {"files": n, "one_file": one, "all_files": many,
            "start_up_seconds": one["wall_seconds"],
            "seconds_per_image": round(per, 4), "images_per_s": round(1 / per, 2),
            "images_per_s_incl_start_up": round(n / many["wall_seconds"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=400)
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--work", type=Path, default=HERE / "work/predict_cli_speed")
    ap.add_argument("--results", type=Path, default=HERE / "results/predict_cli_speed.json")
    args = ap.parse_args()
    from skimage import data

    astronaut = data.astronaut()
    args.work.mkdir(parents=True, exist_ok=True)
    faces = face_images(astronaut, BenchConfig(n_images=args.faces))
    faces_res = workload(faces, args.work, "face128")
    photos_res = workload([photo(astronaut)] * args.photos, args.work, "photo640")
    record = {
        "command": command_line(), "machine": machine_info(),
        "model": str(shipped_path("fer2013").relative_to(REPO)), "targets": TARGETS,
        "face128": faces_res, "photo640x480": photos_res,
        "summary": {"images_128_per_s": faces_res["images_per_s"],
                    "images_128_per_s_incl_start_up": faces_res["images_per_s_incl_start_up"],
                    "photo_640x480_ms": round(1000 * photos_res["seconds_per_image"], 1),
                    "start_up_seconds": faces_res["start_up_seconds"]},
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(record, indent=2))
    print(json.dumps(record["summary"], indent=2))


if __name__ == "__main__":
    main()
