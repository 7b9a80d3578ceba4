"""The model registry: names, input contract, local weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fer_core.checkpoint import CheckpointError
from fer_core.models import INPUT_SIZE, REGISTRY, create_model, load_weights, model_spec


def test_unknown_name_fails_at_once_listing_known_models():
    with pytest.raises(ValueError, match="unknown model 'resnet19'") as err:
        create_model("resnet19", num_classes=7)
    for name in ("compact_cnn", "resnet18", "resnet50", "vit_tiny"):
        assert name in str(err.value)


def test_registry_entries_declare_input_size_and_normalisation():
    assert {"compact_cnn", "resnet18"} <= set(REGISTRY)
    for spec in REGISTRY.values():
        assert spec.input_size == INPUT_SIZE == 96
        assert len(spec.mean) == len(spec.std) == 3 and min(spec.std) > 0


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
    loaded = create_model("compact_cnn", num_classes=4, weights=path)
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
        create_model("resnet18", num_classes=4, weights=path)


def test_weights_file_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _Boom()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        create_model("compact_cnn", num_classes=4, weights=path)


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))
