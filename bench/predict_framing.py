"""Where FER2013's 48x48 frame lies relative to MTCNN's box, on faces planted in photos.

One measure: FER2013 *train* faces (N per class, seeded), each planted in a photo by
``fer_core.datasets.planted.plant_face`` (upscaled to 120-160 px at a random place on a
crop of a scikit-image sample photo, its surroundings continued past the frame by default)
and read back from a JPEG, are detected by `fer predict`'s MTCNN (``PredictConfig``'s
settings, ``detect_faces``). For the detection inside the planted frame: the frame's side
over the box's longer side (1 + the margin that matches it) and the frame centre's offset
from the box centre (dx, dy: the matching shift), summarised over the faces (median,
quartiles, 10th/90th percentiles), with the detection rate. The face spec's default
``margin`` and ``shift`` (``fer_core.models.spec``) come from this measurement; train
faces, so the crop is not tuned on the test faces that bench/predict_vs_evaluate.py
scores. Usage::

    .venv/bin/python bench/predict_framing.py --per-class 300          # 2,100 faces
    .venv/bin/python bench/predict_framing.py --data /tmp/small --per-class 5 --results /tmp/f.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import CpuWatch, write_result  # noqa: E402
from fer_core import store  # noqa: E402
from fer_core.datasets import planted  # noqa: E402
from fer_core.infer.faces import detect_faces  # noqa: E402
from fer_core.infer.predict import PredictConfig  # noqa: E402
from fer_core.models import spec as face_spec  # noqa: E402


def train_files(data: Path, per_class: int, seed: int) -> list[Path]:
    """``per_class`` files (seeded, in name order) of each ``train/<class>`` folder."""
    rng = np.random.default_rng(seed)
    out = []
    for folder in sorted(p for p in (data / "train").iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        out += [files[i] for i in sorted(rng.choice(len(files), min(per_class, len(files)),
                                                    replace=False))]
    return out


def measure(files: list[Path], cfg: PredictConfig, seed: int, surround: str) -> dict:
    from fer_core.prepare import align

    detector = align.load_detector(cfg.align_config("cpu"))
    backs, rng = planted.backgrounds(), np.random.default_rng(seed + 1)
    rows = []
    for f in files:
        photo, frame = planted.plant_face(store.read_input_image(str(f)), backs, rng,
                                          surround=surround)
        (faces,) = detect_faces([planted.jpeg_roundtrip(photo)], detector)
        k = planted.planted_face(faces.boxes, frame)
        if k is not None:
            rows.append(planted.framing(faces.boxes[k], frame))
    return {"images": len(files), "detected": len(rows),
            "detection_rate": round(len(rows) / max(len(files), 1), 4),
            **planted.summarise_framing(rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO / "bench/work/fer2013",
                    help="an extracted fer2013/ folder (its train/<class>/*.jpg)")
    ap.add_argument("--per-class", type=int, default=300, help="train faces per class")
    ap.add_argument("--surround", choices=planted.SURROUNDS, default="continued",
                    help="what lies around the planted face (see planted.plant_face)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=Path, default=REPO / "bench/results/predict_framing.json")
    args = ap.parse_args(argv)
    cfg = PredictConfig(device="cpu")
    files = train_files(args.data, args.per_class, args.seed)
    print(f"{len(files)} train faces of {args.data}, planted ({args.surround}) ...", flush=True)
    watch, t0 = CpuWatch(), time.perf_counter()
    found = measure(files, cfg, args.seed, args.surround)
    record = {"benchmark": "predict_framing", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "data": str(args.data), "per_class": args.per_class, "seed": args.seed,
              "planting": {"face_px": planted.FACE_PX, "canvas_times_face": planted.CANVAS,
                           "surround": args.surround,
                           "surround_band_times_face": planted.SURROUND
                           if args.surround == "continued" else None,
                           "feather_px": planted.FEATHER if args.surround == "seam" else None,
                           "jpeg_quality": planted.JPEG_QUALITY,
                           "backgrounds": f"skimage.data {', '.join(planted.BACKGROUNDS)}"},
              "detector": {"min_face_size": cfg.min_face_size,
                           "thresholds": cfg.thresholds},
              "current_defaults": {"margin": face_spec.MARGIN, "shift": face_spec.SHIFT,
                                   "from": "fer_core.models.spec (MARGIN, SHIFT)"},
              "framing": found, "seconds": round(time.perf_counter() - t0, 1),
              "cpu": watch.result()}
    write_result(args.results, record)
    if found["detected"]:
        print(f"detected {found['detection_rate']:.1%}; frame side / box "
              f"{found['side_over_box']['median']} (margin {found['margin_matching_median']:+}),"
              f" dy {found['dy']['median']} (current defaults: margin {face_spec.MARGIN}, "
              f"shift {face_spec.SHIFT})")
    print(f"results: {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
