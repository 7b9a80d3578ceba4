"""(ours) Named trainings on one prepared set, side by side: ``RUN/train/NAME/``.

Each training keeps its model (``model/best.pt`` and its JSON), its reports and
``training.json`` (its config, what it learnt from: the sets' content hash and the starting
checkpoint's sha256, its epochs and wall time). Nothing is overwritten: the same name with
the same config, sets and starting checkpoint is the same training (a cache hit); anything
else under that name is an error naming what differs, unless it is replaced on purpose.

``RUN/model/best.pt`` and ``RUN/reports/`` stay a stable alias of the latest training, or
of the one promoted (``RUN/train/promoted.json``), so whatever names them keeps working.
``RUN/train/index.csv`` compares every training (``index``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fer_core import UsageError, store
from fer_core.config.train import TrainConfig
from fer_core.evaluate.score import REPORTS, split_metrics

TRAIN, INDEX, PROMOTED, RECORD = "train", "index.csv", "promoted.json", "training.json"
ALIASED = ".alias-files.json"  # in RUN/train: the files the alias last published
MODEL = "model"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def config_hash(cfg: TrainConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True, default=str)
                          .encode()).hexdigest()


def default_name(cfg: TrainConfig) -> str:
    """The model and a short hash of the whole config: two recipes never share a name."""
    return f"{cfg.model}-{config_hash(cfg)[:8]}"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"training name {name!r}: use letters, digits, '.', '_', '+', '-' "
                         "(not starting with '.' or '-')")
    return name


def training_dir(run_dir: str | os.PathLike, name: str) -> Path:
    return Path(run_dir) / TRAIN / check_name(name)


def identity(cfg: TrainConfig, sets_sha256: str, start_sha256: str | None) -> dict:
    """What makes a training the same one: its config, its sets, its starting checkpoint."""
    return {"config": cfg.to_dict(), "sets_sha256": sets_sha256,
            "start_checkpoint": {"ref": cfg.weights, "sha256": start_sha256}}


def differences(old: dict, new: dict) -> list[str]:
    """What differs between two identities, one phrase each."""
    out = [f"{k}: {old['config'].get(k)!r} -> {new['config'].get(k)!r}"
           for k in sorted(set(old["config"]) | set(new["config"]))
           if k != "weights" and old["config"].get(k) != new["config"].get(k)]
    if old["sets_sha256"] != new["sets_sha256"]:
        out.append(f"sets: content {old['sets_sha256'][:12]} -> {new['sets_sha256'][:12]} "
                   "(prepared again with other data or settings)")
    if old["start_checkpoint"]["sha256"] != new["start_checkpoint"]["sha256"]:
        out.append(f"starting checkpoint: {old['start_checkpoint']['ref']} -> "
                   f"{new['start_checkpoint']['ref']} (other weights)")
    return out


def check_existing(run_dir: str | os.PathLike, name: str, new: dict, replace: bool) -> bool:
    """True when ``name`` already holds this very training (a cache hit). Another training
    under that name is a ValueError naming what differs, unless ``replace``."""
    record = training_dir(run_dir, name) / RECORD
    if not record.is_file():
        return False
    old = store.read_json(record)
    diff = differences(old, new)
    if not diff:
        return True
    if replace:
        return False
    raise UsageError(f"training {name!r} in {Path(run_dir) / TRAIN} was trained differently: "
                     f"{'; '.join(diff)}. Give another --name, or --replace to overwrite it")


def publish(trained: str | os.PathLike, best_pt: str | os.PathLike, run_dir: str | os.PathLike,
            name: str, record: dict) -> Path:
    """A stored training result into RUN/train/NAME (copies, fer_core.store.publish) with its
    record."""
    out = training_dir(run_dir, name)
    before = store.read_json(out / RECORD) if (out / RECORD).is_file() else {}
    same = before.get("result") == record.get("result")
    if not same:
        # Replaced: what the old training left (a report the new one lacks, an evaluation
        # of the old model) would be read as the new one's.
        _retire([p for sub in (MODEL, REPORTS) if (out / sub).is_dir()
                 for p in (out / sub).iterdir()], keep=set())
    for suffix in (".pt", ".json"):
        store.publish(Path(best_pt).with_suffix(suffix), out / MODEL / f"best{suffix}", run_dir)
    for report in sorted((Path(trained) / REPORTS).iterdir()):
        if report.is_file():
            store.publish(report, out / REPORTS / report.name, run_dir)
    created = before.get("created") if same else None
    now = datetime.now(UTC).isoformat(timespec="seconds")
    store.write_json(out / RECORD, {"name": name, **record, "created": created or now})
    return out


def reports_home(run_dir: str | os.PathLike, checkpoint: str | os.PathLike) -> Path:
    """Where an evaluation of ``checkpoint`` writes: its training's folder when it is a
    named training's model (so the alias's reports stay the alias's), else the run."""
    path = Path(checkpoint).resolve()
    root = (Path(run_dir) / TRAIN).resolve()
    if path.name == "best.pt" and path.parent.name == MODEL and path.parents[2] == root:
        return path.parents[1]
    return Path(run_dir)


