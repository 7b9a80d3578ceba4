"""``fer predict`` and ``fer export``: registered by fer_cli.main (``register(sub)``)."""

from __future__ import annotations

import argparse
import json

from fer_cli import checks
from fer_core.models.reference import shipped_path
from fer_core.models.weights import DEFAULT_CHECKPOINT


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify every face in images, folders and videos",
                       description="One row per face found (MTCNN), classified by a "
                       "checkpoint (the shipped model unless --model is given); images "
                       "without a face and unreadable files get a row too.")
    p.add_argument("inputs", nargs="+", metavar="PATH",
                   help="image files, folders (searched recursively) and video files")
    p.add_argument("--model", default=None,
                   help="a shipped model's name (fer2013: FER2013's 7 classes; ferplus: FER+'s "
                   "8), a checkpoint (best.pt), a training RUN/train/NAME or a run RUN (its "
                   "latest or promoted training) (default: the FER2013 model, "
                   f"fer_core/models/weights/{DEFAULT_CHECKPOINT.name})")
    p.add_argument("--out", default="predictions.csv", help="results file, .csv or .json "
                   "(video timelines go to <out stem>_timelines/)")
    p.add_argument("--annotate", metavar="DIR",
                   help="write copies with boxes, landmarks and labels drawn into DIR")
    # Every default is None: PredictConfig's, and the checkpoint's face spec for --margin,
    # the same as the predict flow's and fer serve's (tests/flows/test_predict_flow.py).
    p.add_argument("--every", type=int, metavar="N",
                   help="in videos, classify every Nth frame (default 1)")
    p.add_argument("--batch-size", type=int, help="faces per classifier batch (default 64)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="where the model runs (default auto: cuda when there is one)")
    p.add_argument("--margin", type=float,
                   help="face crop side = (1 + margin) x the detected box's longer side "
                   "(default: the checkpoint's face spec, which frames a face as its "
                   "training faces were framed)")
    p.add_argument("--min-face-size", type=int,
                   help="smallest face MTCNN looks for, in pixels (default 40; 20 finds "
                   "smaller faces at about twice the detection time)")
    p.add_argument("--detect-max-side", type=int, metavar="PIXELS",
                   help="shrink larger photos to this longer side for detection only "
                   "(faster on big photos; default 0 = never)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch CPU threads (default 1: MTCNN runs many small operations, "
                   "and more threads per operation mostly wait; 0 = torch's default)")
    p.add_argument("--detect-workers", type=int, metavar="N",
                   help="threads running MTCNN batches in parallel (default 2)")
    p.set_defaults(func=cmd_predict, check=_resolve_model)

    e = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript")
    e.add_argument("--model", required=True, help="a checkpoint (best.pt), RUN/train/NAME, "
                   "RUN or a shipped model's name (fer2013, ferplus)")
    e.add_argument("--format", choices=("onnx", "torchscript"), required=True,
                   help="onnx (for ONNX Runtime) or torchscript (for torch.jit.load)")
    e.add_argument("--out", required=True, help="the exported file (metadata: OUT.json)")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    e.add_argument("--dynamo", action="store_true",
                   help="use torch's dynamo ONNX exporter (needs onnxscript)")
    e.set_defaults(func=cmd_export, check=_resolve_model)


def _resolve_model(args: argparse.Namespace) -> None:
    args.model = checks.model_reference(args.model, "--model")


def cmd_predict(args: argparse.Namespace) -> int:
    # The shipped model is looked up first: when it is missing, fail before loading torch.
    model = args.model if args.model is not None else str(shipped_path("fer2013"))
    # In-process, no Prefect server: a photo pays one start of torch and MTCNN (the predict
    # flow runs the same steps as tasks, for deployments).
    from fer_core.infer.batch import predict_paths
    from fer_core.infer.predict import predict_config

    cfg = predict_config(every=args.every, batch_size=args.batch_size, device=args.device,
                         margin=args.margin, min_face_size=args.min_face_size,
                         detect_max_side=args.detect_max_side, torch_threads=args.threads,
                         detect_workers=args.detect_workers)
    result = predict_paths(list(args.inputs), model, cfg, out=args.out,
                           annotate=args.annotate)
    print(f"results: {result['results']}  {json.dumps(result['status'])}")
    for key, path in result.items():
        if key.startswith("timeline:"):
            print(f"timeline: {path}")
    if args.annotate:
        print(f"annotated: {args.annotate}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from fer_core.models.export import ExportConfig, export_checkpoint, meta_path

    info = export_checkpoint(args.model, args.out, ExportConfig(
        format=args.format, opset=args.opset, dynamo=args.dynamo))
    print(f"{info['format']}: {info['path']}  (metadata: {meta_path(args.out)})")
    return 0
