"""O-Net, MTCNN's last stage, on square crops: the crops at its size (edges replicated),
the network frozen for inference, and the box and image geometry the detection passes
share (``fer_core.prepare.detect``)."""

from __future__ import annotations

import threading
import warnings

import cv2
import numpy as np

SIZE = 48  # O-Net's input, and the normalisation MTCNN trained it with
CHUNK = 4096
# torch 2.14 deprecates TorchScript (trace, trace_method, freeze, optimize_for_inference)
# in favour of torch.compile, which needs a C compiler at run time and minutes to compile,
# and torch.export, which runs no faster than eager. bench/onet_speed.py measures the
# traced, frozen O-Net against eager: kept while it is the faster (see README), with
# exactly these warnings silenced around that one call, so a user's terminal stays clean.
_JIT_DEPRECATED = (r"`torch\.jit\.(trace|trace_method|freeze|optimize_for_inference)` is "
                   r"deprecated")
_FREEZE_LOCK = threading.Lock()  # catch_warnings is process-wide: one freeze at a time


def outputs(crops: np.ndarray, detector) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """O-Net on uint8 crops (N, SIZE, SIZE, 3): box regressions (N, 4), landmarks (N, 10)
    as fractions of the crop (x then y) and face probabilities (N,)."""
    import torch

    regs, points, probs = [], [], []
    device = getattr(detector, "device", "cpu")
    onet = frozen(detector)
    with torch.inference_mode():
        for s in range(0, len(crops), CHUNK):
            x = torch.from_numpy(crops[s:s + CHUNK]).to(device).permute(0, 3, 1, 2)
            # channels_last: O-Net's ceil-mode max pools run ~2x faster on the CPU so.
            x = ((x.float() - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)
            reg, pts, prob = onet(x)
            regs.append(reg.cpu().numpy())
            points.append(pts.cpu().numpy())
            probs.append(prob[:, 1].cpu().numpy())
    return np.concatenate(regs), np.concatenate(points), np.concatenate(probs)


def frozen(detector):
    """O-Net traced, frozen and fused by torch for inference, once per detector (CPU).

    The retries and the levelling run O-Net on ~1.2 crops per image; fused, it takes 0.35
    instead of 0.52 ms a crop on 2 cores, with outputs equal to 3e-7. Weights ship inside
    facenet-pytorch; nothing is downloaded or written.
    """
    import torch

    with _FREEZE_LOCK:
        onet = getattr(detector, "_fer_frozen_onet", None)
        if onet is not None:
            return onet
        onet = detector.onet
        if torch.device(getattr(detector, "device", "cpu")).type == "cpu":
            example = torch.zeros(8, 3, SIZE, SIZE).contiguous(
                memory_format=torch.channels_last)
            with (torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings()):
                warnings.filterwarnings("ignore", _JIT_DEPRECATED, FutureWarning)
                traced = torch.jit.trace(onet.eval(), example, check_trace=False)
                onet = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        detector._fer_frozen_onet = onet
        return onet


def crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The box's pixels at O-Net's size, edges replicated where the box leaves the image."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = image.shape[:2]
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y1 - h), max(0, x1 - w)
    part = image[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    if top or left or bottom or right:
        part = cv2.copyMakeBorder(part, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return cv2.resize(part, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def square(box: np.ndarray) -> np.ndarray:
    """The square box of the box's longer side about its centre."""
    centre, side = (box[:2] + box[2:]) / 2, float(np.max(box[2:] - box[:2]))
    return np.concatenate([centre - side / 2, centre + side / 2])


def turn(shape, degrees: float) -> np.ndarray:
    """The affine map turning an image of ``shape`` by ``degrees`` about its centre."""
    h, w = shape[:2]
    return cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)


def warped(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The image under an affine map, same size, edges replicated."""
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def landmarks_in(box: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """O-Net's five landmarks (fractions of ``box``) as (x, y) image points."""
    side = box[2:] - box[:2]
    return np.stack([box[0] + pts[:5] * side[0], box[1] + pts[5:] * side[1]], 1)
