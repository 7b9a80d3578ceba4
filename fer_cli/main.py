"""The ``fer`` command: the same Prefect flows the UI and deployments run.

Every command is checked (arguments, config files, paths: ``fer_cli.checks``) before
Prefect is imported or its embedded server started, so a bad command fails at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from fer_cli import audit, checks, options, predict, serve, store, train
from fer_core import UsageError

# Modules whose ``register(sub)`` adds their sub-commands (each imports nothing heavy).
REGISTRARS = (train, predict, serve, audit, store)


def _prepare_args(p: argparse.ArgumentParser) -> None:
    options.preparation(p, config="--config")
    p.add_argument("--subset", action="append", default=[], metavar="NAME=LIST",
                   help="a named subset of the held-out test split, scored beside it: LIST "
                   "names its images one per line, relative to the data folder (e.g. "
                   "test_private=fer2013/test_private.txt); repeatable")
    _labels_args(p)
    p.add_argument("--retries", type=int, default=2, help="retries of a failed alignment batch")
    p.add_argument("--dask-address", help="run alignment batches on this Dask scheduler "
                   "(e.g. tcp://10.0.0.5:8786; needs the 'dask' extra)")


# --option -> the labels option (fer_core.config.labels.LabelsConfig) it sets.
LABELS_OPTIONS = {"labels": "file", "columns": "columns", "label_names": "label_names",
                  "split_column": "split_column", "split_map": "split_map",
                  "box_columns": "box_columns", "ignore_columns": "ignore_columns",
                  "skip_columns": "skip_columns", "labels_mode": "mode", "preset": "preset"}


def _labels_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("a labels file as the dataset (paths in it relative to DATA)")
    g.add_argument("--labels", metavar="FILE", help="CSV/TSV with a header (path, and label "
                   "or one vote column per class), or a headerless list with --columns")
    g.add_argument("--columns", help="a headerless whitespace-separated list's columns, "
                   "e.g. path,label")
    g.add_argument("--label-names", help="integer codes to class names: 1=Surprise,2=Fear,...")
    g.add_argument("--split-column", help="the column holding each row's split (FER+: usage)")
    g.add_argument("--split-map", help="its values to train/val/test: "
                   "Training=train,PublicTest=val,PrivateTest=test")
    g.add_argument("--box-columns", help="face box columns x,y,width,height: crop first")
    g.add_argument("--ignore-columns", help="vote columns that are not classes (unknown,NF)")
    g.add_argument("--skip-columns", help="columns to leave unread (valence,arousal)")
    g.add_argument("--labels-mode", choices=("majority", "probability", "crossentropy"),
                   help="votes to training labels as FER+ does (val/test: majority)")
    g.add_argument("--preset", help="options of a known labels file: ferplus")


def labels_options(args) -> dict | None:
    """The labels options given on the command line, by LabelsConfig key."""
    given = {key: getattr(args, opt) for opt, key in LABELS_OPTIONS.items()
             if getattr(args, opt, None) is not None}
    return given or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="a bug's traceback on the "
                        "terminal (anywhere on the command line)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="sections 4-5: folder of labelled faces -> saved sets")
    _prepare_args(p)
    p.set_defaults(func=cmd_prepare, check=check_prepare, embedded_server=True)
    d = sub.add_parser("demo", help="the whole pipeline on an embedded demo dataset")
    d.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    d.add_argument("--per-class", type=int, default=30,
                   help="demo images made per class (default 30)")
    d.add_argument("--epochs", type=int, default=8,
                   help="epochs to train compact_cnn (default 8)")
    d.set_defaults(func=cmd_demo)
    for module in REGISTRARS:
        module.register(sub)
    return parser


def check_prepare(args) -> None:
    checks.data_path(args.data)
    checks.out_folder(args.out)
    checks.prepare_config(args.config, args.data)
    args.subsets = subset_options(args.subset)


def validate_prepare(args) -> None:
    """The whole config, as the flow will build it (imports the stages' modules, not
    Prefect): a bad value fails here, before any server starts."""
    from fer_core.prepare.config import build_config

    build_config(args.data, file=args.config, classes=args.classes,
                 class_map=args.class_map, augment=args.augment, align=not args.no_align,
                 subsets=args.subsets, labels=labels_options(args))


def cmd_prepare(args) -> int:
    from fer_core.prepare.ingest import summarize_rejections
    from fer_core.prepare.manifest import status_counts
    from fer_core.store import read_frame
    validate_prepare(args)
    from fer_cli import embedded
    from fer_core.config.labels import LabelsConfig
    from flows.prepare import prepare

    labels = labels_options(args)
    if labels and "file" in labels:  # as given here: the flow finds it from its folder
        labels["file"] = str(Path(labels["file"]).resolve()) if Path(labels["file"]).is_file() \
            else labels["file"]
    with embedded.api():
        result = prepare(data=args.data, out=args.out, classes=args.classes,
                         class_map=args.class_map, augment=args.augment,
                         align=not args.no_align, config_file=args.config,
                         store_root=args.store, retries=args.retries,
                         dask_address=args.dask_address, subsets=args.subsets,
                         labels=LabelsConfig(**labels) if labels else None)
    manifest = read_frame(result["manifest"])
    print(f"manifest: {result['manifest']}  {status_counts(manifest)}")
    for line in summarize_rejections(manifest):
        print(line)
    print(f"sets: {json.dumps(result['sets'])}  classes: {', '.join(result['classes'])}")
    print(f"reports: {Path(args.out) / 'reports'}")
    return 0


def subset_options(options: list[str]) -> dict[str, str] | None:
    """``--subset NAME=LIST`` options -> {name: list file}. A LIST that exists from here is
    made absolute (a path typed in a shell); otherwise it stays relative to the data folder."""
    from fer_core.prepare.subsets import parse_option

    out = {}
    for option in options:
        name, path = parse_option(option)
        if name in out:
            raise UsageError(f"--subset {name} is given twice")
        out[name] = str(Path(path).resolve()) if Path(path).is_file() else path
    return out or None


def cmd_demo(args) -> int:
    """The main job on the embedded default: make the demo dataset, then the pipeline."""
    from fer_cli.train import cmd_pipeline
    from fer_core.datasets.demo import DemoConfig, demo_images
    from fer_core.store import write_dataset, write_json

    data = Path(args.out) / "data"
    n = write_dataset(data, demo_images(DemoConfig(per_class=args.per_class)))
    print(f"demo dataset: {n} files in {data}")
    # The drawn faces share one template, so their perceptual hashes join most of them, of
    # every class, into one group of near-duplicates that the split keeps whole: that would
    # leave validation empty. They are distinct faces by construction; the split is per image.
    config = Path(args.out) / "demo_prepare.json"
    write_json(config, {"split": {"group_near_duplicates": False}})
    return cmd_pipeline(argparse.Namespace(
        data=str(data), out=args.out, classes=None, class_map=None, augment="auto",
        no_align=False, prepare_config=str(config), store=None, train_config=None,
        model="compact_cnn", epochs=args.epochs, batch_size=32, lr=None, device=None, seed=None,
        mlflow=None))


def main(argv: list[str] | None = None, *, guard: bool = False) -> int:
    """Run one ``fer`` command. ``guard``: end, when this process ends (even killed), every
    process it started (fer_cli.guard); the console script sets it, an in-process caller
    (a test) does not.

    What the user can fix (``fer_core.UsageError``, and the checks' missing files) is one
    line and exit status 2. Anything else is a bug: exit status 1, its message, and its
    traceback in a log file (on the terminal with ``--debug``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    try:
        check = getattr(args, "check", None)
        if check is not None:
            check(args)
        if guard:
            from fer_cli.guard import guard_descendants

            guard_descendants()
        if getattr(args, "embedded_server", False):
            from fer_cli import embedded

            embedded.start()  # comes up while the command imports its flows
        return args.func(args)
    except UsageError as e:
        print(f"fer {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a bug: told apart from a usage error
        print(f"fer {args.command}: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        else:
            print(f"the traceback is in {bug_log(args.command)} (--debug prints it here)",
                  file=sys.stderr)
        return 1


def bug_log(command: str) -> Path:
    """The current exception's traceback in a new log file; its path."""
    folder = Path(tempfile.gettempdir()) / "fer-logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{command}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    path.write_text(traceback.format_exc())
    return path


def console() -> int:
    """The ``fer`` console script."""
    return main(guard=True)


if __name__ == "__main__":
    sys.exit(console())
