"""Settings marked result-neutral in the config schema (``fer_core.config.base.neutral``)
are out of every key: each is here because changing it gives bitwise-equal outputs, and
changing it reruns nothing. The evaluation batch size is shown not to be neutral."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest
import torch

from fer_core import store
from fer_core.config import align as align_config
from fer_core.config import base
from fer_core.datasets.demo import DemoConfig, demo_images
from fer_core.evaluate.score import predict_logits
from fer_core.models.registry import create_model
from fer_core.store import keys
from tests.flows.test_stage_keys import stage_table

NEUTRAL = {("AlignConfig", "workers"), ("IngestConfig", "workers"), ("IngestConfig", "root")}


def marked(model) -> set[tuple[str, str]]:
    return {(model.__name__, name) for name, info in model.model_fields.items()
            if (info.json_schema_extra or {}).get(base.RESULT_NEUTRAL)}


def test_the_marker_is_the_one_keys_read_and_marks_only_what_is_tested_here():
    assert base.RESULT_NEUTRAL == keys.RESULT_NEUTRAL
    import fer_core.config

    for module in pkgutil.iter_modules(fer_core.config.__path__):
        importlib.import_module(f"fer_core.config.{module.name}")
    models, todo = set(), [base.Config]
    while todo:
        models.add(model := todo.pop())
        todo += model.__subclasses__()
    assert len(models) > 10
    assert set().union(*map(marked, models)) == NEUTRAL


def test_a_neutral_field_leaves_the_key_and_another_does_not():
    cfg = align_config.AlignConfig()
    key = keys.stage_key("align", inputs=["x"], config=cfg, modules=["prepare.align"])
    assert keys.stage_key("align", inputs=["x"], config=cfg.model_copy(update={"workers": 7}),
                          modules=["prepare.align"]) == key
    for change in ({"threads": 3}, {"pad": 0.3}):
        assert keys.stage_key("align", inputs=["x"], config=cfg.model_copy(update=change),
                              modules=["prepare.align"]) != key


def test_the_eval_batch_size_changes_logits_so_it_stays_in_trainings_key():
    """One image at a time against 512: CPU kernels sum in another order (not bitwise
    equal), so ``eval_batch_size`` is not marked; neither is the device."""
    torch.manual_seed(0)
    model = create_model("compact_cnn", num_classes=7).eval()
    x = np.random.default_rng(0).integers(0, 255, (24, 96, 96, 3), dtype=np.uint8)
    assert not torch.equal(predict_logits(model, x, batch_size=512),
                           predict_logits(model, x, batch_size=1))
    from fer_core.config.train import TrainConfig

    assert not marked(TrainConfig)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    data = tmp_path_factory.mktemp("neutral") / "data"
    store.write_dataset(data, demo_images(DemoConfig(per_class=6)))
    return data


def settings(folder, workers: int, threads: int):
    path = folder / f"w{workers}t{threads}.yaml"
    path.write_text(f"align: {{workers: {workers}, threads: {threads}, batch_size: 8}}\n"
                    f"ingest: {{workers: {workers}}}\n")
    return str(path)


def test_workers_give_bitwise_equal_sets_and_rerun_nothing_threads_do_not(prefect_backend,
                                                                          faces, tmp_path):
    """MTCNN alignment (with its retry passes) and ingest with 1 worker, then 2, into
    separate stores: the same bytes; then 2 workers on the first store: every alignment
    batch ``Cached``. Two torch threads instead of one move MTCNN's landmarks by ~1e-6
    (another summation order), so ``align.threads`` stays in the key."""
    from flows.prepare import prepare

    outs = {}
    for workers, threads in ((1, 1), (2, 1), (1, 2)):
        out = tmp_path / f"w{workers}t{threads}"
        prepare(data=str(faces), out=str(out), config_file=settings(tmp_path, workers, threads))
        outs[workers, threads] = out
    sets = ["manifest.parquet", *(p.relative_to(outs[1, 1]).as_posix()
                                  for p in sorted((outs[1, 1] / "sets").rglob("*.npy")))]
    assert "sets/train/images.npy" in sets and "sets/val/images.npy" in sets
    for rel in sets:
        assert (outs[1, 1] / rel).read_bytes() == (outs[2, 1] / rel).read_bytes(), rel
    assert (outs[1, 1] / sets[0]).read_bytes() != (outs[1, 2] / sets[0]).read_bytes()
    again = stage_table(prepare(data=str(faces), out=str(outs[1, 1]),
                                config_file=settings(tmp_path, 2, 1), return_state=True))
    assert again["align-batch"] == again["merge-alignment"] == again["ingest"] == "cached", again
