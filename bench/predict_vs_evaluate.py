"""Does `fer predict` see faces as training saw them? FER2013 test faces planted in photos.

Training learns from whole dataset crops: FER2013's 48x48 faces, aligned where MTCNN found
the eyes, resized to 96x96 (``fer prepare``'s saved sets). `fer predict` finds a face in a
photo with MTCNN and cuts a square of (1 + margin) x the box around it. This benchmark
checks that the two agree, on the same faces:

  * predict: each test face is upscaled (cubic) to 120-160 px and planted at a random
    position in a larger photo (2-3x the face, a random crop of one of scikit-image's
    sample photos as the background, grey like the faces, 4 px feathered seam), written
    as a JPEG and scored through ``fer_core.infer.video.score_files`` -- what each `fer predict`
    batch task runs (file reading, MTCNN, crop, alignment, resize, classifier);
  * evaluate: the prepared run's saved test-set rows of the same files
    (``sets/test/images.npy``), scored by ``fer_core.evaluate.score.predict_proba``.

Both use one loaded model and no flip TTA. Reported: both accuracies (on the faces
detected in their photo, and on all with a missed face counted wrong), their gap, the
agreement of the two predicted classes, the detection rate, and a sweep of crop settings
over the same detections (with, for reference, a crop exactly on the planted frame: what
no crop computed from MTCNN's box can beat). ``--framing N`` first measures, on N *train*
faces per class planted the same way, where the FER2013 48x48 frame lies relative to
MTCNN's box (``PredictConfig``'s crop defaults come from that measurement).

    .venv/bin/python bench/predict_vs_evaluate.py --checkpoint bench/work/dev_model/best.pt \\
        --per-class 100 --framing 100
    (--per-class 0: all of test/; writes bench/results/predict_vs_evaluate.json)
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
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

from bench.measure import CpuWatch  # noqa: E402
from fer_core import store
from fer_core.evaluate import score as evaluate
from fer_core.infer import video  # noqa: E402
from fer_core.infer.predict import (  # noqa: E402
    BOX,
    LANDMARK_COLUMNS,
    OK,
    PredictConfig,
    cut,
    detect_faces,
    face_crop,
    load_predictor,
)
from fer_core.prepare import resize
from fer_core.runtime.device import machine_info  # noqa: E402

# Sample photos of scikit-image without a human face (camera and astronaut have one).
BACKGROUNDS = ("brick", "grass", "gravel", "coffee", "rocket", "clock", "coins", "moon",
               "chelsea", "hubble_deep_field", "immunohistochemistry", "page")
FACE_PX = (120, 160)  # the planted face's side, pixels
CANVAS = (1.8, 3.0)  # the photo's height and width, each, as multiples of the face's side
FEATHER = 4  # surround "seam": pixels over which the face blends into the background
SURROUND = 0.3  # surround "continued": the band, x the face's side, where it fades out
JPEG_QUALITY = 92
SWEEP_MARGINS = (-0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2)
SWEEP_SHIFTS = (-0.05, 0.0, 0.05)


# ---------------------------------------------------------------- photos


def backgrounds() -> list[np.ndarray]:
    """The sample photos, grey (uint8 2-D): the faces are grey, and a colour frame around
    a grey face is no photo that exists."""
    from skimage import data

    out = []
    for name in BACKGROUNDS:
        img = getattr(data, name)()
        out.append(cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img)
    return out


def plant_face(face: np.ndarray, bgs: list[np.ndarray], rng: np.random.Generator, *,
               surround: str = "continued") -> tuple[np.ndarray, tuple[int, int, int]]:
    """A photo (RGB uint8) holding ``face`` (a grey or RGB square) and the face's frame in
    it, (x0, y0, side): the face upscaled to FACE_PX, at a random place on a random crop of
    a random background.

    ``continued``: the face's surroundings go on past its frame (the face reflected at its
    edges) and fade into the background over SURROUND x its side, as a face in a photo has
    hair, ears, neck and scene around it. ``seam``: the face pasted as a square, its outer
    FEATHER pixels blended into the background; a crop wider than the 48x48 frame then
    holds a straight edge and an unrelated texture that no photo has around a face.
    """
    grey = face if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    side = int(rng.integers(FACE_PX[0], FACE_PX[1] + 1))
    h_out, w_out = (int(side * rng.uniform(*CANVAS)) for _ in range(2))
    bg = bgs[int(rng.integers(len(bgs)))]
    h, w = bg.shape
    ch, cw = int(rng.integers(h // 3, h + 1)), int(rng.integers(w // 3, w + 1))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    canvas = cv2.resize(bg[y:y + ch, x:x + cw], (w_out, h_out),
                        interpolation=cv2.INTER_CUBIC).astype(np.float32)
    big = cv2.resize(grey, (side, side), interpolation=cv2.INTER_CUBIC)
    x0, y0 = int(rng.integers(0, w_out - side + 1)), int(rng.integers(0, h_out - side + 1))
    if surround == "continued":
        pad = int(round(SURROUND * side))
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        ramp = np.clip((np.arange(side + 2 * pad) + 0.5) / pad, 0, 1)
    elif surround == "seam":
        pad = 0
        ramp = np.clip((np.arange(side) + 0.5) / FEATHER, 0, 1)
    else:
        raise ValueError(f"surround must be continued or seam, not {surround!r}")
    ramp = np.minimum(ramp, ramp[::-1])
    alpha = np.minimum.outer(ramp, ramp)
    # The padded face's square in the canvas, clipped to it.
    gx0, gy0, n = x0 - pad, y0 - pad, side + 2 * pad
    cx0, cy0, cx1, cy1 = max(gx0, 0), max(gy0, 0), min(gx0 + n, w_out), min(gy0 + n, h_out)
    a = alpha[cy0 - gy0:cy1 - gy0, cx0 - gx0:cx1 - gx0]
    f = big[cy0 - gy0:cy1 - gy0, cx0 - gx0:cx1 - gx0].astype(np.float32)
    canvas[cy0:cy1, cx0:cx1] = a * f + (1 - a) * canvas[cy0:cy1, cx0:cx1]
    photo = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(photo[..., None], 3, axis=2), (x0, y0, side)


def jpeg_roundtrip(photo: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def planted_face(boxes: np.ndarray, frame: tuple[int, int, int]) -> int | None:
    """Which detection is the planted face: the one whose box centre lies inside its frame
    (nearest the frame's centre), or None."""
    x0, y0, side = frame
    best, best_d = None, np.inf
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, float).reshape(-1, 4)):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if x0 <= cx <= x0 + side and y0 <= cy <= y0 + side:
            d = np.hypot(cx - x0 - side / 2, cy - y0 - side / 2)
            if d < best_d:
                best, best_d = k, d
    return best


