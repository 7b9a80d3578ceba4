"""`fer prepare DATA --labels FILE --preset ferplus` end to end: FER+'s usages as the split
(Table 2), held-out copies never dropped, the distributions saved beside the one-hot labels
and carried by the noisy copies, and the labels file's content in ingest's cache key."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fer_cli.main import main
from fer_core import store
from tests.conftest import require_fer2013

VOTES = Path(__file__).resolve().parents[2].parent / "shared/data/ferplus_votes.csv"
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


@pytest.fixture(scope="module")
def ferplus_small(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """60 FER2013 faces per usage with their FER+ votes, plus one group of identical JPEGs
    that crosses usages (found here by SHA-1)."""
    tarball = require_fer2013()
    if not VOTES.exists():
        pytest.skip(f"{VOTES} not found")
    votes = pd.read_csv(VOTES)
    usage = dict(zip(votes["path"], votes["usage"], strict=True))
    wanted = set(votes.groupby("usage").sample(60, random_state=1)["path"])
    groups: dict[str, list[str]] = defaultdict(list)
    blobs = {}
    with tarfile.open(tarball) as tar:
        for member in tar:
            rel = member.name.removeprefix("fer2013/")
            if rel in usage:
                data = tar.extractfile(member).read()
                groups[hashlib.sha1(data).hexdigest()].append(rel)
                blobs[rel] = data
    crossing = next(sorted(g) for g in groups.values()
                    if "Training" in {usage[p] for p in g} and len({usage[p] for p in g}) > 1)
    root = tmp_path_factory.mktemp("ferplus_flow") / "fer2013"
    for rel in wanted | set(crossing):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(blobs[rel])
    labels = root.parent / "ferplus_votes.csv"
    votes[votes["path"].isin(wanted | set(crossing))].to_csv(labels, index=False)
    return root, labels, crossing


def test_fer_prepare_ferplus(prefect_backend, ferplus_small, tmp_path):
    root, labels, crossing = ferplus_small
    config = tmp_path / "small.yaml"
    config.write_text("resize:\n  size: 32\n")
    run, shared = tmp_path / "run", tmp_path / "store"
    assert main(["prepare", str(root), "--labels", str(labels), "--preset", "ferplus",
                 "--labels-mode", "crossentropy", "--no-align", "--augment", "balance",
                 "--config", str(config), "--store", str(shared), "--out", str(run)]) == 0
    m = store.read_frame(run / "manifest.parquet").set_index("path")
    assert sorted(m.index) == sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    votes = pd.read_csv(labels).set_index("path")
    assert (m["subset"][m["subset"] != ""] == votes["usage"].map(USAGE)[m["subset"] != ""]).all()

    # The held-out copies of the crossing group are all kept; the training copies go.
    held = [p for p in crossing if votes.at[p, "usage"] != "Training"]
    assert (m.loc[held, "status"].isin(["kept", "rejected"])).all()
    assert not (m.loc[held, "status"] == "duplicate").any()
    train_copies = [p for p in crossing if votes.at[p, "usage"] == "Training"]
    assert (m.loc[train_copies, "status"] != "kept").all()

    # Table 2 is the split as given: no 80/20.
    kept = m[m["status"] == "kept"]
    split = pd.read_csv(run / "reports" / "split.csv", dtype={"code": str}).set_index("class")
    assert list(split.columns) == ["code", "train", "val", "test"]
    for name in ("train", "val", "test"):
        assert split.at["Total", name] == (kept["split"] == name).sum()
        assert (kept.loc[kept["subset"] == name, "split"] == name).all()

    # reports/labels.csv: every face with votes counted once, under its class or reason.
    table = pd.read_csv(run / "reports" / "labels.csv").set_index("split")
    per_usage = votes["usage"].map(USAGE).value_counts()
    assert table.sum(axis=1).to_dict() == per_usage.to_dict()
    assert table.at["test", "no majority"] == (m.loc[m["subset"] == "test", "reason"]
                                               == "no majority").sum()

    # Distributions: each saved row's is its source's, noisy copies included.
    meta = store.read_json(run / "sets" / "meta.json")
    classes = meta["classes"]
    assert meta["distribution"] == "distribution.npy"
    for name in ("train", "val", "test"):
        saved = store.load_set(run, name)
        sources = pd.read_csv(run / "sets" / name / "sources.csv")
        assert saved.distribution.shape == saved.labels.shape
        for i, (src, _noise) in enumerate(zip(sources["source"], sources["noise"], strict=True)):
            want = json.loads(m.at[src, "distribution"])
            assert np.allclose(saved.distribution[i], [want.get(c, 0) for c in classes],
                               atol=1e-6)
            assert saved.distribution[i][saved.labels[i].argmax()] == saved.distribution[i].max()
        if name != "train":  # majority labels: one-hot
            assert np.array_equal(saved.distribution, saved.labels.astype(np.float32))
    train = pd.read_csv(run / "sets" / "train" / "sources.csv")
    assert (train["noise"] != "none").any()  # there were noisy copies to check
    # crossentropy keeps training faces that majority rejects: some have two classes.
    assert (store.load_set(run, "train").distribution.max(axis=1) < 1).any()

    # An edited labels file is a new ingest (its content keys it): one vote moved.
    first = votes.index[(votes["usage"] == "PrivateTest")
                        & (m.reindex(votes.index)["status"] == "kept")][0]
    before = m.at[first, "class"]
    edited = votes.copy()
    cols = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
            "contempt"]
    other = next(c for c in cols if c.capitalize() != before and
                 not (before == "Happiness" and c == "happiness"))
    edited.loc[first, cols] = 0
    edited.loc[first, other] = 10
    edited.reset_index().to_csv(labels, index=False)
    again = tmp_path / "again"
    assert main(["prepare", str(root), "--labels", str(labels), "--preset", "ferplus",
                 "--labels-mode", "crossentropy", "--no-align", "--augment", "balance",
                 "--config", str(config), "--store", str(shared), "--out", str(again)]) == 0
    m2 = store.read_frame(again / "manifest.parquet").set_index("path")
    assert m2.at[first, "class"] != before
    assert json.loads(m2.at[first, "votes"])[other] == 10


def test_a_labels_file_that_cannot_be_read_fails_at_once(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    bad = tmp_path / "labels.csv"
    bad.write_text("file,emotion\nx.jpg,1\n")
    out = str(tmp_path / "run")
    assert main(["prepare", str(data), "--labels", str(bad), "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels.csv: no 'path' column" in err[0]
    assert main(["prepare", str(data), "--labels", str(tmp_path / "none.csv"), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "labels file" in err and "none.csv not found" in err
    assert main(["prepare", str(data), "--preset", "ferplus", "--out", out]) == 2
    assert "no labels file given" in capsys.readouterr().err
    assert not Path(out).exists()
