"""Section 5's face detection, in passes: plain MTCNN, then retries for what it missed.

Face datasets in the wild are mostly face crops, and a crop is MTCNN's hard case: its
image pyramid stops where the image shrinks to 12 px, so a face that fills the frame falls
between its scales (a 48x48 FER2013 crop at min_face_size 20 is searched for faces of
20-40 px). Measured on 1,000 FER2013 training crops: plain MTCNN found 85.0%; with a
replicated border around the image 88.9%; the remaining retries below bring it to ~98%.

Passes, each only over the images that every earlier pass missed:

- ``mtcnn``: facenet-pytorch's MTCNN as published (batched per image size).
- ``padded`` (not by default: its cost is a second MTCNN run over every miss, and the
  ``crop`` pass finds more of them): MTCNN on the image with a replicated border.
- ``crop``: the image is taken to be a face crop: MTCNN's last stage (O-Net) scores
  square boxes around the centre of the image, the best is refined once by O-Net's own
  box regression, and its landmarks are used when O-Net calls it a face.
- ``rotated``: the ``crop`` pass on copies turned by ``rotations`` degrees, for faces
  tilted more than MTCNN was trained on; the landmarks are turned back.

Whatever a pass finds is checked against the geometry of a face (``implausible``):
landmarks that fail are not trusted, the image stays unaligned, and the reason is kept.
O-Net on crops, and the box and image geometry the passes share, are in
``fer_core.prepare.onet``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fer_core import UsageError
from fer_core.config.align import AlignConfig
from fer_core.prepare import onet

PASSES = ("mtcnn", "padded", "crop", "rotated")


@dataclass(frozen=True)
class Found:
    """One face: its probability, five landmarks (x, y) and its box (x0, y0, x1, y1)."""

    prob: float
    points: np.ndarray
    box: np.ndarray


def detect_passes(images: list[np.ndarray], detector, cfg: AlignConfig
                  ) -> tuple[list[Found | None], list[str], list[str]]:
    """The face of each image, the pass that found it, and why not where none was trusted."""
    unknown = [p for p in cfg.passes if p not in PASSES]
    if unknown:
        raise UsageError(f"unknown detection pass(es) {unknown}; known: {list(PASSES)}")
    found: list[Found | None] = [None] * len(images)
    by = [""] * len(images)
    why = ["no face found"] * len(images)
    for name in cfg.passes:
        todo = [i for i in range(len(images)) if found[i] is None]
        if not todo:
            break
        results = _PASS_FUNCS[name]([images[i] for i in todo], detector, cfg)
        for i, face in zip(todo, results, strict=True):
            if face is None:
                continue
            reason = implausible(face, cfg)
            if reason:
                why[i] = f"{name}: {reason}"
            else:
                found[i], by[i], why[i] = face, name, ""
    for _ in range(cfg.refine):
        found = levelled(images, found, detector, cfg, by)
    _return_freed_memory()
    return found, by, why


def _return_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc only; elsewhere a no-op).

    MTCNN's pyramid allocates tensors of a new size for every batch, and glibc keeps the
    freed ones: measured over 16 batches of FER2013, RSS grew 310 MB with plain MTCNN and
    530 MB with these passes, all of it returned by one malloc_trim (~1 ms).
    """
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util

        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim  # noqa: B018 - musl and macOS have no malloc_trim
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc = None


def eye_angle(left_eye, right_eye) -> float:
    """Angle of the eye line in degrees (image coordinates, y down)."""
    return math.degrees(math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))


def rotation_matrix(left_eye, right_eye) -> np.ndarray:
    """The affine map that rotates about the eyes' midpoint so the eyes lie level."""
    centre = ((left_eye[0] + right_eye[0]) / 2.0, (left_eye[1] + right_eye[1]) / 2.0)
    return cv2.getRotationMatrix2D(centre, eye_angle(left_eye, right_eye), 1.0)


def levelled(images: list[np.ndarray], found: list[Found | None], detector,
             cfg: AlignConfig, by: list[str] | None = None) -> list[Found | None]:
    """Landmarks measured again by O-Net on the face turned level by the first estimate.

    MTCNN places landmarks best on upright faces, and an eye landmark one pixel off on a
    48x48 face turns the eye line by ~3 degrees. Measured on 600 FER2013 test faces turned
    by up to 25 degrees: a second look at the levelled face took the saved faces' residual
    tilt from median 1.20 / p90 4.74 degrees to 0.92 / 3.20, for one O-Net run per face
    (about a tenth of a detection), where a whole second detection (0.85 / 2.60) would
    double the cost.
    """
    idx = [i for i, f in enumerate(found) if f is not None
           and (by is None or by[i] != "mtcnn"
                or abs(eye_angle(f.points[0], f.points[1])) >= cfg.refine_min_tilt)]
    if not idx:
        return found
    turns, crops, boxes = [], [], []
    for i in idx:
        face, image = found[i], images[i]
        turn = rotation_matrix(face.points[0], face.points[1])
        level = onet.warped(image, turn)
        box = onet.square(face.box)
        mid = cv2.transform(((box[:2] + box[2:]) / 2)[None, None], turn)[0, 0]
        half = (box[2:] - box[:2]) / 2
        box = np.concatenate([mid - half, mid + half])
        turns.append(turn)
        boxes.append(box)
        crops.append(onet.crop(level, box))
    _, pts, prob = onet.outputs(np.stack(crops), detector)
    out = list(found)
    for k, i in enumerate(idx):
        if prob[k] < cfg.crop_threshold:
            continue  # not a face to O-Net once levelled: keep the first estimate
        back = cv2.invertAffineTransform(turns[k])
        points = cv2.transform(onet.landmarks_in(boxes[k], pts[k])[None], back)[0]
        out[i] = Found(found[i].prob, points, found[i].box)
    return out


