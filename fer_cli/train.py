"""`fer train`, `fer evaluate` and `fer pipeline`: the train, evaluate and pipeline flows
(registered by fer_cli.main with ``register(sub)``)."""

from __future__ import annotations

import json
from pathlib import Path

from fer_cli import checks, options


def register(sub) -> None:
    t = sub.add_parser("train", help="class-weighted training and evaluation on saved sets")
    t.add_argument("run_dir", help="a run folder made by `fer prepare`")
    t.add_argument("--weights", help="the model to start from: a shipped model's name "
                   "(fer2013), a checkpoint or state_dict, RUN/train/NAME (default: scratch)")
    t.add_argument("--name", help="the training's name: it goes to RUN_DIR/train/NAME "
                   "(default: the model and a short hash of the config)")
    t.add_argument("--replace", action="store_true", help="overwrite a training of that name "
                   "trained with another config, sets or starting checkpoint")
    t.add_argument("--store", help="result store folder (default RUN_DIR/store)")
    # Checked by fer_cli.checks (a one-line error naming the modes), not argparse choices.
    t.add_argument("--label-mode", metavar="MODE", help="how a face's votes (sets prepared "
                   "with --labels) become its training target: majority (the one-hot "
                   "majority label) | probability (a label drawn from its votes each epoch) | "
                   "crossentropy (the vote distribution, soft targets); default: the mode "
                   "the sets were prepared with (--labels-mode), else majority")
    options.training(t)
    t.set_defaults(func=cmd_train, check=check_train)
    e = sub.add_parser("evaluate", help="score a trained model, on its run or another dataset")
    e.add_argument("run_dir", help="a run folder made by `fer prepare` or `fer pipeline`")
    e.add_argument("--data", help="another dataset, all of it one test set, aligned and "
                   "resized as the run's (cross-dataset); reports in "
                   "RUN_DIR/reports/cross/NAME/")
    e.add_argument("--class-map", help="'fer2013' or old=New pairs, for --data "
                   "(default: the run's)")
    e.add_argument("--classes", help="a,b,c: only these classes of --data (a class the model "
                   "does not know is otherwise an error)")
    e.add_argument("--name", help="name of --data in the reports (default: its folder's)")
    # --model as in predict, serve and export: the same reference, under the same name.
    e.add_argument("--checkpoint", "--model", dest="checkpoint", help="a checkpoint, "
                   "RUN/train/NAME, RUN or a shipped model's name (fer2013, ferplus) (default "
                   "RUN_DIR/model/best.pt, else the shipped FER2013 model)")
    e.add_argument("--store", help="result store folder (default RUN_DIR/store)")
    e.set_defaults(func=cmd_evaluate, check=check_evaluate)
    c = sub.add_parser("compare", help="the trainings of a run side by side, best first",
                       description="Prints RUN_DIR/train/index.csv best first (test accuracy "
                       "when every training has a test split, else validation's) and writes "
                       "RUN_DIR/train/compare.png, the validation curves of every training.")
    c.add_argument("run_dir", help="a run folder with trainings in RUN_DIR/train/")
    c.set_defaults(func=cmd_compare, check=lambda a: checks.run_folder(a.run_dir))
    pr = sub.add_parser("promote", help="make a named training the run's model "
                        "(RUN_DIR/model/best.pt and RUN_DIR/reports)")
    pr.add_argument("run_dir", help="a run folder with trainings in RUN_DIR/train/")
    pr.add_argument("name", help="a training in RUN_DIR/train/")
    pr.set_defaults(func=cmd_promote, check=lambda a: checks.run_folder(a.run_dir))
    p = sub.add_parser("pipeline", help="prepare, train and evaluate in one flow")
    options.preparation(p, config="--prepare-config")
    options.training(p)
    p.set_defaults(func=cmd_pipeline, check=check_pipeline)


def _overrides(args) -> dict:
    """The command line's TrainConfig keys."""
    return {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "device": args.device, "random_state": args.seed}


def check_train(args) -> None:
    checks.run_folder(args.run_dir)
    checks.label_mode_option(args.label_mode)
    checks.train_config(args.train_config, args.model, weights=args.weights,
                        label_mode=args.label_mode, **_overrides(args))
    checks.label_mode(args.run_dir, args.train_config, args.label_mode)
    args.weights = checks.model_reference(args.weights, "--weights")
    checks.start_model(args.train_config, args.model, args.weights)
    if args.name is not None:
        from fer_core.train.trainings import check_name

        check_name(args.name)
    checks.tracking(args.mlflow)


def check_evaluate(args) -> None:
    if args.data is None:
        checks.run_folder(args.run_dir)
    else:
        checks.data_path(args.data)
        checks.out_folder(args.run_dir, "run folder")
    args.checkpoint = checks.model_reference(args.checkpoint, "--model")


def check_pipeline(args) -> None:
    checks.data_path(args.data)
    checks.out_folder(args.out)
    checks.prepare_config(args.prepare_config, args.data)
    checks.train_config(args.train_config, args.model, **_overrides(args))
    checks.tracking(args.mlflow)


