"""``fer predict`` on one photo against a bare script doing the same work (import torch, load
MTCNN and the model, detect and classify one photo): wall time of each, median of N runs,
each a fresh process, and their ratio (target: fer predict <= 1.3x the bare script).

    .venv/bin/python bench/predict_one_photo.py [--runs 5]

Writes bench/results/predict_one_photo.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import REPO, CpuWatch, run_cli, write_result  # noqa: E402

FER = str(Path(sys.executable).parent / "fer")

# The same work as `fer predict PHOTO`, by hand: torch, MTCNN, the shipped model, one photo.
BARE = r"""
import sys
import cv2, numpy as np, torch
from facenet_pytorch import MTCNN
from fer_core.models.checkpoint import load_model
torch.set_num_threads(1)
model, meta = load_model(sys.argv[2])
detector = MTCNN(keep_all=True, min_face_size=40, device="cpu")
image = cv2.cvtColor(cv2.imread(sys.argv[1]), cv2.COLOR_BGR2RGB)
boxes, probs, points = detector.detect(image, landmarks=True)
x1, y1, x2, y2 = boxes[0]
side = int(round(max(x2 - x1, y2 - y1) * 0.93))
cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 - 0.015 * max(x2 - x1, y2 - y1)
crop = cv2.getRectSubPix(image, (side, side), (cx, cy))
face = cv2.resize(crop, (96, 96), interpolation=cv2.INTER_AREA)
x = torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255
with torch.inference_mode():
    p = torch.softmax((model(x) + model(x.flip(3))) / 2, 1)[0]
print(meta["classes"][int(p.argmax())], float(p.max()))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "predict_one_photo.json"))
    args = ap.parse_args()
    import cv2
    from skimage import data

    from fer_core.models.weights import DEFAULT_CHECKPOINT

    work = Path(tempfile.mkdtemp())
    photo = work / "photo.jpg"
    big = cv2.resize(data.astronaut(), (640, 640))[80:560]  # a 640x480 photo with one face
    cv2.imwrite(str(photo), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    (work / "bare.py").write_text(BARE)
    commands = {"bare_script": [sys.executable, str(work / "bare.py"), str(photo),
                                str(DEFAULT_CHECKPOINT)],
                "fer_predict": [FER, "predict", str(photo), "--out", str(work / "out.csv")]}
    watch, runs = CpuWatch(), {k: [] for k in commands}
    for i in range(args.runs):  # interleaved, so both see the same machine
        for name, cmd in commands.items():
            r = run_cli(cmd, work / f"{name}{i}.log")
            assert r["returncode"] == 0, (work / f"{name}{i}.log").read_text()[-2000:]
            runs[name].append(r)
    med = {k: statistics.median(r["wall_seconds"] for r in v) for k, v in runs.items()}
    result = {
        "photo": "scikit-image astronaut at 640x480 (one face)", "runs": args.runs,
        "median_wall_seconds": med,
        "ratio_fer_predict_to_bare": round(med["fer_predict"] / med["bare_script"], 3),
        "target_ratio": 1.3,
        "peak_rss_mib": {k: max(r["peak_rss_mib"] for r in v) for k, v in runs.items()},
        "all_wall_seconds": {k: [r["wall_seconds"] for r in v] for k, v in runs.items()},
        "cpu": watch.result(), "bare_script_source": BARE}
    write_result(Path(args.out), result)
    print({k: result[k] for k in ("median_wall_seconds", "ratio_fer_predict_to_bare")})


if __name__ == "__main__":
    main()
