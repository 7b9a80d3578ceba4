"""Does `fer predict` see faces as training saw them? FER2013 test faces planted in photos.

Training learns from whole dataset crops: FER2013's 48x48 faces, aligned where MTCNN found
the eyes, resized to the model's input (``fer prepare``'s saved sets). `fer predict` finds a
face in a photo with MTCNN and cuts a square of (1 + margin) x the box around it. One
measure: the accuracy gap between the two views of the same faces, with one loaded model
and its face spec (framing, alignment, TTA) on both sides:

  * predict: each test face planted in a photo (``fer_core.datasets.planted.plant_face``:
    upscaled to 120-160 px at a random place on a crop of a scikit-image sample photo),
    written as a JPEG and scored through ``fer_core.infer.video.score_files`` -- what each
    `fer predict` batch task runs (file reading, MTCNN, crop, alignment, resize, classifier);
  * evaluate: the prepared run's saved test-set rows of the same files
    (``sets/test/images.npy``), scored by ``fer_core.infer.faces.face_proba``.

Reported: both accuracies (on the faces detected in their photo, and on all with a missed
face counted wrong), their gap, the agreement of the two predicted classes, the detection
rate, per class, and the gap over a sweep of crop settings on the same detections (with, for
reference, a crop exactly on the planted frame: what no crop computed from MTCNN's box can
beat; ``--no-sweep`` skips it). Where the frame lies relative to MTCNN's box (the crop
defaults) is bench/predict_framing.py's measure. Usage::

    .venv/bin/python bench/predict_vs_evaluate.py                       # all test faces of
        # bench/work/fer7 (fer prepare ... --class-map fer2013), the shipped model
    .venv/bin/python bench/predict_vs_evaluate.py --run /tmp/run --data /tmp/data \\
        --per-class 3 --work /tmp/pve --results /tmp/pve.json
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import CpuWatch, command_line, write_result  # noqa: E402
from fer_core import store  # noqa: E402
from fer_core.datasets import planted  # noqa: E402
from fer_core.infer import video  # noqa: E402
from fer_core.infer.faces import cut, face_crop, face_proba  # noqa: E402
from fer_core.infer.predict import (  # noqa: E402
    BOX,
    LANDMARK_COLUMNS,
    OK,
    PredictConfig,
    load_predictor,
)
from fer_core.prepare import resize  # noqa: E402

SWEEP_MARGINS = (-0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2)
SWEEP_SHIFTS = (-0.05, 0.0, 0.05)


# ---------------------------------------------------------------- data


def pick(table: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """``per_class`` rows of each class (all when 0), seeded, in table order."""
    if not per_class:
        return table
    rng = np.random.default_rng(seed)
    keep = []
    for _, group in table.groupby("label", sort=True):
        n = min(per_class, len(group))
        keep += sorted(rng.choice(group.index.to_numpy(), n, replace=False).tolist())
    return table.loc[sorted(keep)]


def test_rows(run: Path, per_class: int, seed: int) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The run's test rows (row, source, label) of original images, ``per_class`` each."""
    saved = store.load_set(run, "test")
    sources = pd.read_csv(store.sets_dir(run) / "test" / "sources.csv", keep_default_na=False)
    table = pd.DataFrame({"row": np.arange(len(sources)), "source": sources["source"],
                          "noise": sources["noise"], "label": saved.targets})
    table = table[table["noise"] == "none"]
    return pick(table, per_class, seed).reset_index(drop=True), saved.classes


# ---------------------------------------------------------------- phases


