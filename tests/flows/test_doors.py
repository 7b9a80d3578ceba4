"""One face pipeline behind every door: the same photos (FER2013 test faces planted in photos,
and scikit-image's astronaut) through ``fer predict``, the ``predict`` flow with its own
defaults, the exported ONNX predictor and ``fer serve`` give the same classes, and
probabilities within 1e-4 of each other and of a hand-made oracle (the checkpoint's spec
applied step by step with OpenCV, tests/fer_core/infer/_oracle.py). The deployment door
(server + worker) is tests/flows/test_deployment_e2e.py.

Twice: with the default FER2013 model (7 classes, no ``--model``), and with a FER+ model (8
classes, another face spec): the shipped one (``--model ferplus``) once bench/ship_model.py
has made it, until then a tiny 8-class training (tests/flows/_ferplus_model.py, unaligned
faces), so the doors are checked on FER+'s classes today."""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from fer_core import store
from fer_core.datasets.planted import backgrounds, plant_face
from fer_core.infer.onnx import OnnxPredictor
from fer_core.infer.predict import PredictConfig, load_predictor
from fer_core.models.checkpoint import load_model
from fer_core.models.export import ExportConfig, export_checkpoint
from fer_core.models.spec import face_spec
from fer_core.models.weights import DEFAULT_CHECKPOINT, FERPLUS_CHECKPOINT
from fer_core.serve.app import create_app
from tests.conftest import REPO, extract_fer2013_subset
from tests.fer_core.infer import _oracle
from tests.flows._ferplus_model import tiny_ferplus  # noqa: F401 - a shared fixture

FER = str(Path(sys.executable).parent / "fer")


@dataclass(frozen=True)
class Door:
    ref: str | None  # what --model and the flow's model get (None: fer predict's default)
    checkpoint: Path
    classes: int
    trained: bool  # a real training: it must read the astronaut's smile


@pytest.fixture(scope="module", params=["fer2013", "ferplus"])
def door(request) -> Door:
    if request.param == "fer2013":
        return Door(None, DEFAULT_CHECKPOINT, 7, True)
    if FERPLUS_CHECKPOINT.is_file():  # shipped by bench/ship_model.py --model ferplus
        return Door("ferplus", FERPLUS_CHECKPOINT, 8, True)
    tiny = request.getfixturevalue("tiny_ferplus").run / "model" / "best.pt"
    return Door(str(tiny), tiny, 8, False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut) -> Path:
    """Eight photos: the astronaut, and seven FER2013 test faces (one per class) planted."""
    root = tmp_path_factory.mktemp("doors")
    faces = extract_fer2013_subset(root / "fer", per_class={
        f"test/{c}": 1 for c in ("angry", "disgust", "fear", "happy", "neutral", "sad",
                                 "surprise")})
    out = root / "photos"
    out.mkdir()
    rng, backs = np.random.default_rng(7), backgrounds()
    for path in sorted(faces.rglob("*.jpg")):
        face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        photo, _ = plant_face(face, backs, rng)
        cv2.imwrite(str(out / f"{path.parent.name}.png"), photo)
    cv2.imwrite(str(out / "astronaut.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return out


def probabilities(rows: pd.DataFrame) -> pd.DataFrame:
    ok = rows[rows["status"] == "ok"].copy()
    ok["name"] = ok["file"].map(lambda f: Path(f).name)
    return ok.sort_values(["name", "face"]).set_index(["name", "face"]).filter(like="p_")


@pytest.fixture(scope="module")
def cli_rows(photos, door, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("cli") / "predictions.csv"
    model = [] if door.ref is None else ["--model", door.ref]
    r = subprocess.run([FER, "predict", str(photos), "--out", str(out), *model],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = pd.read_csv(out)
    # one column per class of the model: without --model, FER2013's 7
    assert rows.filter(like="p_").shape[1] == door.classes
    return rows


def test_the_cli_matches_the_oracle(photos, door, cli_rows):
    model, _ = load_model(door.checkpoint)
    spec, detector = _oracle.spec_of(door.checkpoint), _oracle.mtcnn()
    got = probabilities(cli_rows)
    assert len(got) >= 7  # most planted faces and the astronaut are found
    for name, face in got.index:
        image = store.read_input_image(str(photos / name))
        want = _oracle.predict(image, model, spec, detector)[int(face)]["proba"]
        np.testing.assert_allclose(got.loc[(name, face)].to_numpy(), want, atol=2e-3)
    if door.trained:
        assert got.loc[("astronaut.png", 0)].idxmax() == "p_Happiness"


def test_the_flow_with_its_own_defaults_agrees(photos, door, cli_rows, prefect_backend,
                                               tmp_path, monkeypatch):
    from flows.predict import predict

    monkeypatch.chdir(tmp_path)
    result = predict(inputs=[str(photos)], model=door.ref or str(DEFAULT_CHECKPOINT))
    written = Path(result["results"])
    assert written.parent.name == "predictions" and written.suffix == ".csv"  # per flow run
    flow_rows = pd.read_csv(written)
    a, b = probabilities(cli_rows), probabilities(flow_rows)
    assert list(a.index) == list(b.index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-4)


def test_onnx_and_http_agree_with_the_cli(photos, door, cli_rows, tmp_path):
    pytest.importorskip("onnxruntime")
    export_checkpoint(door.checkpoint, tmp_path / "m.onnx", ExportConfig())
    onnx = OnnxPredictor.load(tmp_path / "m.onnx")
    # The checkpoint's TTA (hflip or tencrop for the shipped models), folded into the graph.
    assert onnx.spec.tta == face_spec(load_model(door.checkpoint)[1]).tta
    cfg = PredictConfig(device="cpu")
    detector = load_predictor(door.checkpoint, cfg).detector
    want = probabilities(cli_rows)
    with TestClient(create_app(door.checkpoint, cfg)) as client:
        for name in sorted({n for n, _ in want.index}):
            image = store.read_input_image(str(photos / name))
            _, proba = onnx.predict_photos([image], detector)
            expected = want.loc[name].to_numpy()
            np.testing.assert_allclose(proba, expected, atol=1e-4)
            reply = client.post("/predict", files={"file": (name, (photos / name).read_bytes(),
                                                            "image/png")}).json()
            served = np.array([[f[c] for c in want.columns] for f in reply["faces"]])
            np.testing.assert_allclose(served, expected, atol=1e-4)


def test_no_door_keeps_a_default_of_its_own():
    """Every prediction setting of the CLI and the flow defaults to None (PredictConfig's
    defaults, the checkpoint's spec for the framing); prefect.yaml's batch deployment sets
    none of them."""
    from fer_cli import predict as cli_predict
    from flows.predict import predict

    parser = argparse.ArgumentParser()
    cli_predict.register(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["predict"]
    settings = {a.dest: a.default for a in sub._actions
                if a.dest not in ("help", "inputs", "model", "out", "annotate")}
    assert settings and all(v is None for v in settings.values()), settings
    params = inspect.signature(predict.fn).parameters
    flow_defaults = {k: p.default for k, p in params.items()
                     if k not in ("inputs", "model", "out", "annotate")}
    assert all(v is None for v in flow_defaults.values()), flow_defaults
    assert set(settings) <= set(flow_defaults)  # the CLI offers no setting the flow lacks
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    batch = next(d for d in deployments if d["name"] == "batch")
    assert set(batch["parameters"]) <= {"inputs", "model"}, batch["parameters"]