def framing(box, frame) -> dict:
    """Where the 48x48 frame lies relative to MTCNN's box, in units of the box's longer
    side L: frame side / L (= 1 + the matching margin), and the frame centre's offset from
    the box centre (dx right, dy down)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x0, y0, side = frame
    longer = max(x2 - x1, y2 - y1)
    return {"side_over_box": side / longer, "dx": (x0 + side / 2 - (x1 + x2) / 2) / longer,
            "dy": (y0 + side / 2 - (y1 + y2) / 2) / longer,
            "box_w_over_h": (x2 - x1) / (y2 - y1), "box_h_over_side": (y2 - y1) / side}


def summarise_framing(rows: list[dict]) -> dict:
    table = pd.DataFrame(rows)
    out = {"n": len(table)}
    for col in table.columns:
        q = np.percentile(table[col], [10, 25, 50, 75, 90])
        out[col] = {"median": round(float(q[2]), 4), "mean": round(float(table[col].mean()), 4),
                    "q10": round(float(q[0]), 4), "q25": round(float(q[1]), 4),
                    "q75": round(float(q[3]), 4), "q90": round(float(q[4]), 4)}
    if len(table):
        out["margin_matching_median"] = round(out["side_over_box"]["median"] - 1, 4)
        out["shift_matching_median"] = out["dy"]["median"]
    return out


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


def train_files(data: Path, per_class: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    out = []
    for folder in sorted(p for p in (data / "train").iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        out += [files[i] for i in sorted(rng.choice(len(files), min(per_class, len(files)),
                                                    replace=False))]
    return out


# ---------------------------------------------------------------- phases


def measure_framing(data: Path, per_class: int, seed: int, cfg: PredictConfig,
                    surround: str) -> dict:
    """The FER2013 frame against MTCNN's box on planted *train* faces (not the test faces
    the comparison scores, so the crop is not tuned on them)."""
    from fer_core.prepare import align

    detector = align.load_detector(cfg.align_config("cpu"))
    bgs, rng = backgrounds(), np.random.default_rng(seed + 1)
    files = train_files(data, per_class, seed)
    rows, missed = [], 0
    for f in files:
        photo, frame = plant_face(store.read_input_image(str(f)), bgs, rng, surround=surround)
        (faces,) = detect_faces([jpeg_roundtrip(photo)], detector)
        k = planted_face(faces.boxes, frame)
        if k is None:
            missed += 1
            continue
        rows.append(framing(faces.boxes[k], frame))
    return {"images": len(files), "detected": len(rows),
            "detection_rate": round(len(rows) / max(len(files), 1), 4),
            "source": f"{data}/train, {per_class} per class", **summarise_framing(rows)}


def write_photos(table: pd.DataFrame, data: Path, out: Path, seed: int,
                 surround: str) -> list[dict]:
    bgs, rng = backgrounds(), np.random.default_rng(seed)
    planted = []
    for source in table["source"]:
        photo, frame = plant_face(store.read_input_image(str(data / source)), bgs, rng,
                                  surround=surround)
        path = out / Path(source).with_suffix(".jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok, path
        planted.append({"photo": str(path), "x0": frame[0], "y0": frame[1], "side": frame[2],
                        "height": photo.shape[0], "width": photo.shape[1]})
    return planted


def choose_faces(rows: pd.DataFrame, table: pd.DataFrame, classes) -> pd.DataFrame:
    """Per photo: the planted face's row of the prediction (or none), and the count of
    other faces found."""
    by_file = {f: part for f, part in rows.groupby("file", sort=False)}
    out = []
    for t in table.itertuples():
        part = by_file.get(t.photo)
        ok = part[part["status"] == OK] if part is not None else rows.iloc[:0]
        frame = (t.x0, t.y0, t.side)
        k = planted_face(ok[list(BOX)].to_numpy(float), frame) if len(ok) else None
        rec = {"faces": len(ok), "detected": k is not None}
        if k is not None:
            r = ok.iloc[k]
            box = r[list(BOX)].to_numpy(float)
            rec |= {"pred": classes.index(r["class"]), "box": box,
                    "landmarks": r[list(LANDMARK_COLUMNS)].to_numpy(float).reshape(5, 2),
                    **framing(box, frame)}
        out.append(rec)
    return pd.DataFrame(out)


def scores(truth: np.ndarray, pred: np.ndarray, ref: np.ndarray, detected: np.ndarray) -> dict:
    d = detected
    pa, ea = float((pred[d] == truth[d]).mean()), float((ref[d] == truth[d]).mean())
    return {"n": int(d.sum()), "predict_accuracy": round(pa, 4),
            "evaluate_accuracy": round(ea, 4), "gap_points": round(100 * (ea - pa), 2),
            "agreement": round(float((pred[d] == ref[d]).mean()), 4)}


def frame_crop(image: np.ndarray, frame, landmarks, *, size: int, border: str) -> np.ndarray:
    """The face cut exactly on its planted 48x48 frame, then aligned on MTCNN's landmarks
    and resized as ``face_crop`` does: the best any crop from the box could do."""
    x0, y0, side = frame
    pts = np.asarray(landmarks, float) - (x0, y0)
    row = {"aligned": True, "left_eye_x": pts[0, 0], "left_eye_y": pts[0, 1],
           "right_eye_x": pts[1, 0], "right_eye_y": pts[1, 1]}
    return resize.preprocess_image(cut(image, x0, y0, side), row,
                                   resize.ResizeConfig(size=size, border=border))


def sweep(chosen: pd.DataFrame, table: pd.DataFrame, predictor, truth, ref, cfg) -> list[dict]:
    """Every (margin, shift) of the sweep on the same detections: the crop that
    ``predict_images`` takes (``face_crop``), classified the same way; and, for reference,
    the crop on the planted frame itself (``frame_crop``; margin and shift None)."""
    settings = [(m, s) for m in SWEEP_MARGINS for s in SWEEP_SHIFTS]
    if (cfg.margin, cfg.shift) not in settings:
        settings.append((cfg.margin, cfg.shift))
    settings.append((None, None))
    det = chosen.index[chosen["detected"]].to_numpy()
    preds = {st: np.full(len(table), -1) for st in settings}
    for start in range(0, len(det), 256):
        part = det[start:start + 256]
        photos = [store.read_input_image(table["photo"][i]) for i in part]
        for st in settings:
            crops = np.stack([
                frame_crop(img, (table["x0"][i], table["y0"][i], table["side"][i]),
                           chosen["landmarks"][i], size=predictor.input_size,
                           border=cfg.border) if st[0] is None else
                face_crop(img, chosen["box"][i], chosen["landmarks"][i],
                          size=predictor.input_size, margin=st[0], shift=st[1],
                          border=cfg.border)[0]
                for img, i in zip(photos, part, strict=True)])
            proba = evaluate.predict_proba(predictor.model, crops, device=predictor.device,
                                           batch_size=cfg.batch_size)
            preds[st][part] = proba.argmax(1)
    detected = chosen["detected"].to_numpy(bool)
    return [{"margin": m, "shift": s, **scores(truth, preds[(m, s)], ref, detected),
             "crop": "the planted frame" if m is None else "face_crop",
             "same_as_main_path": bool((preds[(m, s)][detected]
                                        == chosen["pred"][detected].to_numpy().astype(int))
                                       .all())
             if (m, s) == (cfg.margin, cfg.shift) else None}
            for m, s in settings]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_checkpoint() -> Path | None:
    try:
        from fer_core.models.weights import default_checkpoint as shipped

        return shipped()
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
    ap.add_argument("--framing", type=int, default=100, metavar="N",
                    help="measure the frame vs MTCNN's box on N train faces per class (0: skip)")
    ap.add_argument("--margin", type=float, default=PredictConfig.margin)
    ap.add_argument("--shift", type=float, default=PredictConfig.shift)
    ap.add_argument("--surround", choices=("continued", "seam"), default="continued",
                    help="what lies around the planted face (see plant_face)")
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
              "command": shlex.join([sys.executable, *sys.argv]), "machine": machine_info(),
              "checkpoint": {"path": str(ckpt), "sha256": sha256(Path(ckpt))},
              "run": str(args.run), "data": str(args.data), "seed": args.seed,
              "synthesis": {"face_px": FACE_PX, "canvas_times_face": CANVAS,
                            "surround": args.surround,
                            "surround_band_times_face": SURROUND if args.surround ==
                            "continued" else None,
                            "feather_px": FEATHER if args.surround == "seam" else None,
                            "jpeg_quality": JPEG_QUALITY,
                            "backgrounds": f"skimage.data {', '.join(BACKGROUNDS)} (grey)",
                            "upscale": "cv2.INTER_CUBIC"},
              "predict_config": asdict(cfg)}
    watch, t0 = CpuWatch(), time.perf_counter()
    seconds = {}
    if args.framing:
        print(f"framing on {args.framing} train faces per class ...", flush=True)
        result["framing_train"] = measure_framing(args.data, args.framing, args.seed, cfg,
                                                  args.surround)
        seconds["framing"] = round(time.perf_counter() - t0, 1)
        f = result["framing_train"]
        print(f"  frame side / box {f['side_over_box']['median']}, dy {f['dy']['median']}, "
              f"detected {f['detection_rate']}", flush=True)

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
    ref = evaluate.predict_proba(predictor.model, images, device=predictor.device,
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
        "framing_test": summarise_framing(
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
    store.write_json(args.results, result)
    print(f"results: {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
