"""The training config: one frozen schema, its keys and types checked, files read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fer_core.train.loop import TrainConfig
from tests.fer_core._trainfix import REPO


def test_config_rejects_unknown_keys_by_name():
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['epohcs'\]"):
        TrainConfig.from_dict({"epohcs": 3})


def test_config_is_frozen_and_keyword_only():
    cfg = TrainConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.epochs = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        TrainConfig("compact_cnn")  # type: ignore[misc]


def test_config_file_types_are_checked_and_yaml_floats_read(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: compact_cnn\nlr: 1e-3\nepochs: 4\nnum_threads: null\n")
    cfg = TrainConfig.from_file(path)
    assert cfg.lr == 0.001 and isinstance(cfg.lr, float) and cfg.epochs == 4
    path.write_text("epochs: four\n")
    with pytest.raises(ValueError, match=r"c\.yaml: TrainConfig\.epochs: expected int"):
        TrainConfig.from_file(path)


def test_config_values_are_validated_together():
    with pytest.raises(ValueError, match="optimizer='adam'.*schedule='step'"):
        TrainConfig.from_dict({"optimizer": "adam", "schedule": "step"})
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig.from_dict({"model": "nope"})


@pytest.mark.parametrize("path", sorted((REPO / "bench" / "configs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_bench_configs_load_and_keep_the_paper_class_weights_but_plain_accuracy_ones(path):
    cfg = TrainConfig.from_file(path)
    # The benchmarks report what `fer train` gives users: the paper's class-weighted loss.
    # Except the recipes held to plain accuracy alone: FER+'s (as its paper reports it;
    # balanced weights would count a contempt face ~70 times a neutral one), and issue 32's
    # recipes on the faces without the balancing copies: the 30-minute trial and the
    # shipped model's.
    assert TrainConfig().class_weights is True
    plain = path.stem == "ferplus" or path.stem.startswith(("cpu_30min_plain", "shipped"))
    assert cfg.class_weights is not plain
    # finetune_small names no model: --weights picks the checkpoint's (flows.train).
    want = {"gpu_resnet18": "resnet18", "finetune_small": "resnet18"}.get(path.stem, "vgg_faces")
    assert cfg.model == want
    assert ("model" in cfg.model_fields_set) == (path.stem != "finetune_small")


def test_config_round_trips_through_a_dict():
    cfg = TrainConfig(model="compact_cnn", lr=0.01, num_threads=2, weights="w.pt")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