def implausible(face: Found, cfg: AlignConfig) -> str:
    """Why these landmarks cannot be a face's (empty when they can)."""
    left, right, nose = face.points[0], face.points[1], face.points[2]
    eyes = right - left
    dist = float(np.hypot(*eyes))
    side = float(min(face.box[2] - face.box[0], face.box[3] - face.box[1]))
    if dist <= 0 or side <= 0:
        return "eyes at one point"
    tilt = eye_angle(left, right)
    if abs(tilt) > cfg.max_tilt:
        return f"eye line at {tilt:.0f} degrees"
    lo, hi = cfg.eye_distance
    if not lo <= dist / side <= hi:
        return f"eye distance {dist / side:.2f} of the face box (a face: {lo}-{hi})"
    along = eyes / dist
    down = np.array([-along[1], along[0]])  # image y points down
    rel = nose - (left + right) / 2.0
    below, across = float(rel @ down) / dist, float(rel @ along) / dist
    lo, hi = cfg.nose_below
    if not lo <= below <= hi:
        where = "above" if below < 0 else "on" if below < lo else "far below"
        return f"nose {where} the eye line ({below:.2f} eye distances)"
    if abs(across) > cfg.nose_across:
        return f"nose {abs(across):.2f} eye distances to the side of the eyes"
    return ""


def mtcnn_pass(images: list[np.ndarray], detector, cfg: AlignConfig) -> list[Found | None]:
    """MTCNN as published, batched per image size (its batch mode needs equal sizes)."""
    out: list[Found | None] = [None] * len(images)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(img.shape, []).append(i)
    for idx in groups.values():
        boxes, probs, points = detector.detect(np.stack([images[i] for i in idx]),
                                               landmarks=True)
        for i, box, prob, pts in zip(idx, boxes, probs, points, strict=True):
            if pts is not None:
                out[i] = Found(float(prob[0]), np.asarray(pts[0], float),
                               np.asarray(box[0], float))
    return out


def padded_pass(images: list[np.ndarray], detector, cfg: AlignConfig) -> list[Found | None]:
    pads = [int(round(cfg.pad * min(img.shape[:2]))) for img in images]
    bordered = [cv2.copyMakeBorder(img, k, k, k, k, cv2.BORDER_REPLICATE)
                for img, k in zip(images, pads, strict=True)]
    return [None if f is None else _moved(f, np.array([-k, -k], float))
            for f, k in zip(mtcnn_pass(bordered, detector, cfg), pads, strict=True)]


def crop_pass(images: list[np.ndarray], detector, cfg: AlignConfig) -> list[Found | None]:
    """O-Net over boxes around each image's centre, the best box refined once."""
    if not images:
        return []
    first = _best_boxes(images, [_centre_boxes(img.shape, cfg) for img in images], detector)
    refined = _best_boxes(images, [[onet.square(f.box)] for f in first], detector)
    best = [b if b.prob >= a.prob else a for a, b in zip(first, refined, strict=True)]
    return [f if f.prob >= cfg.crop_threshold else None for f in best]


def rotated_pass(images: list[np.ndarray], detector, cfg: AlignConfig) -> list[Found | None]:
    best: list[Found | None] = [None] * len(images)
    for degrees in cfg.rotations:
        turns = [onet.turn(img.shape, degrees) for img in images]
        turned = [onet.warped(img, m) for img, m in zip(images, turns, strict=True)]
        for i, face in enumerate(crop_pass(turned, detector, cfg)):
            if face is not None and (best[i] is None or face.prob > best[i].prob):
                best[i] = _unturned(face, turns[i])
    return best


_PASS_FUNCS = {"mtcnn": mtcnn_pass, "padded": padded_pass, "crop": crop_pass,
               "rotated": rotated_pass}


def _centre_boxes(shape, cfg: AlignConfig) -> list[np.ndarray]:
    h, w = shape[:2]
    boxes = []
    for scale in cfg.crop_scales:
        side = scale * min(h, w)
        shifts = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0)) if cfg.crop_shift else ((0, 0),)
        for dx, dy in shifts:
            cx, cy = w / 2 + dx * cfg.crop_shift * w, h / 2 + dy * cfg.crop_shift * h
            boxes.append(np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))
    return boxes


def _best_boxes(images: list[np.ndarray], boxes: list[list[np.ndarray]], detector) -> list[Found]:
    """O-Net on every box of every image; each image's most face-like box, regressed."""
    crops = [onet.crop(img, b) for img, bs in zip(images, boxes, strict=True) for b in bs]
    reg, pts, prob = onet.outputs(np.stack(crops), detector)
    out, k = [], 0
    for bs in boxes:
        j = k + int(np.argmax(prob[k:k + len(bs)]))
        box = bs[j - k]
        side = box[2:] - box[:2]
        points = onet.landmarks_in(box, pts[j])
        moved = box + reg[j] * np.concatenate([side, side])  # O-Net's box regression
        out.append(Found(float(prob[j]), points, moved))
        k += len(bs)
    return out


def _unturned(face: Found, turn: np.ndarray) -> Found:
    back = cv2.invertAffineTransform(turn)
    points = cv2.transform(face.points[None], back)[0]
    # The box keeps its side, around its centre turned back (it only scales plausibility).
    centre = cv2.transform(((face.box[:2] + face.box[2:]) / 2)[None, None], back)[0, 0]
    half = (face.box[2:] - face.box[:2]) / 2
    return Found(face.prob, points, np.concatenate([centre - half, centre + half]))


def _moved(face: Found, offset: np.ndarray) -> Found:
    return Found(face.prob, face.points + offset, face.box + np.tile(offset, 2))
