"""(ours) Named trainings on one prepared set: both kept side by side, an index whose scores
are each training's own (scikit-learn on its predictions), ``best.pt`` following `fer
promote`, a name reused for another recipe refused, the lineage recorded by content, and an
honest headline where there is no held-out test split."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from fer_cli.main import main
from fer_core import store
from fer_core.models.checkpoint import load_checkpoint
from fer_core.models.reference import resolve_model
from tests.fer_core._trainfix import fer_run, fer_tiny_run  # noqa: F401  (fixtures)
from tests.flows.test_train_flow import predicted

RECIPE = ("model: compact_cnn\nbatch_size: 64\nlr: 0.003\nweight_decay: 0.0\naugment: false\n"
          "patience: 0\ndevice: cpu\nnum_threads: 1\nwarmup_epochs: 0\n")


def sets_hash(sets: Path) -> str:
    """The sets' content: each file's relative path and SHA-256, then each folder's name
    (hashlib here, not the store's code)."""
    h = hashlib.sha256()
    for p in sorted(q for q in sets.rglob("*") if q.is_file()):
        h.update(f"{p.relative_to(sets).as_posix()}\t"
                 f"{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    for d in sorted(q for q in sets.rglob("*") if q.is_dir()):
        h.update(f"{d.relative_to(sets).as_posix()}/\n".encode())
    return h.hexdigest()


def same_file(a: Path, b: Path) -> bool:
    return store.file_sha256(a) == store.file_sha256(b)


@pytest.fixture(scope="module")
def run(fer_run, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("named") / "run"
    shutil.copytree(fer_run / "sets", out / "sets")
    recipe = out.parent / "recipe.yaml"
    recipe.write_text(RECIPE)
    return out, recipe


@pytest.mark.fer2013
@pytest.mark.slow
def test_two_named_trainings_are_kept_compared_and_promoted(prefect_backend, run, capsys):
    out, recipe = run
    base = ["train", str(out), "--config", str(recipe)]
    assert main([*base, "--name", "one", "--epochs", "1"]) == 0
    assert main([*base, "--name", "two", "--epochs", "2", "--seed", "1"]) == 0
    one, two = out / "train" / "one", out / "train" / "two"
    for t in (one, two):
        assert (t / "model" / "best.pt").is_file() and (t / "reports" / "metrics.json").is_file()
    assert not same_file(one / "model" / "best.pt", two / "model" / "best.pt")
    # The run's model is the latest training's.
    assert same_file(out / "model" / "best.pt", two / "model" / "best.pt")

    index = pd.read_csv(out / "train" / "index.csv").set_index("name")
    assert sorted(index.index) == ["one", "two"]
    test, val = store.load_set(out, "test"), store.load_set(out, "val")
    for name, t in (("one", one), ("two", two)):
        for split, saved in (("test", test), ("val", val)):
            y_pred = predicted(t / "model" / "best.pt", saved)
            assert index.at[name, f"{split}_accuracy"] == pytest.approx(
                accuracy_score(saved.targets, y_pred), abs=5e-5)
            assert index.at[name, f"{split}_macro_f1"] == pytest.approx(
                f1_score(saved.targets, y_pred, average="macro", labels=range(4),
                         zero_division=0), abs=5e-5)
    assert index.at["two", "epochs"] == 2 and index.at["one", "epochs"] == 1
    assert index.at["one", "start_checkpoint"] == "scratch"

    # Lineage: the sets by content, the code version.
    _, meta = load_checkpoint(one / "model" / "best.pt")
    assert meta["lineage"]["sets_sha256"] == sets_hash(out / "sets") \
        == index.at["one", "sets_sha256"]
    assert meta["lineage"]["code"] == index.at["one", "code"]

    # Promote: best.pt follows, and the index says which one it is.
    assert main(["promote", str(out), "one"]) == 0
    assert same_file(out / "model" / "best.pt", one / "model" / "best.pt")
    assert same_file(out / "reports" / "metrics.json", one / "reports" / "metrics.json")
    index = pd.read_csv(out / "train" / "index.csv").set_index("name")
    assert bool(index.at["one", "alias"]) and not bool(index.at["two", "alias"])
    assert main(["promote", str(out), "nope"]) == 2

    # The same name with the same recipe: a cache hit; with another: refused, naming it.
    capsys.readouterr()
    assert main([*base, "--name", "one", "--epochs", "1"]) == 0
    assert "cached" in capsys.readouterr().out
    assert same_file(out / "model" / "best.pt", one / "model" / "best.pt")  # still promoted
    assert main([*base, "--name", "one", "--epochs", "3"]) == 2
    assert "epochs: 1 -> 3" in capsys.readouterr().err

    # fer compare: best first, and the curves.
    assert main(["compare", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[0] == "name"
    best = index["test_accuracy"].idxmax()
    assert printed[1].split()[0] == best
    assert (out / "train" / "compare.png").stat().st_size > 1000

    # One model reference for every door.
    assert resolve_model(two) == two / "model" / "best.pt"
    assert resolve_model(out) == out / "model" / "best.pt"
    assert main(["export", "--model", str(two), "--format", "torchscript",
                 "--out", str(out.parent / "two.ts")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--checkpoint", str(two)]) == 0
    printed = capsys.readouterr().out
    # Scored into its own folder: the run's reports stay the promoted training's.
    assert f"reports: {two / 'reports'}" in printed
    assert printed.strip().splitlines()[-1].startswith("headline (held-out test split)")
    assert store.read_json(two / "reports" / "metrics.json")["checkpoint"] == str(
        two / "model" / "best.pt")
    assert same_file(out / "reports" / "metrics.json", one / "reports" / "metrics.json")

    # --replace: what the replaced training left (a report the new one lacks) is gone from
    # its folder and from the alias's RUN/reports; the preparation's reports there stay.
    (one / "reports" / "stale.csv").write_text("the old training's\n")
    (out / "reports" / "near_duplicates.csv").write_text("the preparation's\n")
    assert main(["promote", str(out), "one"]) == 0
    assert (out / "reports" / "stale.csv").is_file()
    assert main([*base, "--name", "one", "--epochs", "1", "--lr", "0.001", "--replace"]) == 0
    assert not (one / "reports" / "stale.csv").exists()
    assert not (out / "reports" / "stale.csv").exists()
    assert (out / "reports" / "near_duplicates.csv").read_text() == "the preparation's\n"
    assert same_file(out / "model" / "best.pt", one / "model" / "best.pt")
    assert sorted(p.name for p in (out / "reports").iterdir()) == sorted(
        ["near_duplicates.csv", *(p.name for p in (one / "reports").iterdir())])
    # Promoting the other one swaps the alias's files whole.
    assert main(["promote", str(out), "two"]) == 0
    assert sorted(p.name for p in (out / "reports").iterdir()) == sorted(
        ["near_duplicates.csv", *(p.name for p in (two / "reports").iterdir())])


@pytest.mark.fer2013
def test_fer_serve_shows_the_lineage(run):
    from fastapi.testclient import TestClient

    from fer_core.serve.app import create_app

    out, _ = run
    trained = sorted((out / "train").glob("*/model/best.pt"))
    if not trained:
        pytest.skip("needs the trainings of the test above")
    _, meta = load_checkpoint(trained[0])
    with TestClient(create_app(resolve_model(trained[0].parents[1]))) as client:
        lineage = client.get("/model").json()["lineage"]
    assert lineage["sets_sha256"] == sets_hash(out / "sets")
    assert lineage == meta["lineage"]


@pytest.mark.fer2013
def test_without_a_test_split_the_headline_says_it_is_validation(prefect_backend,
                                                                 fer_tiny_run, tmp_path,  # noqa: F811
                                                                 capsys):
    out = tmp_path / "tiny"
    shutil.copytree(fer_tiny_run / "sets", out / "sets")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    assert main(["train", str(out), "--config", str(recipe), "--epochs", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("headline (val: validation, which chose the epoch")
    metrics = store.read_json(out / "reports" / "metrics.json")
    assert metrics["split"] == "val" and "chose the epoch" in metrics["headline"]
