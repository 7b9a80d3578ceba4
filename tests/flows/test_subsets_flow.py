"""Named test subsets through the flows (FER2013's PrivateTest): saved as rows of test,
scored beside it, rescored by evaluate, and keyed in the cache by the list's content."""

from __future__ import annotations

import json

import pytest

from fer_cli.main import main
from fer_core import store
from tests.flows._private_run import (  # noqa: F401  (private_run: a fixture)
    LIST,
    SUBSET_CLASSES,
    _predictions,
    listed,
    private_run,
)
from tests.flows.test_caching import changed, results
from tests.flows.test_train_flow import latest_artifact


@pytest.mark.fer2013
def test_test_private_is_saved_as_rows_of_test_and_scored_beside_it(private_run):  # noqa: F811
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    data, run = private_run
    entries = listed(data / LIST)
    on_disk = {p.relative_to(data).as_posix() for p in (data / "test").rglob("*.jpg")}
    present = [e for e in entries if e in on_disk]
    assert len(entries) == 3589 and len(present) == 7 * len(SUBSET_CLASSES)
    manifest = store.read_frame(run / "manifest.parquet").set_index("path")
    assert (manifest.loc[present, "status"] == "kept").all()

    meta = store.read_json(run / "sets" / "meta.json")
    assert meta["subsets"]["test_private"]["n"] == len(present)
    assert meta["splits"]["test"] == len(on_disk)  # test stays whole: Private + Public
    # the listed images this copy of the data lacks are reported with their count
    warnings = json.loads((run / "prepare.json").read_text())["warnings"]
    [line] = [w for w in warnings if "test_private" in w]
    assert f"{len(entries) - len(present)} of the {len(entries)} images listed" in line

    # the subset is exactly the listed rows of test, read from test's pixels
    test = store.load_set(run, "test")
    sources = store.read_csv(run / "sets" / "test" / "sources.csv")["source"]
    rows = np.flatnonzero(sources.isin(set(entries)).to_numpy())
    private = store.load_set(run, "test_private")
    assert private.rows.tolist() == rows.tolist()
    assert np.array_equal(private.images, test.images[rows])
    assert np.array_equal(private.labels, test.labels[rows])
    assert not (run / "sets" / "test_private" / "images.npy").exists()

    metrics = json.loads((run / "reports" / "metrics.json").read_text())
    assert metrics["splits"] == ["val", "test", "test_private"] and metrics["split"] == "test"
    assert metrics["accuracy"] == metrics["test"]["accuracy"]
    y_pred = _predictions(run, private.images)
    labels = list(range(len(SUBSET_CLASSES)))
    assert metrics["test_private"]["n"] == len(present)
    assert metrics["test_private"]["accuracy"] == pytest.approx(
        accuracy_score(private.targets, y_pred))
    assert metrics["test_private"]["macro_f1"] == pytest.approx(
        f1_score(private.targets, y_pred, labels=labels, average="macro", zero_division=0))
    cm = store.read_csv(run / "reports" / "confusion_test_private.csv").drop(columns="true")
    assert cm.to_numpy().tolist() == confusion_matrix(private.targets, y_pred,
                                                      labels=labels).tolist()
    assert (run / "reports" / "confusion_test_private.png").stat().st_size > 1000
    table = json.loads(latest_artifact("metrics").data)
    assert [row["split"] for row in table] == ["val", "test", "test_private"]


@pytest.mark.fer2013
def test_evaluate_rescores_every_set_and_leaves_trainings_reports(private_run):  # noqa: F811
    data, run = private_run
    reports = run / "reports"
    kept = {n: (reports / n).read_bytes() for n in ("history.csv", "training_curves.png")}
    trained = json.loads((reports / "metrics.json").read_text())
    assert len(store.read_csv(reports / "history.csv")) == 2
    assert main(["evaluate", str(run)]) == 0
    assert {n: (reports / n).read_bytes() for n in kept} == kept
    again = json.loads((reports / "metrics.json").read_text())
    assert again["splits"] == ["val", "test", "test_private"]
    for split in again["splits"]:
        assert again[split]["accuracy"] == pytest.approx(trained[split]["accuracy"])
        assert again[split]["confusion"] == trained[split]["confusion"]
    table = json.loads(latest_artifact("metrics").data)
    assert [row["split"] for row in table] == ["val", "test", "test_private"]


@pytest.mark.fer2013
def test_the_list_files_content_keys_the_save_stage(private_run, tmp_path):  # noqa: F811
    data, run = private_run
    entries = listed(data / LIST)
    on_disk = {p.relative_to(data).as_posix() for p in (data / "test").rglob("*.jpg")}
    mine = tmp_path / "lists" / "private.txt"  # outside the data folder: the data is as it was
    mine.parent.mkdir()
    mine.write_text("\n".join(entries) + "\n")
    out = tmp_path / "run"
    args = ["prepare", str(data), "--out", str(out), "--class-map", "fer2013", "--no-align",
            "--subset", f"test_private={mine}"]
    assert main(args) == 0
    first = results(out / "store")
    assert main(args) == 0
    assert results(out / "store") == first, "nothing changed: nothing is saved again"
    assert not list(out.rglob("*.tmp")), "publishing the same sets again leaves nothing behind"
    dropped = next(e for e in entries if e in on_disk)
    mine.write_text("\n".join(e for e in entries if e != dropped) + "\n")
    assert main(args) == 0
    after = results(out / "store")
    assert changed(first, after, "save")[0], "an edited list redoes the save stage"
    for stage in ("ingest", "duplicates", "split", "resize", "augment"):
        assert changed(first, after, stage) == (set(), set()), f"{stage} stays cached"
    n_present = sum(e in on_disk for e in entries)
    meta = store.read_json(out / "sets" / "meta.json")
    assert meta["subsets"]["test_private"]["n"] == n_present - 1
    sources = store.read_csv(out / "sets" / "test_private" / "sources.csv")["source"]
    assert dropped not in set(sources) and len(sources) == n_present - 1

    # A copy of the data anywhere, the subset named in a config file relative to the data.
    import shutil

    copy = shutil.copytree(data, tmp_path / "elsewhere" / "fer")
    cfg = tmp_path / "prepare.yaml"
    cfg.write_text(f"subsets:\n  test_private: {LIST}\n")
    assert main(["prepare", str(copy), "--out", str(tmp_path / "copy_run"), "--class-map",
                 "fer2013", "--no-align", "--config", str(cfg)]) == 0
    copied = store.read_json(tmp_path / "copy_run" / "sets" / "meta.json")
    assert copied["subsets"]["test_private"]["n"] == n_present
