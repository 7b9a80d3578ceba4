"""The planted-faces measure for each door: FER2013 test faces planted in photos
(fer_core.datasets.planted), classified through ``fer predict``, the ``predict`` flow (with
its own defaults but out), the exported ONNX predictor and ``fer serve`` over HTTP. Each
door's accuracy on the planted face (a photo whose face is not found counts as wrong), and
how far the doors agree with ``fer predict`` (same class, largest probability difference).

    .venv/bin/python bench/doors_planted.py [--faces 7178]

Writes bench/results/doors_planted.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import REPO, CpuWatch, free_port, now, run_cli, wait_http, write_result  # noqa: E402

FER = str(Path(sys.executable).parent / "fer")
TAR = REPO.parent / "shared" / "data" / "fer2013.tar.gz"
NAMES = {"angry": "Anger", "disgust": "Disgust", "fear": "Fear", "happy": "Happiness",
         "neutral": "Neutral", "sad": "Sadness", "surprise": "Surprise"}


def plant(folder: Path, n: int) -> pd.DataFrame:
    """n FER2013 test faces (archive order) planted, one a photo: name, label, frame."""
    from fer_core.datasets.planted import backgrounds, plant_face

    rng, backs, rows = np.random.default_rng(0), backgrounds(), []
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(TAR) as tar:
        for m in tar:
            parts = Path(m.name).parts
            if not (m.isfile() and len(parts) == 4 and parts[1] == "test"):
                continue
            face = cv2.imdecode(np.frombuffer(tar.extractfile(m).read(), np.uint8),
                                cv2.IMREAD_GRAYSCALE)
            photo, frame = plant_face(face, backs, rng)
            name = f"{len(rows):05d}.jpg"
            cv2.imwrite(str(folder / name), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            rows.append({"name": name, "label": NAMES[parts[2]], "x0": frame.x0,
                         "y0": frame.y0, "side": frame.side})
            if len(rows) == n:
                break
    return pd.DataFrame(rows)


def the_planted_face(rows: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per photo, the row of the face that is the planted one (or none): its class and
    probabilities."""
    from fer_core.datasets.planted import Frame, planted_face

    rows = rows[rows["status"] == "ok"].copy()
    rows["name"] = rows["file"].map(lambda f: Path(f).name)
    out = []
    for t in truth.itertuples():
        faces = rows[rows["name"] == t.name]
        k = planted_face(faces[["x1", "y1", "x2", "y2"]].to_numpy(), Frame(t.x0, t.y0, t.side)) \
            if len(faces) else None
        out.append(faces.iloc[k] if k is not None else pd.Series({"name": t.name}))
    return pd.DataFrame(out).set_index("name").reindex(truth["name"])


def score(picked: pd.DataFrame, truth: pd.DataFrame) -> dict:
    found = picked["class"].notna().to_numpy()
    right = (picked["class"].to_numpy() == truth["label"].to_numpy()) & found
    return {"photos": len(truth), "planted_face_found": int(found.sum()),
            "accuracy": round(float(right.mean()), 4),
            "accuracy_where_found": round(float(right[found].mean()), 4)}


def serve_rows(folder: Path, names: list[str]) -> pd.DataFrame:
    port = free_port()
    server = subprocess.Popen([FER, "serve", "--port", str(port)], cwd=REPO,
                              stdout=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc=server)

        def one(name: str) -> list[dict]:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/predict",
                                         data=(folder / name).read_bytes(),
                                         headers={"Content-Type": "image/jpeg"})
            body = json.loads(urllib.request.urlopen(req, timeout=300).read())
            return [{"file": name, "status": "ok", **f} for f in body["faces"]] or [
                {"file": name, "status": "no_face"}]

        with ThreadPoolExecutor(8) as pool:
            rows = [r for rs in pool.map(one, names) for r in rs]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return pd.DataFrame(rows)


def onnx_rows(folder: Path, names: list[str], work: Path) -> pd.DataFrame:
    from fer_core import store
    from fer_core.infer.onnx import OnnxPredictor
    from fer_core.infer.predict import (
        PredictConfig,
        face_rows,
        load_predictor,
    )
    from fer_core.models.export import ExportConfig, export_checkpoint
    from fer_core.models.weights import DEFAULT_CHECKPOINT

    export_checkpoint(DEFAULT_CHECKPOINT, work / "model.onnx", ExportConfig())
    onnx = OnnxPredictor.load(work / "model.onnx")
    cfg = PredictConfig()
    detector = load_predictor(DEFAULT_CHECKPOINT, cfg).detector
    parts = []
    for start in range(0, len(names), 64):
        batch = names[start:start + 64]
        images = [store.read_input_image(str(folder / n)) for n in batch]
        faces, proba = onnx.predict_photos(images, detector, workers=cfg.detect_workers)
        rows = face_rows(faces, proba, onnx.classes)
        rows["file"] = [batch[i] for i in rows["image"]]
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=7178, help="FER2013 test faces (all: 7178)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "doors_planted.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    folder = work / "photos"
    truth = plant(folder, args.faces)
    names = list(truth["name"])
    from fer_core.models.weights import DEFAULT_CHECKPOINT

    runs, rows, watch = {}, {}, CpuWatch()
    runs["cli"] = run_cli([FER, "predict", str(folder), "--out", str(work / "cli.csv")],
                          work / "cli.log")
    rows["cli"] = pd.read_csv(work / "cli.csv")
    flow = (f"from flows.predict import predict; predict(inputs=[{str(folder)!r}], "
            f"model={str(DEFAULT_CHECKPOINT)!r}, out={str(work / 'flow.csv')!r})")
    runs["flow"] = run_cli([sys.executable, "-c", flow], work / "flow.log")
    rows["flow"] = pd.read_csv(work / "flow.csv")
    for door, fn in (("onnx", lambda: onnx_rows(folder, names, work)),
                     ("http", lambda: serve_rows(folder, names))):
        t0 = now()
        rows[door] = fn()
        runs[door] = {"wall_seconds": round(now() - t0, 2)}
    picked = {d: the_planted_face(r, truth) for d, r in rows.items()}
    ref = picked["cli"]
    probs = [c for c in ref.columns if c.startswith("p_")]
    result = {"photos": f"{len(truth)} FER2013 test faces planted in photos, one each",
              "doors": {}, "cpu": watch.result()}
    for door, p in picked.items():
        both = ref["class"].notna() & p["class"].notna()
        diff = (p.loc[both, probs].astype(float) - ref.loc[both, probs].astype(float)).abs()
        result["doors"][door] = {
            **score(p, truth), "wall_seconds": runs[door]["wall_seconds"],
            "same_class_as_cli": round(float((p["class"] == ref["class"])[both].mean()), 4),
            "same_faces_found_as_cli": bool((p["class"].notna() == ref["class"].notna()).all()),
            "max_probability_difference_to_cli": float(diff.to_numpy().max()) if len(diff)
            else None}
    write_result(Path(args.out), result)
    print(json.dumps(result["doors"], indent=1))


if __name__ == "__main__":
    main()
