"""Fine-tuning's start (fer_core.models.transfer): head rows follow the class names through
the project's class maps, tensor by tensor against the checkpoint; a new class starts
fresh; a grey model widened to colour starts as the grey model; the backbone freezes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from fer_core.config.train import TrainConfig
from fer_core.models.checkpoint import checkpoint_meta, load_model, save_checkpoint
from fer_core.models.reference import resolve_model, start_model
from fer_core.models.registry import create_model
from fer_core.models.transfer import canonical, face_choice, set_backbone_frozen, start_from
from fer_core.train.optim import make_optimizer

OLD = ("Surprise", "happiness", "ANGER", "Disgust")  # another order, other spellings
NEW = ("angry", "happy", "neutral", "surprise")


def saved(tmp_path, classes, *, grayscale=False, model="compact_cnn", seed=1):
    torch.manual_seed(seed)
    net = create_model(model, num_classes=len(classes), grayscale=grayscale)
    path = tmp_path / "start.pt"
    meta = checkpoint_meta(model_name=model, classes=classes, config={}, epoch=1, metrics={},
                           grayscale=grayscale)
    save_checkpoint(path, {"model": {k: v.clone() for k, v in net.state_dict().items()}}, meta)
    return path, net.state_dict()


def test_the_class_maps_make_one_class_of_each_spelling():
    assert canonical("angry") == canonical("anger") == canonical("Anger") == canonical("ANGER")
    assert canonical("happy") == canonical("Happiness")
    assert canonical("sad") == canonical("sadness") != canonical("happy")
    assert canonical("Contempt") == "contempt"


def test_head_rows_follow_the_class_names_and_a_new_class_starts_fresh(tmp_path):
    path, old = saved(tmp_path, OLD)
    torch.manual_seed(2)
    model = create_model("compact_cnn", num_classes=len(NEW))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = start_from(model, path, NEW)
    got = model.state_dict()
    # Rows by hand: angry <- ANGER (row 2), happy <- happiness (1), surprise <- Surprise (0).
    want_rows = {0: 2, 1: 1, 3: 0}
    for key in ("backbone.24.weight", "backbone.24.bias"):  # compact_cnn's Linear head
        for new_row, old_row in want_rows.items():
            assert torch.equal(got[key][new_row], old[key][old_row]), (key, new_row)
        assert torch.equal(got[key][2], init[key][2])  # neutral: the fresh initialisation
        assert not torch.equal(got[key][2], old[key][3])
    for key, value in old.items():  # every other tensor is the checkpoint's
        if not key.startswith("backbone.24."):
            assert torch.equal(got[key], value), key
    assert report["kept"] == {"angry": "ANGER", "happy": "happiness", "surprise": "Surprise"}
    assert report["fresh"] == ["neutral"] and report["dropped"] == ["Disgust"]


def test_a_grey_model_widened_to_colour_starts_as_the_grey_model():
    shipped = resolve_model("fer2013")  # a trained grey vgg_faces
    grey, meta = load_model(shipped)
    assert meta["preprocessing"]["grayscale"]["value"]
    photo = cv2.resize(data.astronaut(), (192, 192))  # colour: four 96x96 crops of it
    crops = [photo[y:y + 96, x:x + 96] for y in (0, 96) for x in (0, 96)]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    colour = create_model("vgg_faces", num_classes=7, grayscale=False)
    assert start_from(colour, shipped, tuple(meta["classes"]), widen=True)["widened"]
    with torch.no_grad():
        torch.testing.assert_close(colour.eval()(x), grey(x), atol=1e-4, rtol=1e-4)
    # Not widened, the same weights on colour input answer otherwise.
    plain = create_model("vgg_faces", num_classes=7, grayscale=False)
    start_from(plain, shipped, tuple(meta["classes"]))
    with torch.no_grad():
        assert (plain.eval()(x) - grey(x)).abs().max() > 0.05


def test_the_face_spec_is_reconciled_and_said():
    grey_meta = {"preprocessing": {"grayscale": {"value": True}}}
    stays = face_choice(grey_meta, data_grey=False, wanted=None)
    assert stays.grayscale and not stays.widen and "stays grey" in stays.message
    colour = face_choice(grey_meta, data_grey=False, wanted=False)
    assert not colour.grayscale and colour.widen and "widened" in colour.message
    assert face_choice(grey_meta, data_grey=True, wanted=None).grayscale


def test_weights_choose_the_architecture_and_a_misfit_model_is_named():
    shipped = resolve_model("fer2013")
    assert start_model(shipped, None) == "vgg_faces" == start_model(shipped, "vgg_faces")
    with pytest.raises(ValueError, match=r"'resnet18'.*fer2013_vgg_faces\.pt.*'vgg_faces'"):
        start_model(shipped, "resnet18")


def test_the_backbone_learns_slower_and_freezes():
    model = create_model("compact_cnn", num_classes=4)
    cfg = TrainConfig(model="compact_cnn", lr=0.01, backbone_lr_scale=0.1, weights="x.pt")
    opt = make_optimizer(model, cfg)
    head = {id(p) for n, p in model.named_parameters() if n.startswith("backbone.24.")}
    for group in opt.param_groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1
        assert group["lr"] == pytest.approx(0.01 if in_head == {True} else 0.001)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    set_backbone_frozen(model, True)
    model(torch.rand(4, 3, 96, 96)).sum().backward()
    opt.step()
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) != n.startswith("backbone.24."), n
