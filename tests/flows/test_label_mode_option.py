"""`fer train --label-mode`: the training's label_mode from the command line, over the
mode the sets were prepared with; an unknown mode, or one the sets cannot serve, fails in
one line before any training."""

from __future__ import annotations

import json

from fer_cli.main import main
from fer_core import store
from tests.flows.test_labels_flow import ferplus_small  # noqa: F401 - a shared fixture


def test_an_unknown_label_mode_fails_in_one_line_naming_the_modes(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "sets").mkdir(parents=True)
    (run / "sets" / "meta.json").write_text(json.dumps({"classes": ["a", "b"]}))
    assert main(["train", str(run), "--label-mode", "soft"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--label-mode 'soft'" in err
    assert all(m in err for m in ("majority", "probability", "crossentropy")), err
    assert not (run / "train").exists()


def test_the_label_mode_given_is_the_trainings(prefect_backend, tmp_path, capsys,
                                               ferplus_small):  # noqa: F811
    root, labels, _ = ferplus_small
    run = tmp_path / "run"
    assert main(["prepare", str(root), "--labels", str(labels), "--preset", "ferplus",
                 "--labels-mode", "crossentropy", "--no-align", "--augment", "none",
                 "--store", str(tmp_path / "store"), "--out", str(run)]) == 0
    capsys.readouterr()  # the preparation's log
    # majority would keep other faces than the sets hold: refused, naming the option.
    assert main(["train", str(run), "--label-mode", "majority"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.count("--label-mode") == 1, err
    assert "prepared with labels mode 'crossentropy'" in err
    assert not (run / "train").exists()

    assert main(["train", str(run), "--label-mode", "probability", "--model", "compact_cnn",
                 "--epochs", "1", "--batch-size", "16", "--device", "cpu",
                 "--name", "drawn"]) == 0
    folder = run / "train" / "drawn"
    assert store.read_json(folder / "training.json")["config"]["label_mode"] == "probability"
    assert store.read_json(folder / "reports" / "metrics.json")["label_mode"] == "probability"
