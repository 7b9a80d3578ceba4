"""Stage keys: the content a stage reads, its code's whole closure, the libraries behind it;
and the rerun table that shows in the UI what a run did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_core import store
from fer_core.datasets.demo import DemoConfig, demo_images
from fer_core.store import keys as cache
from tasks import caching


@pytest.fixture(autouse=True)
def fresh_caches():
    cache._code_version.cache_clear()
    cache.library_version.cache_clear()
    yield
    cache._code_version.cache_clear()
    cache.library_version.cache_clear()


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source)
    return root


def test_dependencies_follow_every_import_of_the_closure(tmp_path):
    """stage -> helper (imported inside a function) -> deep (a relative import in a
    package): the key changes with deep's source, not with an unrelated module's."""
    root = write_package(tmp_path / "fer_core", {
        "__init__.py": "",
        "prepare/__init__.py": "", "prepare/manifest.py": "",
        "store/__init__.py": "", "store/keys.py": "",
        "stage.py": "import numpy\n\ndef run():\n    from fer_core import helper\n",
        "helper.py": "from fer_core.pkg.inner import f\n",
        "pkg/__init__.py": "", "pkg/inner.py": "from .deep import g\n",
        "pkg/deep.py": "import cv2\nX = 1\n",
        "unrelated.py": "Y = 1\n",
    })
    deps = cache.dependencies(["stage"], root)
    assert {"stage", "helper", "pkg", "pkg.inner", "pkg.deep", "prepare", "prepare.manifest",
            "store", "store.keys"} <= set(deps)
    assert "unrelated" not in deps
    assert set(cache.libraries(["stage"], root)) == {"numpy", "cv2"}
    before = cache.code_version(["stage"], root)
    (root / "unrelated.py").write_text("Y = 2\n")
    assert cache.code_version(["stage"], root) == before
    (root / "pkg" / "deep.py").write_text("import cv2\nX = 2  # a changed constant\n")
    assert cache.code_version(["stage"], root) != before


def test_real_stage_closures_include_what_was_missed_by_hand():
    from fer_core.evaluate import score as evaluate
    from fer_core.models import checkpoint
    from fer_core.models import registry as models
    from fer_core.prepare import ingest
    from fer_core.runtime import device
    from fer_core.train import loop as train

    assert "prepare.quality" in cache.dependencies([ingest])  # ingest computes sharpness
    # A package counts as its __init__: another stage's module of it is not in the key.
    assert "prepare.augment" not in cache.dependencies([ingest])
    deps = cache.dependencies([train, models, device, evaluate, checkpoint])
    assert "train.config" in deps
    assert {"torch", "torchvision", "numpy"} <= set(
        cache.libraries([train, models, device, evaluate, checkpoint]))
    assert "facenet_pytorch" in cache.libraries(["prepare.align"])
    assert "skimage" in cache.libraries(["prepare.augment"])
    assert "sklearn" in cache.libraries(["prepare.split"])


def test_library_versions_are_in_the_keys(monkeypatch):
    align_key = cache.stage_key("align", inputs=["x"], modules=["prepare.align"])
    dedup_key = cache.stage_key("duplicates", inputs=["x"], modules=["prepare.duplicates"])
    real = cache.library_version.__wrapped__
    monkeypatch.setattr(cache, "library_version",
                        lambda name: "9.9.9" if name == "facenet_pytorch" else real(name))
    cache._code_version.cache_clear()
    assert cache.stage_key("align", inputs=["x"], modules=["prepare.align"]) != align_key
    assert cache.stage_key("duplicates", inputs=["x"], modules=["prepare.duplicates"]) == dedup_key


def test_content_fingerprint_ignores_times_and_sees_bytes(tmp_path):
    folder = tmp_path / "sets"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "a.npy").write_bytes(b"abc" * 100)
    (folder / "meta.json").write_text("{}")
    memo = tmp_path / "memo.json"
    first = cache.content_fingerprint(folder, memo)
    assert memo.is_file()
    # Rewritten with the same bytes (new inode and times): the same key.
    data = (folder / "train" / "a.npy").read_bytes()
    (folder / "train" / "a.npy").unlink()
    (folder / "train" / "a.npy").write_bytes(data)
    assert cache.content_fingerprint(folder, memo) == first
    # One byte changed at the same size: another key, memo or not.
    (folder / "train" / "a.npy").write_bytes(b"abd" + data[3:])
    assert cache.content_fingerprint(folder, memo) != first
    assert cache.content_fingerprint(folder) == cache.content_fingerprint(folder, memo)


def test_stage_rows_summarise_mapped_stages():
    rows = caching.stage_rows([
        {"stage": "ingest", "run": "ingest x", "state": "Cached", "seconds": 0.01},
        {"stage": "align-batch", "run": "align-batch-0", "state": "Cached", "seconds": 0.02},
        {"stage": "align-batch", "run": "align-batch-1", "state": "Completed", "seconds": 3.0},
        {"stage": "save", "run": "save-sets", "state": "Completed", "seconds": 0.5},
    ])
    assert rows == [
        {"stage": "ingest", "status": "cached", "runs": 1, "seconds": 0.01},
        {"stage": "align-batch", "status": "ran 1 of 2, cached 1 of 2", "runs": 2,
         "seconds": 3.02},
        {"stage": "save", "status": "ran", "runs": 1, "seconds": 0.5},
    ]


def test_stages_summary_reads_right_in_every_case():
    def rows(*statuses):
        return [{"stage": f"s{i}", "status": st, "runs": 1, "seconds": 0.0}
                for i, st in enumerate(statuses)]

    assert caching.stages_summary(rows("ran", "ran", "ran")) == "3 stages: all ran"
    assert caching.stages_summary(rows("cached", "cached")) == "2 stages: all cached"
    assert caching.stages_summary(rows("ran", "cached", "cached")) == "3 stages: 1 ran, 2 cached"
    assert caching.stages_summary(rows("ran")) == "1 stage: ran"
    assert (caching.stages_summary(rows("cached", "ran 1 of 2, cached 1 of 2", "failed"))
            == "3 stages: 1 cached, 1 partly cached, 1 failed")


# --- whole runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "data"
    store.write_dataset(data, demo_images(DemoConfig(per_class=6)))
    return data


def stage_table(state) -> dict[str, str]:
    """{stage: status} from the ``stages`` artifact of the flow run that ended in ``state``."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[caching.RERUN_TABLE_KEY]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    assert len(found) == 1, found
    rows = json.loads(found[0].data) if isinstance(found[0].data, str) else found[0].data
    assert all(isinstance(r["seconds"], int | float) and r["seconds"] >= 0 for r in rows)
    return {r["stage"]: r["status"] for r in rows}


