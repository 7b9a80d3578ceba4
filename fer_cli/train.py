"""`fer train`, `fer evaluate` and `fer pipeline`: the train, evaluate and pipeline flows
(registered by fer_cli.main with ``register(sub)``)."""

from __future__ import annotations

import json
from pathlib import Path

from fer_cli import checks, options


def register(sub) -> None:
    t = sub.add_parser("train", help="class-weighted training and evaluation on saved sets")
    t.add_argument("run_dir", help="a run folder made by `fer prepare`")
    t.add_argument("--weights", help="a local state_dict to start from (default: scratch)")
    t.add_argument("--store", help="result store folder (default RUN_DIR/store)")
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
    e.add_argument("--checkpoint", help="default RUN_DIR/model/best.pt, else the shipped model "
                   "(fer_core/models/weights/)")
    e.add_argument("--store", help="result store folder (default RUN_DIR/store)")
    e.set_defaults(func=cmd_evaluate, check=check_evaluate)
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
    checks.train_config(args.train_config, args.model, weights=args.weights, **_overrides(args))
    checks.existing_file(args.weights, "--weights")


def check_evaluate(args) -> None:
    if args.data is None:
        checks.run_folder(args.run_dir)
    else:
        checks.data_path(args.data)
        checks.out_folder(args.run_dir, "run folder")
    checks.existing_file(args.checkpoint, "--checkpoint")


def check_pipeline(args) -> None:
    checks.data_path(args.data)
    checks.out_folder(args.out)
    checks.prepare_config(args.prepare_config, args.data)
    checks.train_config(args.train_config, args.model, **_overrides(args))


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


def cmd_train(args) -> int:
    validate_train(args, weights=args.weights)
    from flows.train import train

    result = train(run_dir=args.run_dir, model=args.model, epochs=args.epochs,
                   batch_size=args.batch_size, lr=args.lr, device=args.device,
                   weights=args.weights, seed=args.seed, config_file=args.train_config,
                   store_root=args.store)
    _show(result["metrics"])
    print(f"model: {result['checkpoint']}  reports: {result['reports']}")
    return 0


def cmd_evaluate(args) -> int:
    from flows.train import evaluate_run

    metrics = evaluate_run(run_dir=args.run_dir, data=args.data, class_map=args.class_map,
                           checkpoint=args.checkpoint, classes=args.classes, name=args.name,
                           store_root=args.store)
    _show(metrics)
    if args.data is None:
        print(f"reports: {Path(args.run_dir) / 'reports'}")
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
                      store_root=args.store)
    print(f"sets: {json.dumps(result['sets'])}")
    _show(result["metrics"])
    print(f"model: {result['checkpoint']}")
    return 0
