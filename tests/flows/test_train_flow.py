"""The train, evaluate and pipeline flows: new training parameters rerun only training."""

from __future__ import annotations

import json

import pytest

from fer_core import store
from fer_core.quality import sharpness_table
from flows.cli import main
from tests.conftest import extract_fer2013_subset
from tests.flows.test_caching import changed, results


def latest_artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC, limit=1)
    assert found, f"no artifact {key!r}"
    return found[0]


@pytest.mark.fer2013
@pytest.mark.slow
def test_pipeline_then_new_training_parameters_rerun_only_training(prefect_backend, tmp_path):
    classes = ("angry", "happy", "surprise")
    data = extract_fer2013_subset(tmp_path / "fer", per_class={
        **{f"train/{c}": 30 for c in classes}, **{f"test/{c}": 10 for c in classes}})
    out = tmp_path / "run"
    args = ["pipeline", str(data), "--out", str(out), "--class-map", "fer2013",
            "--model", "compact_cnn", "--batch-size", "32"]
    assert main([*args, "--epochs", "2"]) == 0
    metrics = json.loads((out / "reports" / "metrics.json").read_text())
    assert {"val", "test"} <= set(metrics) and "per_class" in metrics["test"]
    assert 0 <= metrics["test"]["macro_f1"] <= 1
    assert metrics["best_epoch"] in (1, 2)  # fit's own scores of the best model, published
    for f in ("confusion_test.csv", "confusion_test.png", "training_curves.png"):
        assert (out / "reports" / f).stat().st_size > 50
    assert (out / "model" / "best.pt").is_file()
    # ../shared's FER2013 train/ is blurred, test/ sharp: the warning reaches the scores
    # (and goes away by itself once the data is fixed).
    table = sharpness_table(store.read_frame(out / "manifest.parquet")).set_index("split")
    blurred = table.loc["test", "sharpness_median"] > 10 * table.loc["train", "sharpness_median"]
    warnings = json.loads((out / "pipeline.json").read_text())["data_warnings"]
    assert len(warnings) == int(blurred)
    assert all("blurrier than the test images" in w for w in warnings)
    first = results(out / "store")
    history = latest_artifact("training-history")
    assert [row["epoch"] for row in json.loads(history.data)] == [1, 2]
    assert latest_artifact("training-progress").data == 100.0

    assert main([*args, "--epochs", "3"]) == 0
    after = results(out / "store")
    for stage in ("ingest", "duplicates", "split", "align", "aligned", "resize", "augment"):
        assert changed(first, after, stage) == (set(), set()), f"{stage} must stay cached"
    assert changed(first, after, "train")[0], "training reruns with its new parameters"
    history = store.read_csv(out / "reports" / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]

    # Cross-dataset evaluation: the same model on another folder, same pre-processing.
    other = extract_fer2013_subset(tmp_path / "other", per_class={
        f"test/{c}": 5 for c in ("angry", "happy", "surprise", "neutral")})
    assert main(["evaluate", str(out), "--data", str(other), "--class-map", "fer2013"]) == 0
    cross = json.loads((out / "cross" / "other" / "evaluate.json").read_text())
    assert cross["metrics"]["test"]["accuracy"] >= 0
    manifest = store.read_frame(out / "cross" / "other" / "manifest.parquet")
    assert (manifest.loc[manifest["class"] == "Neutral", "status"] == "rejected").all()