def promoted(run_dir: str | os.PathLike) -> str | None:
    path = Path(run_dir) / TRAIN / PROMOTED
    return store.read_json(path)["name"] if path.is_file() else None


def alias(run_dir: str | os.PathLike, latest: str) -> str:
    """RUN/model and RUN/reports as the promoted training's (else ``latest``'s); its name."""
    name = promoted(run_dir) or latest
    src = training_dir(run_dir, name)
    published = [Path(sub) / f.name for sub in (MODEL, REPORTS)
                 for f in sorted((src / sub).iterdir()) if f.is_file()]
    for rel in published:
        store.publish(src / rel, Path(run_dir) / rel, run_dir)
    # RUN/reports also holds the preparation's reports: only what the alias itself put
    # there before, and the new training lacks, is taken away.
    listed = Path(run_dir) / TRAIN / ALIASED
    before = store.read_json(listed) if listed.is_file() else []
    _retire([Path(run_dir) / rel for rel in before],
            keep={Path(run_dir) / rel for rel in published})
    store.write_json(listed, sorted(p.as_posix() for p in published))
    return name


def _retire(files: list[Path], keep: set[Path]) -> None:
    for f in files:
        if f not in keep and f.is_file():
            f.unlink()


def promote(run_dir: str | os.PathLike, name: str) -> Path:
    """Make ``name`` what RUN/model/best.pt is, until another is promoted."""
    if not (training_dir(run_dir, name) / RECORD).is_file():
        known = [r["name"] for r in records(run_dir)]
        raise UsageError(f"no training {name!r} in {Path(run_dir) / TRAIN}; trainings: {known}")
    store.write_json(Path(run_dir) / TRAIN / PROMOTED, {"name": name})
    alias(run_dir, name)
    return Path(run_dir) / MODEL / "best.pt"


def records(run_dir: str | os.PathLike) -> list[dict]:
    root = Path(run_dir) / TRAIN
    return [store.read_json(p) for p in sorted(root.glob(f"*/{RECORD}"))] if root.is_dir() \
        else []


def recipe(config: dict) -> str:
    """The config keys that differ from TrainConfig's defaults, ``key=value`` each."""
    defaults = TrainConfig().to_dict()
    return " ".join(f"{k}={v}" for k, v in config.items()
                    if k != "weights" and defaults.get(k) != v) or "defaults"


def index(run_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per training: name, recipe, starting checkpoint, epochs, wall time, accuracy
    and macro-F1 on val, test and every named subset, lineage; the alias marked."""
    current, rows = None, []
    # The alias is a copy (never a link: fer_core.store.publish), so it is found by content.
    alias_pt = Path(run_dir) / MODEL / "best.pt"
    alias_sha = store.file_sha256(alias_pt) if alias_pt.is_file() else None
    for r in records(run_dir):
        pt = training_dir(run_dir, r["name"]) / MODEL / "best.pt"
        if alias_sha and pt.is_file() and store.file_sha256(pt) == alias_sha:
            current = r["name"]
        metrics = split_metrics(store.read_json(training_dir(run_dir, r["name"]) / REPORTS
                                                / "metrics.json"))
        row = {"name": r["name"], "model": r["config"]["model"], "recipe": recipe(r["config"]),
               "start_checkpoint": r["start_checkpoint"]["ref"] or "scratch",
               "start_sha256": r["start_checkpoint"]["sha256"] or "",
               "best_epoch": r.get("best_epoch"), "epochs": r.get("last_epoch"),
               "wall_seconds": r.get("wall_seconds")}
        for split, m in metrics.items():
            row[f"{split}_accuracy"] = round(m["accuracy"], 4)
            row[f"{split}_macro_f1"] = round(m["macro_f1"], 4)
        rows.append({**row, "sets_sha256": r["sets_sha256"], "code": r.get("code", ""),
                     "created": r.get("created", "")})
    out = pd.DataFrame(rows)
    if len(out):
        out.insert(1, "alias", out["name"] == current)
    return out


def ranked(table: pd.DataFrame) -> pd.DataFrame:
    """Best first: by test accuracy when every training has one, else validation's."""
    if table.empty:
        return table
    key = "test_accuracy" if "test_accuracy" in table and table["test_accuracy"].notna().all() \
        else "val_accuracy"
    return table.sort_values([key, "name"], ascending=[False, True], ignore_index=True)


def write_index(run_dir: str | os.PathLike) -> pd.DataFrame:
    table = index(run_dir)
    store.write_csv(Path(run_dir) / TRAIN / INDEX, table)
    return table


def histories(run_dir: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """Each training's per-epoch history (reports/history.csv)."""
    out = {}
    for r in records(run_dir):
        path = training_dir(run_dir, r["name"]) / REPORTS / "history.csv"
        if path.is_file():
            out[r["name"]] = store.read_csv(path)
    return out
