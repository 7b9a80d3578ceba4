"""The face spec: what a model's faces went through, from a photo to the model's input.

Training writes it into every checkpoint's metadata (``face_spec``), and every door that
feeds the model reads it from there: ``fer evaluate`` (prepared faces: the TTA), ``fer
predict``, the ``predict`` flow and its ``batch`` deployment, the exported file and ``fer
serve`` (a photo: detection, landmark checks, alignment, framing, size, then the TTA). No door
keeps a default of its own, so each gives the answer the model card was measured with.

Torch-free (pydantic and the standard library only): the CLI reads a checkpoint's spec
before torch loads.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

# The crop that frames a face as FER2013's 48x48 crops do (what the classifier learnt
# from): a square of (1 + margin) x the MTCNN box's longer side (its height: MTCNN's
# boxes are 0.76 as wide as high), centred shift x that side below the box's centre.
# Measured by bench/predict_vs_evaluate.py --framing 300 on 2,100 FER2013 train faces
# upscaled to 120-160 px and planted in photos, their surroundings continued past the
# 48x48 frame (1,931 detected): the frame's side is 0.927 x the box's longer side
# (median; quartiles 0.831 and 1.028), and its centre lies 0.015 x that side above the
# box's centre (quartiles -0.042 and +0.018; sideways +0.004). FER2013's framing itself
# varies that much, so no crop from the box matches every face's frame.
# With the shipped model on all 7,178 FER2013 test faces planted so (6,533 found):
# prediction 65.05% against 66.25% for the same faces through the training preparation
# (1.19 points; the same class for 80.2% of faces). With faces pasted as squares (a
# seam at the frame's edge, which makes MTCNN's box snap to it: frame 0.948 x box),
# margin -0.05 gave 63.72% against 66.28% (2.55 points) and the old margin 0.2 56.62%
# (9.66 points; bench/results/predict_vs_evaluate_seam.json).
MARGIN, SHIFT = -0.07, -0.015

# Test-time augmentation (fer_core.models.tta): the mirror image, five crops at the working
# size, or both (ten views).
TTA = Literal["none", "hflip", "fivecrop", "tencrop"]
TTA_MODES = get_args(TTA)


class FaceSpec(BaseModel):
    """How one face is turned into the model's input, and how its outputs are combined."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # On a photo, MTCNN finds every face (the retry passes for face crops are preparation's).
    detector: Literal["mtcnn"] = "mtcnn"
    # Preparation's plausibility checks on the landmarks (fer_core.prepare.detect.implausible):
    # a face whose landmarks fail them is fed unrotated, as preparation leaves it.
    landmark_checks: bool = True
    # Rotation about the eyes' midpoint to level the eyes (the paper's section 5).
    align: bool = True
    border: Literal["replicate", "constant", "reflect"] = "replicate"
    margin: float = MARGIN
    shift: float = SHIFT
    # The model's input: uint8 RGB of input_size x input_size, divided by 255; the grey
    # conversion and the mean/std normalisation happen inside the model (recorded here so
    # that a reader of the spec knows).
    input_size: int = 96
    grayscale: bool = False
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    # Test-time augmentation: the logits averaged over the face's views (TTA_MODES).
    tta: TTA = "none"


def face_spec(meta: dict) -> FaceSpec:
    """The spec of a checkpoint's metadata.

    A checkpoint written before the spec existed gets the one it was trained and measured
    with, stated here: its faces were aligned by plain MTCNN landmarks without plausibility
    checks (the preparation of that time), framed by the measured margin and shift, and its
    TTA is the training config's (``hflip_tta``, ``crop_tta``).
    """
    if "face_spec" in meta:
        return FaceSpec(**meta["face_spec"])
    pre = meta.get("preprocessing", {})
    grey = pre.get("grayscale", False)
    norm = pre.get("normalization", {})
    return FaceSpec(
        landmark_checks=False, align=True, margin=MARGIN, shift=SHIFT,
        input_size=int(pre.get("image_size", [96])[0]),
        grayscale=bool(grey["value"] if isinstance(grey, dict) else grey),
        mean=tuple(norm.get("mean", (0.5, 0.5, 0.5))), std=tuple(norm.get("std", (0.25,) * 3)),
        tta=config_tta(meta.get("config", {})))


def config_tta(config: dict) -> str:
    """The TTA of a training config (a dict): its ``hflip_tta`` and ``crop_tta``."""
    hflip, crops = bool(config.get("hflip_tta")), bool(config.get("crop_tta"))
    return ("tencrop" if hflip else "fivecrop") if crops else ("hflip" if hflip else "none")


def trained_spec(*, input_size: int, grayscale: bool, mean, std, tta: str,
                 prepared: dict | None) -> FaceSpec:
    """The spec of a model trained now, on faces prepared with ``prepared`` (the ``config``
    of the run's prepare.json; None: the defaults): preparation checks landmarks, aligns
    unless its ``align.enabled`` is off, and rotates with its ``resize.border``."""
    prep = prepared or {}
    align, resize = prep.get("align") or {}, prep.get("resize") or {}
    return FaceSpec(landmark_checks=True, align=bool(align.get("enabled", True)),
                    border=resize.get("border", "replicate"), input_size=input_size,
                    grayscale=grayscale, mean=tuple(mean), std=tuple(std),
                    tta=tta)
