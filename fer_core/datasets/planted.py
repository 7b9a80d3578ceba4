"""Dataset faces planted in larger photos at a known place, for checking that prediction
(MTCNN on a whole photo, a square cut around its box) sees a face as training saw the
dataset's own crop: tests/fer_core/infer/test_predict.py, bench/predict_vs_evaluate.py and
bench/predict_framing.py all plant faces with ``plant_face``.

A face (FER2013's 48x48 grey crops) is upscaled (cubic) to FACE_PX and put at a random place
in a photo CANVAS times its side, on a random crop of one of scikit-image's sample photos
without a face (grey, as the faces are). Its frame in the photo, ``Frame(x0, y0, side)``, is
where the dataset's crop lies: the reference a crop computed from MTCNN's box is judged by.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

# Sample photos of scikit-image without a human face (camera and astronaut have one).
BACKGROUNDS = ("brick", "grass", "gravel", "coffee", "rocket", "clock", "coins", "moon",
               "chelsea", "hubble_deep_field", "immunohistochemistry", "page")
FACE_PX = (120, 160)  # the planted face's side, pixels (both ends included)
CANVAS = (1.8, 3.0)  # the photo's height and width, each, as multiples of the face's side
SURROUNDS = ("continued", "seam")
SURROUND = 0.3  # "continued": the band, x the face's side, over which it fades out
FEATHER = 4  # "seam": pixels over which the pasted square blends into the background
JPEG_QUALITY = 92


class Frame(NamedTuple):
    """Where the planted face's square lies in its photo, in pixels."""

    x0: int
    y0: int
    side: int


def backgrounds() -> list[np.ndarray]:
    """The sample photos, grey (uint8 2-D): the faces are grey, and a colour frame around
    a grey face is no photo that exists."""
    from skimage import data

    out = []
    for name in BACKGROUNDS:
        img = getattr(data, name)()
        out.append(cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img)
    return out


def plant_face(face: np.ndarray, backs: list[np.ndarray], rng: np.random.Generator, *,
               surround: str = "continued") -> tuple[np.ndarray, Frame]:
    """A photo (RGB uint8) holding ``face`` (a grey or RGB square), and the face's frame in
    it: the face upscaled to FACE_PX, at a random place on a random crop of a random one of
    ``backs`` (grey uint8 images, e.g. ``backgrounds()``), all drawn from ``rng``.

    ``continued``: the face's surroundings go on past its frame (the face reflected at its
    edges) and fade into the background over SURROUND x its side, as a face in a photo has
    hair, ears, neck and scene around it. ``seam``: the face pasted as a square, its outer
    FEATHER pixels blended into the background; a crop wider than the frame then holds a
    straight edge and an unrelated texture that no photo has around a face.
    """
    if surround not in SURROUNDS:
        raise ValueError(f"surround must be one of {SURROUNDS}, not {surround!r}")
    grey = face if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    side = int(rng.integers(FACE_PX[0], FACE_PX[1] + 1))
    h_out, w_out = (int(side * rng.uniform(*CANVAS)) for _ in range(2))
    bg = backs[int(rng.integers(len(backs)))]
    h, w = bg.shape[:2]
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
    else:
        pad = 0
        ramp = np.clip((np.arange(side) + 0.5) / FEATHER, 0, 1)
    ramp = np.minimum(ramp, ramp[::-1])
    alpha = np.minimum.outer(ramp, ramp)
    # The padded face's square in the canvas, clipped to it.
    gx0, gy0, n = x0 - pad, y0 - pad, side + 2 * pad
    cx0, cy0, cx1, cy1 = max(gx0, 0), max(gy0, 0), min(gx0 + n, w_out), min(gy0 + n, h_out)
    a = alpha[cy0 - gy0:cy1 - gy0, cx0 - gx0:cx1 - gx0]
    f = big[cy0 - gy0:cy1 - gy0, cx0 - gx0:cx1 - gx0].astype(np.float32)
    canvas[cy0:cy1, cx0:cx1] = a * f + (1 - a) * canvas[cy0:cy1, cx0:cx1]
    photo = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(photo[..., None], 3, axis=2), Frame(x0, y0, side)


def jpeg_roundtrip(photo: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """``photo`` (RGB) as it reads back from a JPEG at ``quality``."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def planted_face(boxes, frame: Frame) -> int | None:
    """Which of ``boxes`` ((k, 4) x1, y1, x2, y2) is the planted face: the one whose centre
    lies inside its frame, nearest the frame's centre; None when none does."""
    x0, y0, side = frame
    best, best_d = None, np.inf
    for k, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, float).reshape(-1, 4)):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if x0 <= cx <= x0 + side and y0 <= cy <= y0 + side:
            d = np.hypot(cx - x0 - side / 2, cy - y0 - side / 2)
            if d < best_d:
                best, best_d = k, d
    return best


def framing(box, frame: Frame) -> dict[str, float]:
    """Where the planted frame lies relative to a detection's box, in units of the box's
    longer side L: frame side / L (= 1 + the matching margin), the frame centre's offset
    from the box centre (dx right, dy down), the box's aspect and its height / frame side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x0, y0, side = frame
    longer = max(x2 - x1, y2 - y1)
    return {"side_over_box": side / longer, "dx": (x0 + side / 2 - (x1 + x2) / 2) / longer,
            "dy": (y0 + side / 2 - (y1 + y2) / 2) / longer,
            "box_w_over_h": (x2 - x1) / (y2 - y1), "box_h_over_side": (y2 - y1) / side}


def summarise_framing(rows: list[dict[str, float]]) -> dict:
    """Median, mean and 10/25/75/90th percentiles of each ``framing`` figure over ``rows``,
    and the crop settings that match the medians (margin = side_over_box - 1, shift = dy)."""
    out: dict = {"n": len(rows)}
    for key in (rows[0] if rows else {}):
        v = np.array([r[key] for r in rows], float)
        q = np.percentile(v, [10, 25, 50, 75, 90])
        out[key] = {"median": round(float(q[2]), 4), "mean": round(float(v.mean()), 4),
                    **{f"q{p}": round(float(x), 4) for p, x in zip((10, 25, 75, 90),
                                                                   q[[0, 1, 3, 4]],
                                                                   strict=True)}}
    if rows:
        out["margin_matching_median"] = round(out["side_over_box"]["median"] - 1, 4)
        out["shift_matching_median"] = out["dy"]["median"]
    return out