def write_photos(table: pd.DataFrame, data: Path, out: Path, seed: int,
                 surround: str) -> list[dict]:
    bgs, rng = planted.backgrounds(), np.random.default_rng(seed)
    photos = []
    for source in table["source"]:
        photo, frame = planted.plant_face(store.read_input_image(str(data / source)), bgs,
                                          rng, surround=surround)
        path = out / Path(source).with_suffix(".jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, planted.JPEG_QUALITY])
        assert ok, path
        photos.append({"photo": str(path), "x0": frame[0], "y0": frame[1], "side": frame[2],
                       "height": photo.shape[0], "width": photo.shape[1]})
    return photos


def choose_faces(rows: pd.DataFrame, table: pd.DataFrame, classes) -> pd.DataFrame:
    """Per photo: the planted face's row of the prediction (or none), and the count of
    other faces found."""
    by_file = {f: part for f, part in rows.groupby("file", sort=False)}
    out = []
    for t in table.itertuples():
        part = by_file.get(t.photo)
        ok = part[part["status"] == OK] if part is not None else rows.iloc[:0]
        frame = (t.x0, t.y0, t.side)
        k = planted.planted_face(ok[list(BOX)].to_numpy(float), frame) if len(ok) else None
        rec = {"faces": len(ok), "detected": k is not None}
        if k is not None:
            r = ok.iloc[k]
            box = r[list(BOX)].to_numpy(float)
            rec |= {"pred": classes.index(r["class"]), "box": box,
                    "landmarks": r[list(LANDMARK_COLUMNS)].to_numpy(float).reshape(5, 2),
                    **planted.framing(box, frame)}
        out.append(rec)
    return pd.DataFrame(out)


def scores(truth: np.ndarray, pred: np.ndarray, ref: np.ndarray, detected: np.ndarray) -> dict:
    d = detected
    pa, ea = float((pred[d] == truth[d]).mean()), float((ref[d] == truth[d]).mean())
    return {"n": int(d.sum()), "predict_accuracy": round(pa, 4),
            "evaluate_accuracy": round(ea, 4), "gap_points": round(100 * (ea - pa), 2),
            "agreement": round(float((pred[d] == ref[d]).mean()), 4)}


def frame_crop(image: np.ndarray, frame, landmarks, spec) -> np.ndarray:
    """The face cut exactly on its planted 48x48 frame, then aligned on MTCNN's landmarks
    (when the face spec aligns) and resized as ``face_crop`` does: the best any crop from
    the box could do."""
    x0, y0, side = frame
    pts = np.asarray(landmarks, float) - (x0, y0)
    row = {"aligned": spec.align, "left_eye_x": pts[0, 0], "left_eye_y": pts[0, 1],
           "right_eye_x": pts[1, 0], "right_eye_y": pts[1, 1]}
    return resize.preprocess_image(cut(image, x0, y0, side), row,
                                   resize.ResizeConfig(size=spec.input_size, border=spec.border))


def sweep(chosen: pd.DataFrame, table: pd.DataFrame, predictor, truth, ref, cfg) -> list[dict]:
    """Every (margin, shift) of the sweep on the same detections: the crop that
    ``predict_images`` takes (``face_crop``), classified the same way; and, for reference,
    the crop on the planted frame itself (``frame_crop``; margin and shift None)."""
    spec = predictor.spec
    settings = [(m, s) for m in SWEEP_MARGINS for s in SWEEP_SHIFTS]
    if (spec.margin, spec.shift) not in settings:
        settings.append((spec.margin, spec.shift))
    settings.append((None, None))
    det = chosen.index[chosen["detected"]].to_numpy()
    preds = {st: np.full(len(table), -1) for st in settings}
    for start in range(0, len(det), 256):
        part = det[start:start + 256]
        photos = [store.read_input_image(table["photo"][i]) for i in part]
        for st in settings:
            crops = np.stack([
                frame_crop(img, (table["x0"][i], table["y0"][i], table["side"][i]),
                           chosen["landmarks"][i], spec) if st[0] is None else
                face_crop(img, chosen["box"][i], chosen["landmarks"][i],
                          spec.model_copy(update={"margin": st[0], "shift": st[1]}))[0]
                for img, i in zip(photos, part, strict=True)])
            proba = face_proba(predictor.model, crops, spec, device=predictor.device,
                               batch_size=cfg.batch_size)
            preds[st][part] = proba.argmax(1)
    detected = chosen["detected"].to_numpy(bool)
    return [{"margin": m, "shift": s, **scores(truth, preds[(m, s)], ref, detected),
             "crop": "the planted frame" if m is None else "face_crop",
             "same_as_main_path": bool((preds[(m, s)][detected]
                                        == chosen["pred"][detected].to_numpy().astype(int))
                                       .all())
             if (m, s) == (spec.margin, spec.shift) else None}
            for m, s in settings]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_checkpoint() -> Path | None:
    try:
        from fer_core.models.reference import shipped_path

        return shipped_path("fer2013")
    except (ImportError, FileNotFoundError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="model (default: the shipped fer_core/weights checkpoint)")
    ap.add_argument("--run", type=Path, default=REPO / "bench/work/fer7",
                    help="a run prepared by `fer prepare` from --data (its sets/test)")
    ap.add_argument("--data", type=Path, default=REPO / "bench/work/fer2013",
                    help="the extracted fer2013/ folder the run was prepared from")
    ap.add_argument("--per-class", type=int, default=0,
                    help="test faces per class (0 = every test face of the run)")
    ap.add_argument("--margin", type=float, default=None,
                    help="the crop's margin (default: the checkpoint's face spec)")
    ap.add_argument("--shift", type=float, default=None,
                    help="the crop's shift (default: the checkpoint's face spec)")
    ap.add_argument("--surround", choices=planted.SURROUNDS, default="continued",
                    help="what lies around the planted face (see planted.plant_face)")
    ap.add_argument("--no-sweep", action="store_true", help="skip the crop settings sweep")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=REPO / "bench/work/predict_vs_evaluate",
                    help="where the photos are written (wiped first)")
    ap.add_argument("--results", type=Path, default=REPO / "bench/results/predict_vs_evaluate.json")
    args = ap.parse_args(argv)
    ckpt = args.checkpoint or default_checkpoint()
    if ckpt is None:
        ap.error("no --checkpoint and no shipped model in fer_core/weights")
    cfg = replace(PredictConfig(device="cpu"), margin=args.margin, shift=args.shift)
    result = {"benchmark": "predict_vs_evaluate", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": command_line(),
              "checkpoint": {"path": str(ckpt), "sha256": sha256(Path(ckpt))},
              "run": str(args.run), "data": str(args.data), "seed": args.seed,
              "synthesis": {"face_px": planted.FACE_PX, "canvas_times_face": planted.CANVAS,
                            "surround": args.surround,
                            "surround_band_times_face": planted.SURROUND if args.surround ==
                            "continued" else None,
                            "feather_px": planted.FEATHER if args.surround == "seam" else None,
                            "jpeg_quality": planted.JPEG_QUALITY,
                            "backgrounds": f"skimage.data {', '.join(planted.BACKGROUNDS)} "
                            "(grey)",
                            "upscale": "cv2.INTER_CUBIC"},
              "predict_config": asdict(cfg)}
    watch, t0 = CpuWatch(), time.perf_counter()
    seconds = {}
    table, classes = test_rows(args.run, args.per_class, args.seed)
    if args.work.exists():
        if not (args.work / ".predict_vs_evaluate").exists():
            raise SystemExit(f"{args.work} exists and was not made by this script")
        shutil.rmtree(args.work)
    (args.work / "photos").mkdir(parents=True)
    (args.work / ".predict_vs_evaluate").touch()
    t = time.perf_counter()
    table = pd.concat([table, pd.DataFrame(write_photos(table, args.data, args.work / "photos",
                                                        args.seed, args.surround))], axis=1)
    seconds["write_photos"] = round(time.perf_counter() - t, 1)
    print(f"{len(table)} photos in {args.work / 'photos'}", flush=True)

    predictor = load_predictor(ckpt, cfg)
    if tuple(predictor.classes) != tuple(classes):
        raise SystemExit(f"checkpoint classes {predictor.classes} != run's {classes}")
    result["face_spec"] = predictor.spec.model_dump(mode="json")
    result["checkpoint"] |= {"model": predictor.meta.get("model"),
                             "epoch": predictor.meta.get("epoch"),
                             "metrics": predictor.meta.get("metrics")}
    t = time.perf_counter()
    rows = video.score_files(list(table["photo"]), predictor, cfg)  # a `fer predict` batch
    seconds["predict"] = round(time.perf_counter() - t, 1)
    rows.to_csv(args.work / "predictions.csv", index=False)
    chosen = choose_faces(rows, table, classes)

    t = time.perf_counter()
    images = store.read_rows(store.sets_dir(args.run) / "test" / "images.npy", table["row"])
    ref = face_proba(predictor.model, images, predictor.spec, device=predictor.device,
                     batch_size=256).argmax(1)
    seconds["evaluate"] = round(time.perf_counter() - t, 1)
    truth = table["label"].to_numpy()
    detected = chosen["detected"].to_numpy(bool)
    pred = (chosen["pred"].fillna(-1).to_numpy().astype(int) if "pred" in chosen
            else np.full(len(table), -1))
    everything = np.ones(len(table), bool)
    result |= {
        "images": len(table), "per_class": args.per_class or "all",
        "detection_rate": round(float(detected.mean()), 4),
        "photos_with_other_faces": int((chosen["faces"] > detected.astype(int)).sum()),
        "on_detected": scores(truth, pred, ref, detected),
        "on_all": {**scores(truth, pred, ref, everything),
                   "note": "a face not found in its photo counts as a wrong prediction"},
        "per_class_on_detected": {
            c: {"n_images": int((truth == i).sum()),
                "detection_rate": round(float(detected[truth == i].mean()), 4),
                **scores(truth, pred, ref, detected & (truth == i))}
            for i, c in enumerate(classes) if (detected & (truth == i)).any()},
        "framing_test": planted.summarise_framing(
            chosen.loc[detected, ["side_over_box", "dx", "dy", "box_w_over_h",
                                  "box_h_over_side"]].to_dict("records")),
    }
    o = result["on_detected"]
    print(f"detected {result['detection_rate']:.1%}; on detected ({o['n']}): predict "
          f"{o['predict_accuracy']:.2%}, evaluate {o['evaluate_accuracy']:.2%}, gap "
          f"{o['gap_points']} points, agreement {o['agreement']:.1%}", flush=True)
    if not args.no_sweep and detected.any():
        t = time.perf_counter()
        result["sweep"] = sweep(chosen, table, predictor, truth, ref, cfg)
        seconds["sweep"] = round(time.perf_counter() - t, 1)
        for s in result["sweep"]:
            what = ("the planted frame" if s["margin"] is None
                    else f"margin {s['margin']:+.3f} shift {s['shift']:+.3f}")
            print(f"  {what}: predict {s['predict_accuracy']:.2%} gap {s['gap_points']:+.2f} "
                  f"agreement {s['agreement']:.1%}")
    seconds["total"] = round(time.perf_counter() - t0, 1)
    result["seconds"], result["cpu"] = seconds, watch.result()
    result["torch_threads"] = torch.get_num_threads()
    write_result(args.results, result)
    print(f"results: {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
