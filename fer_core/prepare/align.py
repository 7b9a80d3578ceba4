"""Section 5, alignment: MTCNN eye landmarks, then a rotation that levels the eyes.

Detection runs batched over images of one size (MTCNN's batch mode needs equal sizes;
batching is 3-4x faster than one image at a time on a CPU). The result of detection is
data (landmarks per image, in the manifest); ``align_face`` applies it, and is the one
code path used in preparation and in prediction.
"""

from __future__ import annotations

import hashlib
import math

import cv2
import numpy as np
import pandas as pd

from fer_core.config.align import AlignConfig
from fer_core.prepare import detect
from fer_core.prepare.detect import eye_angle, rotation_matrix
from fer_core.prepare.distribution import with_total
from fer_core.prepare.manifest import KEPT, LANDMARKS

BORDERS = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT,
           "reflect": cv2.BORDER_REFLECT_101}
DETECTION_COLUMNS = ("aligned", *LANDMARKS, "face_prob", "angle", "align_pass", "align_note")


def load_detector(cfg: AlignConfig):
    """facenet-pytorch's MTCNN; its weights ship inside the package (nothing downloads)."""
    from facenet_pytorch import MTCNN

    from fer_core.runtime.device import resolve_device

    return MTCNN(min_face_size=cfg.min_face_size, thresholds=list(cfg.thresholds),
                 select_largest=True, device=resolve_device(cfg.device))


def plan_batches(manifest: pd.DataFrame, cfg: AlignConfig) -> list[pd.DataFrame]:
    """The images to align (path, sha1), grouped by size into batches of about batch_size.

    Batches follow path order, and their boundaries are content-defined (a path whose hash
    is 0 mod batch_size ends a batch): adding, removing or editing one image changes only
    the batch it is in, and every other batch keeps its images, key and cached result.
    """
    todo = manifest[(manifest["status"] == KEPT) & (manifest["split"] != "")]
    batches: list[pd.DataFrame] = []
    for _, group in todo.sort_values("path").groupby(["height", "width"], sort=True):
        group = group[["path", "sha1"]].reset_index(drop=True)
        ends = [_path_hash(p) % cfg.batch_size == 0 for p in group["path"]]
        start = 0
        for i in range(len(group)):
            if ends[i] or i + 1 - start >= 2 * cfg.batch_size or i == len(group) - 1:
                batches.append(group.iloc[start:i + 1].reset_index(drop=True))
                start = i + 1
    return batches


def _path_hash(path: str) -> int:
    return int(hashlib.sha1(path.encode()).hexdigest()[:12], 16)


def detect_landmarks(images: list[np.ndarray], detector,
                     cfg: AlignConfig | None = None) -> pd.DataFrame:
    """Eye and nose landmarks of each image's face, the pass that found them, or why none.

    Images where no pass found plausible landmarks have NaN landmarks, ``aligned`` False,
    and the reason in ``align_note``.
    """
    found, by, why = detect.detect_passes(images, detector, cfg or AlignConfig())
    rows = []
    for face, name, note in zip(found, by, why, strict=True):
        if face is None:
            rows.append({"aligned": False, **{c: math.nan for c in (*LANDMARKS, "face_prob",
                                                                     "angle")},
                         "align_pass": "", "align_note": note})
            continue
        (lx, ly), (rx, ry), (nx, ny) = face.points[:3]
        rows.append({"aligned": True, "left_eye_x": lx, "left_eye_y": ly, "right_eye_x": rx,
                     "right_eye_y": ry, "nose_x": nx, "nose_y": ny, "face_prob": face.prob,
                     "angle": eye_angle((lx, ly), (rx, ry)), "align_pass": name,
                     "align_note": ""})
    return pd.DataFrame(rows, columns=list(DETECTION_COLUMNS))


def align_face(image: np.ndarray, left_eye, right_eye, *, border: str = "replicate") -> np.ndarray:
    """Rotate the whole image so the two eyes lie on a horizontal line (paper, section 5)."""
    h, w = image.shape[:2]
    return cv2.warpAffine(image, rotation_matrix(left_eye, right_eye), (w, h),
                          flags=cv2.INTER_LINEAR, borderMode=BORDERS[border])


def merge_alignment(manifest: pd.DataFrame, paths: list[str], found: pd.DataFrame) -> pd.DataFrame:
    """A new manifest with the detections of ``paths`` written into their rows."""
    out = manifest.copy()
    pos = pd.Index(out["path"]).get_indexer(paths)
    if (pos < 0).any():
        missing = paths[int(np.argmin(pos))]
        raise KeyError(f"alignment results for a path not in the manifest: {missing}")
    for col in DETECTION_COLUMNS:
        out.loc[out.index[pos], col] = found[col].to_numpy()
    return out


def mark_failed(manifest: pd.DataFrame, paths: list[str], error: str) -> pd.DataFrame:
    """A new manifest whose ``paths`` carry the error of their failed alignment batch."""
    out = manifest.copy()
    out.loc[out["path"].isin(paths), "align_error"] = error
    return out


def alignment_table(manifest: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Table 3: aligned and not-aligned images per class and split."""
    live = manifest[(manifest["status"] == KEPT) & (manifest["split"] != "")]
    table = pd.DataFrame({"class": list(classes)})
    splits = ["train", "val"] + (["test"] if (live["split"] == "test").any() else [])
    for s in splits:
        part = live[live["split"] == s]
        for flag, name in ((True, "aligned"), (False, "not_aligned")):
            counts = part[part["aligned"] == flag].groupby("class").size()
            table[f"{s}_{name}"] = counts.reindex(list(classes), fill_value=0).to_numpy()
    return with_total(table)
