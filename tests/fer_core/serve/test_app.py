"""``fer serve``'s app on real photos and on malformed requests: every bad request gets a 4xx
naming its reason, and the service goes on answering photos as fer predict does."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from fer_core.datasets.bomb import bomb_png
from fer_core.infer.predict import PredictConfig, load_predictor, predict_images
from fer_core.models.checkpoint import load_checkpoint
from fer_core.models.spec import face_spec
from fer_core.models.weights import DEFAULT_CHECKPOINT
from fer_core.serve.app import ServeConfig, create_app


@pytest.fixture(scope="module")
def client():
    app = create_app(DEFAULT_CHECKPOINT, PredictConfig(device="cpu"),
                     ServeConfig(max_bytes=2_000_000))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def photo(astronaut) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))[1].tobytes()


def test_a_photo_gets_predicts_rows(client, photo):
    r = client.post("/predict", content=photo, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and len(body["faces"]) == 1
    # The oracle: fer predict's own function on the decoded photo.
    cfg = PredictConfig(device="cpu")
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR),
                         cv2.COLOR_BGR2RGB)
    rows = predict_images([image], load_predictor(DEFAULT_CHECKPOINT, cfg), cfg)
    face = body["faces"][0]
    assert face["class"] == rows.loc[0, "class"] == "Happiness"
    for col in rows.filter(like="p_").columns:
        assert abs(face[col] - rows.loc[0, col]) <= 1e-4
    multipart = client.post("/predict", files={"file": ("a.jpg", photo, "image/jpeg")})
    assert multipart.json()["faces"][0]["class"] == "Happiness"


def test_a_batch_answers_each_file_and_names_the_bad_one(client, photo):
    r = client.post("/predict/batch", files=[("files", ("a.jpg", photo, "image/jpeg")),
                                             ("files", ("b.txt", b"not an image", "text/plain")),
                                             ("files", ("c.jpg", photo, "image/jpeg"))])
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["file"] for x in results] == ["a.jpg", "b.txt", "c.jpg"]
    assert [x["status"] for x in results] == ["ok", "error", "ok"]
    assert "cannot be decoded" in results[1]["reason"]


@pytest.mark.parametrize(("body", "ctype", "status", "reason"), [
    (b"", "image/jpeg", 400, "empty"),
    (b"\x00\x01 certainly not an image", "image/gif", 400, "cannot be decoded"),
    (None, "image/jpeg", 400, "truncated JPEG"),  # the photo, cut short
    (b"hello", "text/plain", 415, "content type"),
    (b"x" * 2_100_000, "image/jpeg", 413, "over the limit"),
    ("bomb", "image/png", 413, "400.0 megapixels"),
    (b"--xx\r\nnot a form", "multipart/form-data; boundary=xx", 400, ""),
])
def test_malformed_requests_get_a_4xx_naming_the_reason(client, photo, body, ctype, status,
                                                        reason):
    data = photo[:len(photo) // 2] if body is None else bomb_png(20000, 20000) \
        if body == "bomb" else body
    r = client.post("/predict", content=data, headers={"content-type": ctype})
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
    ok = client.post("/predict", content=photo, headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200 and ok.json()["faces"][0]["class"] == "Happiness"


def test_health_model_page_and_unknown_routes(client):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/model").json()
    shipped = face_spec(load_checkpoint(DEFAULT_CHECKPOINT)[1])
    assert info["face_spec"] == shipped.model_dump(mode="json") and len(info["classes"]) == 7
    assert info["metrics"]["test_private"]["n"] == 3589
    page = client.get("/")
    assert page.status_code == 200 and "Drop a photo" in page.text
    assert client.get("/nothing").status_code == 404
    assert client.get("/predict").status_code == 405