def validate_train(args, **extra) -> None:
    """The whole training config, as the flow builds it (imports neither torch nor
    Prefect): an unknown model or a bad value fails before any server starts."""
    from fer_core.config.train import TrainConfig

    values = TrainConfig.from_file(args.train_config).to_dict() if args.train_config else {}
    overrides = {"model": args.model, "epochs": args.epochs, "batch_size": args.batch_size,
                 "lr": args.lr, "device": args.device, "random_state": args.seed, **extra}
    values.update({k: v for k, v in overrides.items() if v is not None})
    TrainConfig.from_dict(values)


def _show(metrics: dict) -> None:
    for split, m in metrics.items():
        print(f"{split}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}")


def _show_tracking(logged: dict | None) -> None:
    if logged:
        said = "logged" if logged["logged"] else "already logged"
        print(f"MLflow: {said} as run {logged['run_id']} of experiment "
              f"{logged['experiment']!r}; model {logged['model_uri']}")


def cmd_train(args) -> int:
    validate_train(args, weights=args.weights, label_mode=args.label_mode)
    from flows.train import train

    result = train(run_dir=args.run_dir, model=args.model, epochs=args.epochs,
                   batch_size=args.batch_size, lr=args.lr, device=args.device,
                   weights=args.weights, seed=args.seed, config_file=args.train_config,
                   store_root=args.store, name=args.name, replace=args.replace,
                   label_mode=args.label_mode, mlflow=args.mlflow)
    _show(result["metrics"])
    if result["cache_hit"]:
        print(f"training {result['name']}: the same config, sets and start as before (cached)")
    _show_tracking(result["mlflow"])
    print(f"model: {result['checkpoint']}  reports: {result['reports']}")
    print(f"{result['alias']['checkpoint']} is training {result['alias']['training']}; "
          f"all trainings: {Path(args.run_dir) / 'train' / 'index.csv'}")
    if result["headline"]:
        print(result["headline"])
    return 0


def cmd_evaluate(args) -> int:
    from flows.train import evaluate_run

    metrics = evaluate_run(run_dir=args.run_dir, data=args.data, class_map=args.class_map,
                           checkpoint=args.checkpoint, classes=args.classes, name=args.name,
                           store_root=args.store)
    _show(metrics)
    if args.data is None:
        from fer_core import store
        from fer_core.evaluate.score import headline_line
        from fer_core.train.trainings import reports_home

        where = reports_home(args.run_dir, args.checkpoint or "") / "reports"
        print(f"reports: {where}")
        line = headline_line(store.read_json(where / "metrics.json"))
        if line:
            print(line)
    else:
        from flows.train import other_dataset_name

        where = Path(args.run_dir) / "reports" / "cross" / (args.name
                                                             or other_dataset_name(args.data))
        print("all_classes: the model's argmax over all its classes; present_classes: "
              "restricted to the classes in the data")
        print(f"reports: {where}")
    return 0


def cmd_pipeline(args) -> int:
    from fer_core.prepare.config import build_config

    build_config(args.data, file=args.prepare_config, classes=args.classes,
                 class_map=args.class_map, augment=args.augment, align=not args.no_align)
    validate_train(args)
    from flows.pipeline import pipeline

    result = pipeline(data=args.data, out=args.out, classes=args.classes,
                      class_map=args.class_map, augment=args.augment, align=not args.no_align,
                      model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, device=args.device, seed=args.seed,
                      prepare_config=args.prepare_config, train_config_file=args.train_config,
                      store_root=args.store, mlflow=args.mlflow)
    print(f"sets: {json.dumps(result['sets'])}")
    _show(result["metrics"])
    print(f"model: {result['checkpoint']}")
    _show_tracking(result.get("mlflow"))
    if result.get("headline"):
        print(result["headline"])
    return 0


def cmd_compare(args) -> int:
    import pandas as pd

    from fer_core import store
    from fer_core.evaluate.figures import compare_figure
    from fer_core.train import trainings

    table = trainings.ranked(trainings.write_index(args.run_dir))
    if table.empty:
        print(f"{args.run_dir}: no named trainings yet (RUN_DIR/train/); "
              "`fer train RUN_DIR --name NAME` adds one")
        return 0
    shown = [c for c in table.columns if c not in ("sets_sha256", "start_sha256", "created")]
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table[shown].to_string(index=False))
    plot = Path(args.run_dir) / trainings.TRAIN / "compare.png"
    store.write_figure(plot, compare_figure(trainings.histories(args.run_dir)))
    print(f"index: {Path(args.run_dir) / trainings.TRAIN / trainings.INDEX}  curves: {plot}")
    return 0


def cmd_promote(args) -> int:
    from fer_core.train import trainings

    alias = trainings.promote(args.run_dir, args.name)
    trainings.write_index(args.run_dir)
    print(f"{alias} is now training {args.name} (until another is promoted)")
    return 0
