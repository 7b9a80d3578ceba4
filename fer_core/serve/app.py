"""``fer serve``: the FastAPI app. The model is loaded once; photos are decoded with the
store's reader (header checked before a pixel is decoded, EXIF orientation applied) and go
through ``fer_core.infer.predict.predict_images``, the function ``fer predict`` and the
``predict`` flow call, batched across concurrent requests (``Batcher``).

Routes: ``POST /predict`` (one image: raw bytes, or multipart with one file),
``POST /predict/batch`` (multipart, several files), ``GET /health``, ``GET /model`` (classes,
the face spec, the card's metrics) and ``GET /`` (a page to drop a photo on). Bad input is
answered 4xx with a JSON ``detail`` naming the reason, and the service goes on serving.
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from fer_core import store
from fer_core.infer.predict import OK, PredictConfig, Predictor, load_predictor, predict_images
from fer_core.models.spec import face_spec
from fer_core.serve.batcher import Batcher, Full
from fer_core.serve.page import PAGE

RAW_TYPES = ("image/", "application/octet-stream")
# Row fields that say where a row came from in a results file, not what the face is.
_SOURCE_FIELDS = ("file", "frame", "time_s", "image", "status", "reason")


class BadRequest(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    max_bytes: int = 20 * 2**20  # a request body larger than this is refused (413)
    max_files: int = 32  # images in one batch request
    workers: int = 1  # threads running batches (each runs MTCNN on cfg.detect_workers)
    max_batch: int = 16  # images per model call across concurrent requests
    max_queue: int = 256  # images waiting before requests are refused (503)


def image_results(rows, n_images: int) -> list[dict]:
    """predict_images' rows -> one {status, faces} per image (face fields as in its rows)."""
    out = [{"status": "no_face", "faces": []} for _ in range(n_images)]
    for row in rows.to_dict("records"):
        if row["status"] != OK:
            continue
        face = {k: _json(v) for k, v in row.items() if k not in _SOURCE_FIELDS}
        out[int(row["image"])]["status"] = OK
        out[int(row["image"])]["faces"].append(face)
    return out


def _json(v):
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit`` bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"request body of {int(declared)} bytes is over the limit of "
                         f"{limit} bytes (--max-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"request body is over the limit of {limit} bytes "
                             "(--max-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def uploads(request: Request, scfg: ServeConfig, *, many: bool) -> list[tuple[str, bytes]]:
    """(name, bytes) of the uploaded images: a raw body, or the files of a multipart form."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not ctype.startswith("multipart/form-data") and not (
            not many and ctype.startswith(RAW_TYPES)):
        want = "multipart/form-data" if many else "an image/* type, application/octet-stream " \
            "or multipart/form-data"
        raise BadRequest(415, f"content type {ctype or '(none)'!r}: send {want}")
    body = await read_body(request, scfg.max_bytes)
    if not ctype.startswith("multipart/"):
        return [("upload", body)]
    request._body = body  # the form parser reads the body already read (Starlette caches it)
    try:
        form = await request.form(max_files=scfg.max_files, max_fields=scfg.max_files)
    except Exception as e:  # noqa: BLE001 - malformed multipart, too many parts
        raise BadRequest(400, f"malformed multipart body: {e}") from None
    files = [(getattr(v, "filename", None) or k, await v.read())
             for k, v in form.multi_items() if hasattr(v, "read")]
    if not files:
        raise BadRequest(400, "no file in the multipart form (send the image as a file part)")
    if not many and len(files) > 1:
        raise BadRequest(400, f"{len(files)} files sent: POST /predict/batch takes several")
    return files


def decode(name: str, data: bytes, cfg: PredictConfig) -> np.ndarray:
    try:
        return store.decode_image(data, name, max_pixels=cfg.max_pixels,
                                  reduce_above=cfg.reduce_above)
    except store.BadImage as e:
        raise BadRequest(413 if e.reason.startswith("too large") else 400,
                         f"{name}: {e.reason}") from None


def create_app(checkpoint_path: str | os.PathLike, cfg: PredictConfig | None = None,
               scfg: ServeConfig | None = None) -> FastAPI:
    cfg, scfg = cfg or PredictConfig(), scfg or ServeConfig()
    predictor: Predictor = load_predictor(checkpoint_path, cfg)
    batcher = Batcher(lambda images: image_results(predict_images(images, predictor, cfg),
                                                   len(images)),
                      workers=scfg.workers, max_batch=scfg.max_batch, max_queue=scfg.max_queue)
    spec = face_spec(predictor.meta)
    info = {"model": predictor.meta.get("model"), "classes": list(predictor.classes),
            "face_spec": spec.model_dump(), "metrics": predictor.meta.get("metrics", {}),
            "checkpoint": {"path": str(checkpoint_path),
                           "sha256": store.file_sha256(checkpoint_path)},
            # what it learnt from: sets' content hash, starting checkpoint, code version
            "lineage": predictor.meta.get("lineage", {}),
            "code_version": predictor.meta.get("code_version", {})}
    app = FastAPI(title="fer serve", description="Facial expressions of every face in a photo.")

    @app.exception_handler(BadRequest)
    async def bad_request(_request: Request, exc: BadRequest):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    def submit(images: list[np.ndarray], arrival: dict | None = None):
        try:
            return batcher.submit(images, arrival)
        except Full as e:
            raise BadRequest(503, f"busy: {e}; try again shortly") from None

    async def classify(images: list[np.ndarray]) -> list[dict]:
        return await asyncio.wrap_future(submit(images))

    @app.post("/predict")
    async def predict_one(request: Request):
        with batcher.arriving() as arrival:
            (name, data), = await uploads(request, scfg, many=False)
            image = await run_in_threadpool(decode, name, data, cfg)
            fut = submit([image], arrival)
        result, = await asyncio.wrap_future(fut)
        return {"file": name, "width": image.shape[1], "height": image.shape[0], **result}

    @app.post("/predict/batch")
    async def predict_many(request: Request):
        files = await uploads(request, scfg, many=True)
        decoded, results = [], []
        for name, data in files:  # a bad file gets its reason; the others are still answered
            try:
                decoded.append((name, await run_in_threadpool(decode, name, data, cfg)))
            except BadRequest as e:
                results.append({"file": name, "status": "error", "reason": e.detail,
                                "faces": []})
                decoded.append((name, None))
        good = [(n, img) for n, img in decoded if img is not None]
        answers = iter(await classify([img for _, img in good]) if good else [])
        out, errors = [], iter(results)
        for name, img in decoded:
            out.append(next(errors) if img is None else {
                "file": name, "width": img.shape[1], "height": img.shape[0], **next(answers)})
        return {"results": out}

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/model")
    async def model():
        return info

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return PAGE

    return app


def serve(checkpoint_path: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000,
          cfg: PredictConfig | None = None, scfg: ServeConfig | None = None) -> None:
    """Run the service until it is stopped (``fer serve``, the ``serve`` flow)."""
    import uvicorn

    app = create_app(checkpoint_path, cfg, scfg)
    print(f"serving {checkpoint_path} on http://{host}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
