"""(ours) The label audit's out-of-sample probabilities over a manifest, its faces read in
chunks: every audited image gets a row from a fold model that never saw it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_core.audit import out_of_sample
from fer_core.audit.labels import AuditConfig
from fer_core.prepare.manifest import KEPT, REJECTED, new_rows


def test_audit_probs_cover_the_audited_rows_and_learn_an_easy_signal(monkeypatch):
    monkeypatch.setattr(out_of_sample, "CHUNK", 7)
    rows = [{"path": f"{c}/{i}.png", "class": c, "label": k, "status": KEPT,
             "split": ("train", "val", "test")[i % 3]}
            for k, c in enumerate(("across", "down")) for i in range(30)]
    rows.append({"path": "bad.png", "class": "across", "status": REJECTED, "split": ""})
    m = new_rows(rows)
    rng = np.random.default_rng(0)
    stripes = np.zeros((20, 20, 3), np.uint8)
    stripes[::4] = 200  # horizontal stripes; their transpose is the other class
    reads = []

    def read_batches(paths, size):
        reads.append((len(paths), size))
        for s in range(0, len(paths), size):
            yield s, [(stripes if p.startswith("across") else stripes.transpose(1, 0, 2))
                      + rng.integers(0, 40, (20, 20, 3), dtype=np.uint8)
                      for p in paths[s:s + size]]

    cfg = AuditConfig(model="hog_logreg", folds=2, size=16)
    got, probs, classes = out_of_sample.audit_probs(m, cfg, read_batches)
    audited = m[(m["status"] == KEPT) & m["split"].isin(("train", "val"))]
    assert got["path"].tolist() == audited["path"].tolist(), "train and val, manifest order"
    assert list(got.columns) == list(out_of_sample.ROW_COLUMNS)
    assert reads == [(40, 7)] and classes == ("across", "down")
    assert probs.shape == (40, 2) and np.allclose(probs.sum(1), 1)
    assert out_of_sample.accuracy(got, probs) == 1.0


def test_accuracy_is_the_share_of_argmax_equal_to_the_label():
    rows = pd.DataFrame({"label": [0, 1, 1, 0]})
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    assert out_of_sample.accuracy(rows, probs) == 0.5
