"""The model registry: names, input contract, local weights."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data
from torch import nn

from fer_core.models.checkpoint import CheckpointError, load_weights
from fer_core.models.registry import (
    INPUT_SIZE,
    REGISTRY,
    create_model,
    grey_input,
    model_spec,
    to_grey,
)


def test_unknown_name_fails_at_once_listing_known_models():
    with pytest.raises(ValueError, match="unknown model 'resnet19'") as err:
        create_model("resnet19", num_classes=7)
    for name in ("compact_cnn", "resnet18", "resnet50", "vit_tiny"):
        assert name in str(err.value)


def test_registry_entries_declare_input_size_and_normalisation():
    assert {"compact_cnn", "resnet18", "vgg_faces"} <= set(REGISTRY)
    for spec in REGISTRY.values():
        assert spec.input_size == INPUT_SIZE == 96
        assert 16 <= spec.work_size <= spec.input_size
        assert len(spec.mean) == len(spec.std) == 3 and min(spec.std) > 0
    assert model_spec("vgg_faces").work_size == 40


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_model_maps_a_96px_batch_to_logits(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 96, 96))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_resnet18_is_adapted_to_96px_faces():
    net = create_model("resnet18", num_classes=7).backbone
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, nn.Identity)
    # The first residual stage must still see the full 96x96 grid.
    seen = []
    net.layer1.register_forward_hook(lambda m, i, o: seen.append(o.shape) and None)
    with torch.no_grad():
        net.eval()(torch.rand(1, 3, 96, 96))
    assert seen[0][-2:] == (96, 96)


def test_normalisation_happens_inside_the_model():
    spec = model_spec("compact_cnn")
    model = create_model("compact_cnn", num_classes=3).eval()
    x = torch.rand(2, 3, 96, 96)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), model.backbone((x - mean) / std))
    # Registry constants, not weights: they stay out of the state_dict.
    assert not {"mean", "std"} & set(model.state_dict())


def test_num_classes_must_be_at_least_two():
    with pytest.raises(ValueError, match="num_classes"):
        create_model("compact_cnn", num_classes=1)


def test_weights_load_from_a_local_state_dict(tmp_path):
    torch.manual_seed(1)
    source = create_model("compact_cnn", num_classes=4)
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(2)
    loaded = create_model("compact_cnn", num_classes=4)
    load_weights(loaded, path)
    for k, v in source.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_bare_backbone_weights_load_and_a_different_head_is_skipped(tmp_path):
    torch.manual_seed(1)
    source = create_model("resnet18", num_classes=7)
    path = tmp_path / "backbone.pt"
    torch.save(source.backbone.state_dict(), path)  # torchvision-style keys, 7-way head
    target = create_model("resnet18", num_classes=4)
    with pytest.warns(UserWarning, match="fc.weight"):
        skipped = load_weights(target, path)
    assert set(skipped) == {"backbone.fc.weight", "backbone.fc.bias"}
    assert torch.equal(target.backbone.conv1.weight, source.backbone.conv1.weight)
    assert target.backbone.fc.weight.shape == (4, 512)


def test_weights_for_another_architecture_are_an_error(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(create_model("compact_cnn", num_classes=4).state_dict(), path)
    with pytest.raises(ValueError, match="do not fit"):
        load_weights(create_model("resnet18", num_classes=4), path)


def test_weights_file_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _Boom()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_weights(create_model("compact_cnn", num_classes=4), path)


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


# ---------------------------------------------------------------- work size and grey input


def test_backbone_runs_at_the_entrys_work_size():
    model = create_model("vgg_faces", num_classes=7).eval()
    seen = []
    model.backbone[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape) and None)
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        out = model(x)
        # The resize inside the model is torch's antialiased bilinear (the oracle here).
        small = torch.nn.functional.interpolate(x, size=(40, 40), mode="bilinear",
                                                antialias=True, align_corners=False)
        direct = model(small)
    assert seen[0][-2:] == (40, 40) and out.shape == (2, 7)
    assert torch.allclose(out, direct, atol=1e-5)


def test_grey_model_sees_colour_faces_as_opencv_greys_them():
    rgb = data.astronaut()[30:230, 140:340]  # the face, 200x200, colour
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # OpenCV's luma: the oracle
    torch.manual_seed(0)
    model = create_model("compact_cnn", num_classes=7, grayscale=True).eval()
    as_rgb = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    as_grey = torch.from_numpy(np.repeat(grey[..., None], 3, axis=2)).permute(2, 0, 1)[None]
    with torch.no_grad():
        a, b = model(as_rgb), model(as_grey.float() / 255)
        one_channel = model(torch.from_numpy(grey)[None, None].float() / 255)
    # OpenCV rounds luma to uint8: agreement to within that rounding, not exactly.
    assert torch.allclose(a, b, atol=0.05) and torch.allclose(b, one_channel, atol=1e-5)
    # What the backbone sees: three equal grey channels, where a colour model sees colour.
    seen = []
    colour = create_model("compact_cnn", num_classes=7, grayscale=False).eval()
    for m in (model, colour):
        m.backbone[0].register_forward_hook(lambda mod, i, o: seen.append(i[0]) and None)
        with torch.no_grad():
            m(as_rgb)
    grey_seen, colour_seen = seen
    assert torch.equal(grey_seen[:, 0], grey_seen[:, 1]) and torch.equal(grey_seen[:, 1],
                                                                         grey_seen[:, 2])
    assert (colour_seen[:, 0] - colour_seen[:, 2]).abs().mean() > 0.1


def test_grey_faces_pass_the_grey_step_unchanged():
    grey = torch.rand(4, 1, 96, 96).expand(-1, 3, -1, -1)
    assert torch.allclose(to_grey(grey), grey[:, :1], atol=1e-6)


def test_grey_input_is_the_models_grey_step_on_uint8_batches():
    rgb = torch.from_numpy(data.astronaut()[None, :64, :64].copy())  # uint8 NHWC
    as_float = rgb.permute(0, 3, 1, 2).float() / 255
    assert grey_input(rgb).shape == (1, 1, 64, 64)
    assert torch.allclose(grey_input(rgb), to_grey(as_float), atol=1e-6)
