"""``fer predict`` and ``fer export``: registered by fer_cli.main (``register(sub)``)."""

from __future__ import annotations

import argparse
import json

from fer_cli import checks
from fer_core.models.weights import DEFAULT_CHECKPOINT, default_checkpoint

# fer_core.infer.predict's PredictConfig.margin; repeated here so that `fer --help` does not import
# torch (tests/flows/test_predict_flow.py checks that the two agree).
DEFAULT_MARGIN = -0.07


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify every face in images, folders and videos",
                       description="One row per face found (MTCNN), classified by a "
                       "checkpoint (the shipped model unless --model is given); images "
                       "without a face and unreadable files get a row too.")
    p.add_argument("inputs", nargs="+", metavar="PATH",
                   help="image files, folders (searched recursively) and video files")
    p.add_argument("--model", default=None,
                   help="checkpoint (best.pt) written by fer train (default: the shipped "
                   f"model, fer_core/models/weights/{DEFAULT_CHECKPOINT.name})")
    p.add_argument("--out", default="predictions.csv", help="results file, .csv or .json "
                   "(video timelines go to <out stem>_timelines/)")
    p.add_argument("--annotate", metavar="DIR",
                   help="write copies with boxes, landmarks and labels drawn into DIR")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="in videos, classify every Nth frame (default 1)")
    p.add_argument("--batch-size", type=int, default=64, help="faces per classifier batch")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help="face crop side = (1 + margin) x the detected box's longer side "
                   f"(default {DEFAULT_MARGIN}: frames a face as FER2013's 48x48 crops, "
                   "which the model learnt from, do)")
    p.add_argument("--min-face-size", type=int, default=40,
                   help="smallest face MTCNN looks for, in pixels (default 40; 20 finds "
                   "smaller faces at about twice the detection time)")
    p.add_argument("--detect-max-side", type=int, default=0, metavar="PIXELS",
                   help="shrink larger photos to this longer side for detection only "
                   "(faster on big photos; 0 = never)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch CPU threads (default 1: MTCNN runs many small operations, "
                   "and more threads per operation mostly wait; 0 = torch's default)")
    p.add_argument("--detect-workers", type=int, default=2, metavar="N",
                   help="threads running MTCNN batches in parallel (default 2)")
    p.set_defaults(func=cmd_predict, check=lambda a: checks.existing_file(a.model, "--model"))

    e = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript")
    e.add_argument("--model", required=True, help="checkpoint (best.pt)")
    e.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    e.add_argument("--out", required=True, help="the exported file (metadata: OUT.json)")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    e.add_argument("--dynamo", action="store_true",
                   help="use torch's dynamo ONNX exporter (needs onnxscript)")
    e.set_defaults(func=cmd_export, check=lambda a: checks.existing_file(a.model, "--model"))


def cmd_predict(args: argparse.Namespace) -> int:
    # The shipped model is looked up first: when it is missing, fail before loading Prefect.
    model = args.model if args.model is not None else str(default_checkpoint())
    from flows.predict import predict

    result = predict(inputs=list(args.inputs), model=model, out=args.out,
                     annotate=args.annotate, every=args.every, batch_size=args.batch_size,
                     device=args.device, margin=args.margin,
                     min_face_size=args.min_face_size,
                     detect_max_side=args.detect_max_side, threads=args.threads,
                     detect_workers=args.detect_workers)
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
