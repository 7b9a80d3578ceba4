"""``fer serve``: the HTTP service (fer_core.serve) on uvicorn; registered by fer_cli.main."""

from __future__ import annotations

import argparse

from fer_cli import checks
from fer_core.models.reference import shipped_path
from fer_core.models.weights import DEFAULT_CHECKPOINT


def register(sub) -> None:
    s = sub.add_parser("serve", help="serve a model over HTTP (POST a photo, get its faces)",
                       description="An HTTP service on FastAPI and uvicorn: POST /predict (an "
                       "image as raw bytes or multipart), POST /predict/batch (several), GET "
                       "/health, GET /model, and a page at / to drop a photo on.")
    s.add_argument("--model", default=None,
                   help="a shipped model's name (fer2013: FER2013's 7 classes; ferplus: FER+'s "
                   "8), a checkpoint (best.pt), a training RUN/train/NAME or a run RUN "
                   f"(default: the FER2013 model, {DEFAULT_CHECKPOINT.name})")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for all)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    s.add_argument("--max-bytes", type=int, default=20 * 2**20, metavar="N",
                   help="largest request body accepted, in bytes (default 20 MiB; larger: 413)")
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="threads running batches of photos (default 1; each batch runs "
                   "MTCNN on two threads)")
    s.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the model runs (default auto: cuda when there is one)")
    s.set_defaults(func=cmd_serve, check=check_serve)


def check_serve(args: argparse.Namespace) -> None:
    args.model = checks.model_reference(args.model, "--model")
    if not 0 < args.port < 65536:
        raise checks.UsageError(f"--port {args.port}: must be 1-65535")
    if args.max_bytes < 1 or args.workers < 1:
        raise checks.UsageError("--max-bytes and --workers must be at least 1")


def cmd_serve(args: argparse.Namespace) -> int:
    model = args.model if args.model is not None else str(shipped_path("fer2013"))
    from fer_core.infer.predict import PredictConfig
    from fer_core.serve.app import ServeConfig, serve

    serve(model, host=args.host, port=args.port, cfg=PredictConfig(device=args.device),
          scfg=ServeConfig(max_bytes=args.max_bytes, workers=args.workers))
    return 0
