"""`fer audit RUN_DIR`: the audit flow (likely label errors) on a prepared run."""

from __future__ import annotations


def register(sub) -> None:
    a = sub.add_parser("audit", help="likely label errors of a prepared run (k-fold + cleanlab)")
    a.add_argument("run_dir", help="a run folder made by `fer prepare`")
    a.add_argument("--config", help="YAML of audit keys (fer_core/config/audit.py AuditConfig)")
    a.add_argument("--model", help="cnn (default) | hog_logreg")
    a.add_argument("--folds", type=int, help="cross-validation folds for out-of-sample "
                   "probabilities (default 5)")
    a.add_argument("--epochs", type=int, help="cnn epochs per fold")
    a.add_argument("--device", help="auto (cuda, then mps, then cpu) | cpu | cuda | mps")
    a.add_argument("--review", choices=("relabel", "drop"),
                   help="also write RUN_DIR/reports/label_review.csv: every flagged image "
                   "with this action, for a person to edit and `fer prepare --config` to "
                   "apply (review: {file: ...})")
    a.add_argument("--store", help="result store folder (default RUN_DIR/store)")
    a.set_defaults(func=cmd_audit, check=check_audit)


def check_audit(args) -> None:
    """Before Prefect loads: a run folder, and a config file that is there, of audit keys."""
    from fer_cli import checks

    checks.run_folder(args.run_dir)
    checks.existing_file(args.config, "--config")
    checks.audit_config(args.config, model=args.model, folds=args.folds, epochs=args.epochs,
                        device=args.device)


def cmd_audit(args) -> int:
    from pathlib import Path

    from flows.audit import audit

    result = audit(run_dir=args.run_dir, config_file=args.config, store_root=args.store,
                   review=args.review, model=args.model, folds=args.folds, epochs=args.epochs,
                   device=args.device)
    print(f"audited {result['audited']} images (out-of-sample accuracy "
          f"{result['accuracy']:.3f}): {result['flagged']} likely label errors")
    print("per given class: " + ", ".join(f"{c} {n}" for c, n in result["per_class"].items()))
    print(f"reports: {Path(args.run_dir) / 'reports'}")
    if "review" in result["reports"]:
        print(f"review list: {result['reports']['review']} (edit it, then `fer prepare` with "
              f"review: {{file: {result['reports']['review']}}} in --config)")
    return 0
