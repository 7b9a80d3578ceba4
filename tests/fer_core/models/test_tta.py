"""Test-time augmentation: the views are torchvision's five crops of the zoomed face and
their mirrors, every mode is what a training config asks for, and the exported graph and
`fer evaluate`'s logits give the same TTA."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from skimage import data

from fer_core.evaluate.logits import predict_logits, to_input
from fer_core.models import checkpoint
from fer_core.models.export import ExportGraph
from fer_core.models.spec import TTA_MODES, config_tta
from fer_core.models.tta import CROP_ZOOM
from fer_core.models.weights import DEFAULT_CHECKPOINT


@pytest.fixture(scope="module")
def model():
    """The shipped model (grey, works at 40x40): trained, so its logits follow the pixels
    (an untrained one answers nearly the same for any view)."""
    return checkpoint.load_model(DEFAULT_CHECKPOINT)[0].eval()


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Four squares of a real photo around Eileen Collins' face, at the input size."""
    photo = data.astronaut()
    boxes = [(0, 140, 220), (20, 150, 180), (10, 120, 240), (40, 170, 150)]  # top, left, side
    return np.stack([cv2.resize(photo[t:t + s, x:x + s], (96, 96), interpolation=cv2.INTER_AREA)
                     for t, x, s in boxes])


def oracle(model, faces: np.ndarray, *, crops: bool, mirror: bool) -> torch.Tensor:
    """The mean logits over views cut by torchvision (resize, five_crop, hflip)."""
    x = to_input(torch.from_numpy(faces))
    w = model.work_size
    if crops:
        side = int(round(w * CROP_ZOOM))  # 44 for a 40-pixel model: shifts of 2-4 pixels
        views = list(TF.five_crop(TF.resize(x, [side, side], antialias=True), [w, w]))
    else:
        views = [x]
    views += [TF.hflip(v) for v in views] if mirror else []
    with torch.no_grad():
        return torch.stack([model(v).float() for v in views]).mean(0)


@pytest.mark.parametrize(("mode", "crops", "mirror"), [
    ("none", False, False), ("hflip", False, True), ("fivecrop", True, False),
    ("tencrop", True, True)])
def test_each_mode_averages_its_views(model, faces, mode, crops, mirror):
    got = predict_logits(model, faces, device="cpu", batch_size=3, tta=mode)
    torch.testing.assert_close(got, oracle(model, faces, crops=crops, mirror=mirror),
                               rtol=0, atol=1e-5)


def test_the_views_differ(model, faces):
    """A mode that gave another's logits would make the parametrised oracle test vacuous."""
    got = {m: predict_logits(model, faces, device="cpu", tta=m) for m in TTA_MODES}
    for a in TTA_MODES:
        for b in TTA_MODES:
            assert a == b or (got[a] - got[b]).abs().max() > 0.01, (a, b)


def test_the_training_config_names_the_mode():
    assert [config_tta({"hflip_tta": h, "crop_tta": c}) for h in (False, True)
            for c in (False, True)] == ["none", "fivecrop", "hflip", "tencrop"]
    assert config_tta({}) == "none"  # an old checkpoint's config without either key


@pytest.mark.parametrize("mode", TTA_MODES)
def test_the_exported_graph_folds_in_the_same_tta(model, faces, mode):
    graph = ExportGraph(model, input_size=96, tta=mode).eval()
    x = to_input(torch.from_numpy(faces))
    with torch.no_grad():
        torch.testing.assert_close(graph(x), predict_logits(model, faces, device="cpu",
                                                            tta=mode), rtol=0, atol=1e-4)


def test_an_unknown_mode_names_the_known_ones(model, faces):
    with pytest.raises(ValueError, match="none, hflip, fivecrop, tencrop"):
        predict_logits(model, faces, device="cpu", tta="sevencrop")
