"""Prediction on files: image files and video frames through ``predict.predict_images``,
annotated copies, and per-video timelines. All reads and writes go through the store.

A bad file never stops a run: it becomes one ``error`` row with the store's reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePath

import cv2
import numpy as np
import pandas as pd

from fer_core import store
from fer_core.infer.predict import (
    BOX,
    OK,
    PredictConfig,
    Predictor,
    error_row,
    predict_images,
    result_frame,
)

PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))


def output_names(files: Sequence[str]) -> dict[str, str]:
    """A short relative name per input (its path below the inputs' common folder): where
    its annotated copy and timeline go."""
    if not files:
        return {}
    absolute = [os.path.abspath(f) for f in files]
    common = os.path.commonpath([os.path.dirname(a) for a in absolute])
    return {f: PurePath(os.path.relpath(a, common)).as_posix()
            for f, a in zip(files, absolute, strict=True)}


def plan_batches(files: Sequence[str], files_per_batch: int) -> list[list[str]]:
    """Image files in groups of ``files_per_batch``; each video a batch of its own."""
    images = [f for f in files if not store.is_video(f)]
    batches = [images[i:i + files_per_batch] for i in range(0, len(images), files_per_batch)]
    return batches + [[f] for f in files if store.is_video(f)]


def score_files(files: Sequence[str], predictor: Predictor, cfg: PredictConfig, *,
                names: dict[str, str] | None = None,
                annotate_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Rows for ``files`` (images and videos), in input order; ``file`` is the path as given."""
    names = names or output_names(files)
    parts = []
    for start in range(0, len(files), cfg.files_per_batch):
        chunk = files[start:start + cfg.files_per_batch]
        images = [f for f in chunk if not store.is_video(f)]
        parts.append(score_images(images, predictor, cfg, names, annotate_dir))
        parts.extend(score_video(f, predictor, cfg, names, annotate_dir)
                     for f in chunk if store.is_video(f))
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True) if files else None
    if frame is None or not len(frame):
        return result_frame([], predictor.classes)
    order = {f: i for i, f in enumerate(files)}
    return frame.sort_values("file", key=lambda s: s.map(order), kind="stable",
                             ignore_index=True)


def score_images(files: Sequence[str], predictor: Predictor, cfg: PredictConfig,
                 names: dict[str, str], annotate_dir=None) -> pd.DataFrame:
    images, good, errors = [], [], []
    for f in files:
        try:
            images.append(store.read_input_image(f, max_pixels=cfg.max_pixels,
                                                 reduce_above=cfg.reduce_above))
            good.append(f)
        except store.BadImage as e:
            errors.append({"file": f, **error_row(e.reason)})
    if not images:
        return result_frame(errors, predictor.classes)
    rows = predict_images(images, predictor, cfg)
    rows["file"] = [good[i] for i in rows["image"]]
    if annotate_dir is not None:
        for i, img in enumerate(images):
            store.write_image(Path(annotate_dir) / annotated_name(names[good[i]]),
                              annotate(img, rows[rows["image"] == i], predictor.classes))
    if not errors:
        return rows
    return pd.concat([rows, result_frame(errors, predictor.classes)], ignore_index=True)


def annotated_name(name: str) -> str:
    """The annotated copy's name: the input's, with a suffix OpenCV can write."""
    suffix = Path(name).suffix
    return name if suffix.lower() in store.IMAGE_SUFFIXES and suffix.islower() \
        else f"{name}.png"


