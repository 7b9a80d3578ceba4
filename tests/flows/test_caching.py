"""Only stale steps rerun: content-keyed caching, retried alignment batches, resumption."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core import store
from fer_core.prepare import align, augment
from flows.prepare import AlignmentIncomplete, prepare
from tests.conftest import extract_fer2013_subset

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture
def data(tmp_path) -> Path:
    counts = {f"train/{c}": 8 for c in CLASSES} | {f"test/{c}": 2 for c in CLASSES}
    return extract_fer2013_subset(tmp_path / "fer", per_class=counts)


@pytest.fixture
def config(tmp_path) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text("align:\n  batch_size: 6\nresize:\n  size: 48\n")  # several small batches
    return str(path)


def results(store_root: Path) -> dict[str, int]:
    """Every sealed stage result and when it was sealed (a recompute reseals it)."""
    return {p.parent.relative_to(store_root).as_posix(): p.stat().st_mtime_ns
            for p in store_root.rglob(store.DONE)}


def run(data: Path, out: Path, config: str, **kw) -> dict:
    return prepare(data=str(data), out=str(out), config_file=config, retry_delay_s=0.0, **kw)


def changed(before: dict, after: dict, stage: str) -> tuple[set, set]:
    """(new or resealed results, results no longer produced) of one stage."""
    b = {k: v for k, v in before.items() if k.startswith(stage + "/")}
    a = {k: v for k, v in after.items() if k.startswith(stage + "/")}
    return {k for k in a if b.get(k) != a[k]}, set(b) - set(a)


@pytest.mark.fer2013
def test_rerun_recomputes_nothing_and_one_changed_image_redoes_one_batch(
        prefect_backend, data, config, tmp_path):
    out = tmp_path / "run"
    run(data, out, config)
    first = results(out / "store")
    assert sum(k.startswith("align/") for k in first) >= 4
    sets = {p.name: p.read_bytes() for p in (out / "sets" / "val").iterdir()}
    run(data, out, config)
    assert results(out / "store") == first, "a rerun with nothing changed recomputes nothing"
    assert {p.name: p.read_bytes() for p in (out / "sets" / "val").iterdir()} == sets

    victim = sorted((data / "train" / "happy").iterdir())[0]
    img = cv2.imread(str(victim))
    cv2.imwrite(str(victim), cv2.flip(img, 1))  # same name, new content
    run(data, out, config)
    after = results(out / "store")
    new_align, _ = changed(first, after, "align")
    assert len(new_align) == 1, "only the changed image's alignment batch reruns"
    for stage in ("ingest", "duplicates", "split", "aligned", "resize", "augment"):
        assert changed(first, after, stage)[0], f"{stage} reads the changed image: it reruns"

    (data / "train" / "happy" / "added.jpg").write_bytes(
        cv2.imencode(".jpg", cv2.GaussianBlur(img, (3, 3), 0))[1].tobytes())
    run(data, out, config)
    new_align, _ = changed(after, results(out / "store"), "align")
    assert len(new_align) == 1, "an added image reruns only the batch it falls in"


@pytest.mark.fer2013
def test_deleted_or_truncated_results_are_recomputed(prefect_backend, data, config, tmp_path):
    out = tmp_path / "run"
    run(data, out, config)
    first = results(out / "store")
    resized = next((out / "store" / "resize").rglob("images.npy"))
    resized.write_bytes(resized.read_bytes()[:1000])
    detections = next((out / "store" / "align").rglob("detections.parquet"))
    detections.unlink()
    val = (out / "sets" / "val" / "images.npy").read_bytes()
    run(data, out, config)
    after = results(out / "store")
    assert changed(first, after, "resize")[0] and len(changed(first, after, "align")[0]) == 1
    assert store.read_array(resized).shape[0] > 0
    assert (out / "sets" / "val" / "images.npy").read_bytes() == val


@pytest.mark.fer2013
def test_failed_alignment_batch_is_retried_named_and_redone_alone(
        prefect_backend, data, config, tmp_path, monkeypatch):
    out = tmp_path / "run"
    victim = "train/happy/" + sorted(p.name for p in (data / "train" / "happy").iterdir())[0]
    calls = {"faulty": 0}
    real = align.detect_landmarks

    def flaky(images, detector, *args, **kwargs):
        # The batch holding the victim fails every time: a persistent fault.
        if any(img.shape == (48, 48, 3) and np.array_equal(img, fault_image) for img in images):
            calls["faulty"] += 1
            raise OSError("injected fault: GPU fell off the bus")
        return real(images, detector, *args, **kwargs)

    fault_image = store.read_image(data, victim)
    monkeypatch.setattr(align, "detect_landmarks", flaky)
    with pytest.raises(AlignmentIncomplete, match=r"batch\(es\) #\d+ \(\d+ images"):
        run(data, out, config, retries=2)
    assert calls["faulty"] == 3, "one try and two retries"
    manifest = store.read_frame(out / "manifest.parquet").set_index("path")
    assert "injected fault" in manifest.loc[victim, "align_error"]
    marked = manifest["align_error"] != ""
    assert 1 <= marked.sum() <= 12 and not manifest.loc[marked, "aligned"].any()
    before = results(out / "store")

    monkeypatch.setattr(align, "detect_landmarks", real)  # the fault is gone
    run(data, out, config)
    new_align, _ = changed(before, results(out / "store"), "align")
    assert len(new_align) == 1, "only the failed batch is redone"
    manifest = store.read_frame(out / "manifest.parquet")
    assert (manifest["align_error"] == "").all()


@pytest.mark.fer2013
def test_interrupted_run_resumes_from_cached_results(
        prefect_backend, data, config, tmp_path, monkeypatch):
    out = tmp_path / "run"

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut during augmentation")

    monkeypatch.setattr(augment, "class_plans", crash)  # the draws, before any rendering
    with pytest.raises(BaseException, match="power cut"):
        run(data, out, config)
    done = results(out / "store")
    assert any(k.startswith("resize/") for k in done)
    assert not any(k.startswith("augment/") for k in done)
    monkeypatch.undo()
    run(data, out, config)
    after = results(out / "store")
    assert {k: v for k, v in after.items() if k in done} == done, "finished stages are reused"
    assert any(k.startswith("augment/") for k in after)


@pytest.mark.fer2013
@pytest.mark.slow
def test_alignment_batches_on_a_local_dask_cluster(prefect_backend, data, config, tmp_path):
    distributed = pytest.importorskip("distributed")
    run(data, tmp_path / "local", config)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        run(data, tmp_path / "dask", config, dask_address=cluster.scheduler_address)
    cols = ["path", "aligned", "angle"]
    local = store.read_frame(tmp_path / "local" / "manifest.parquet")[cols]
    remote = store.read_frame(tmp_path / "dask" / "manifest.parquet")[cols]
    assert local["path"].tolist() == remote["path"].tolist()
    assert remote["aligned"].sum() > 0, "the Dask workers aligned the batches"
    # Workers run torch on one thread each: the same detections up to float rounding.
    assert (local["aligned"] == remote["aligned"]).mean() >= 0.95
    both = local["aligned"] & remote["aligned"]
    np.testing.assert_allclose(local.loc[both, "angle"], remote.loc[both, "angle"], atol=0.5)
