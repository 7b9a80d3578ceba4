"""Fine-tuning the shipped model through `fer train --weights`: its architecture by default,
an incompatible --model refused in one line before any training, and a grey model on colour
faces kept grey, said in the log and honoured by `fer predict` and `fer evaluate` alike."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from fer_cli.main import main
from fer_core import store
from fer_core.models.checkpoint import load_checkpoint, load_model
from tests.fer_core._trainfix import fer_run, fer_tiny_run  # noqa: F401  (fixtures)
from tests.fer_core.infer import _oracle
from tests.flows.test_train_flow import predicted

FER = str(Path(sys.executable).parent / "fer")
RECIPE = ("batch_size: 32\nlr: 0.001\nweight_decay: 0.0\naugment: false\npatience: 0\n"
          "device: cpu\nnum_threads: 1\nwarmup_epochs: 0\nepochs: 1\n")
TINT = np.array([1.0, 0.8, 0.6])  # grey faces made colour: the channels differ


@pytest.fixture(scope="module")
def colour_run(fer_tiny_run, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("finetune") / "run"
    shutil.copytree(fer_tiny_run / "sets", out / "sets")
    for split in ("train", "val"):
        path = out / "sets" / split / "images.npy"
        tinted = (np.load(path) * TINT).round().astype(np.uint8)
        path.unlink()
        store.write_array(path, tinted)
    recipe = out.parent / "recipe.yaml"
    recipe.write_text(RECIPE)
    return out, recipe


@pytest.mark.fer2013
def test_an_incompatible_model_fails_in_one_line_before_training(colour_run, capsys):
    out, recipe = colour_run
    code = main(["train", str(out), "--weights", "fer2013", "--model", "resnet18",
                 "--config", str(recipe)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "resnet18" in err and "vgg_faces" in err and "fer2013_vgg_faces.pt" in err
    assert not (out / "train").exists()


@pytest.mark.fer2013
@pytest.mark.slow
def test_the_shipped_model_fine_tuned_on_colour_stays_grey_and_the_doors_agree(
        prefect_backend, colour_run, caplog, astronaut, tmp_path):
    out, recipe = colour_run
    assert main(["train", str(out), "--weights", "fer2013", "--config", str(recipe),
                 "--name", "ft"]) == 0
    logged = caplog.text  # the flow logs the prints of fer_core (log_prints)
    assert "stays grey" in logged and "kept [angry<-Anger, happy<-Happiness" in logged
    best = out / "train" / "ft" / "model" / "best.pt"
    _, meta = load_checkpoint(best)
    assert meta["model"] == "vgg_faces"  # the checkpoint's architecture, no --model given
    assert meta["face_spec"]["grayscale"] is True
    start = meta["lineage"]["start"]
    assert start["kept"] == {"angry": "Anger", "happy": "Happiness", "neutral": "Neutral",
                             "surprise": "Surprise"}
    assert start["fresh"] == [] and sorted(start["dropped"]) == ["Disgust", "Fear", "Sadness"]

    # fer predict on a colour photo: the oracle with the model as evaluate loads it.
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    csv = tmp_path / "p.csv"
    r = subprocess.run([FER, "predict", str(photo), "--model", str(best), "--out", str(csv)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(csv).filter(like="p_").to_numpy()
    model, _ = load_model(best)
    want = _oracle.predict(astronaut, model, _oracle.spec_of(best), _oracle.mtcnn())
    np.testing.assert_allclose(got, np.stack([f["proba"] for f in want]), atol=2e-3)
    # fer evaluate on the colour faces: the scores of that model's own predictions.
    assert main(["evaluate", str(out), "--checkpoint", str(out / "train" / "ft")]) == 0
    scored = store.read_json(out / "train" / "ft" / "reports" / "metrics.json")
    val = store.load_set(out, "val")
    assert scored["val"]["accuracy"] == pytest.approx(
        accuracy_score(val.targets, predicted(best, val)), abs=5e-5)