def score_video(path: str, predictor: Predictor, cfg: PredictConfig, names: dict[str, str],
                annotate_dir=None) -> pd.DataFrame:
    """Rows for every ``cfg.every``-th frame, classified ``cfg.detect_batch_size`` frames
    at a time (one MTCNN batch: all frames of a video have one size)."""
    parts, chunk = [], []
    fps = store.video_fps(path)

    def flush() -> None:
        rows = predict_images([img for _, img in chunk], predictor, cfg)
        index = np.array([i for i, _ in chunk])[rows["image"].to_numpy(int)]
        rows["frame"], rows["time_s"] = index, index / fps
        if annotate_dir is not None:
            for k, (i, img) in enumerate(chunk):
                store.write_image(Path(annotate_dir) / names[path] / f"frame_{i:06d}.jpg",
                                  annotate(img, rows[rows["image"] == k], predictor.classes))
        parts.append(rows)
        chunk.clear()

    try:
        for item in store.iter_video_frames(path, every=cfg.every):
            chunk.append(item)
            if len(chunk) == cfg.detect_batch_size:
                flush()
        if chunk:
            flush()
    except store.BadImage as e:
        parts.append(result_frame([error_row(e.reason)], predictor.classes))
    out = pd.concat(parts, ignore_index=True)
    out["file"] = path
    return out


# ---------------------------------------------------------------- pictures and timelines


def annotate(image: np.ndarray, rows: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """A copy of ``image`` with each face's box, landmarks, class and probability."""
    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 400))
    for _, r in rows[rows["status"] == OK].iterrows():
        color = PALETTE[list(classes).index(r["class"]) % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(r[c])) for c in BOX)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        for p in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"):
            cv2.circle(out, (int(round(r[f"{p}_x"])), int(round(r[f"{p}_y"]))), thick + 1,
                       color, -1)
        label = f"{r['class']} {r['p_' + r['class']]:.2f}"
        scale = 0.4 * thick + 0.1
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        top = max(y1 - h - base - 2, 0)
        cv2.rectangle(out, (x1, top), (x1 + w + 2, top + h + base + 2), color, -1)
        cv2.putText(out, label, (x1 + 1, top + h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thick, cv2.LINE_AA)
    return out


def timeline_frame(rows: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """One video's rows as a timeline: frame, time_s, face (0 = largest), class, p_*."""
    cols = ["frame", "time_s", "face", "status", "class", *(f"p_{c}" for c in classes)]
    return rows[cols].sort_values(["frame", "face"], kind="stable", ignore_index=True)


def timeline_figure(timeline: pd.DataFrame, classes: Sequence[str], *, title: str):
    """Each class's probability over time for the largest face (face 0) of each frame."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    main = timeline[timeline["face"] == 0]
    timed = bool(len(main)) and bool(main["time_s"].notna().all())
    x = main["time_s"] if timed else main["frame"]
    for k, c in enumerate(classes):
        ax.plot(x, main[f"p_{c}"], marker=".", label=c,
                color=np.array(PALETTE[k % len(PALETTE)]) / 255)
    ax.set_xlabel("time (s)" if timed else "frame")
    ax.set_ylabel("probability (largest face)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(classes), 4), loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def write_results(out: str | os.PathLike, rows: pd.DataFrame,
                  classes: Sequence[str]) -> dict[str, str]:
    """The results (``.csv`` or ``.json``) and, per video, a timeline CSV and PNG in
    ``<out stem>_timelines/`` (named as ``output_names``). Returns what was written."""
    out = Path(out)
    table = rows.drop(columns=["image"])
    if out.suffix.lower() == ".json":
        store.write_json(out, json.loads(table.to_json(orient="records")))
    else:
        store.write_csv(out, table)
    written = {"results": str(out)}
    videos = table[table["frame"].notna()]
    names = output_names(list(dict.fromkeys(table["file"])))
    for path, part in videos.groupby("file", sort=True):
        name = names[path]
        base = out.parent / f"{out.stem}_timelines" / name
        line = timeline_frame(part, classes)
        store.write_csv(f"{base}.csv", line)
        store.write_figure(f"{base}.png", timeline_figure(line, classes, title=name))
        written[f"timeline:{name}"] = f"{base}.csv"
    return written


def status_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Faces found, and inputs (images or frames) without a face or unreadable."""
    return {s: int((rows["status"] == s).sum()) for s in ("ok", "no_face", "error")}