def sealed(store_root: Path, stage: str) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (store_root / stage).rglob(store.DONE)}


def test_unchanged_pipeline_rerun_trains_once_even_when_the_sets_are_rewritten(
        prefect_backend, demo_data, tmp_path):
    """The saved sets are copies of the store's: a file of them rewritten by hand (the same
    bytes, a new inode and times) is published again from the store by the next run.
    Training is keyed on their bytes, so it still runs once."""
    from flows.pipeline import pipeline

    out = tmp_path / "run"
    kw = {"data": str(demo_data), "out": str(out), "align": False, "model": "compact_cnn",
          "epochs": 1, "batch_size": 16, "device": "cpu", "return_state": True}
    first = stage_table(pipeline(**kw))
    assert first["train"] == "ran" and first["ingest"] == "ran", first
    assert {"ingest", "duplicates", "split", "resize", "augment", "save-sets",
            "train"} <= set(first)
    trained = sealed(out / "store", "train")
    meta = out / "sets" / "meta.json"
    data = meta.read_bytes()
    meta.unlink()
    meta.write_bytes(data)
    rewritten = meta.stat().st_ino
    second = stage_table(pipeline(**kw))
    assert meta.stat().st_ino != rewritten, "published again from the store"
    assert second["train"] == "cached", second
    for stage in ("ingest", "duplicates", "split", "resize", "augment"):
        assert second[stage] == "cached", (stage, second)
    assert second["save-sets"] == "ran"  # it publishes into the run every time
    assert sealed(out / "store", "train") == trained, "nothing retrained"
    third = stage_table(pipeline(**{**kw, "epochs": 2}))
    assert third["train"] == "ran" and third["ingest"] == "cached", third


def test_a_change_in_a_module_imported_only_indirectly_reruns_the_stage(
        prefect_backend, demo_data, tmp_path, monkeypatch):
    """ingest names only fer_core.prepare.ingest; ingest imports quality. Changing quality's
    source reruns ingest (and, its manifest being the same, nothing after it)."""
    from flows.prepare import prepare

    out = tmp_path / "run"
    kw = {"data": str(demo_data), "out": str(out), "align": False, "return_state": True}
    assert stage_table(prepare(**kw))["ingest"] == "ran"
    assert stage_table(prepare(**kw))["ingest"] == "cached"
    real = cache.module_source_hash
    monkeypatch.setattr(cache, "module_source_hash", lambda name, root=cache.PACKAGE: (
        real(name, root) + ("-edited" if name == "prepare.quality" else "")))
    cache._code_version.cache_clear()
    table = stage_table(prepare(**kw))
    assert table["ingest"] == "ran", table
    assert table["duplicates"] == "cached" and table["resize"] == "cached", table
