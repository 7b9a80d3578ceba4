"""A labels file as a dataset (``ingest.labels``): ``path`` and either ``label`` (a name,
or an integer code through ``label_names``) or one column per class of votes or
probabilities; optionally the split (``split_column`` mapped by ``split_map``), a ``group``
(subject or clip id) and a face box (``box_columns``).

Every row and every image is accounted for: a malformed row, a row whose file is missing,
an unknown class name or code, an unknown split value and an image the file does not list
each become a manifest row with the reason. A file that cannot be read at all (no header,
no ``path`` column, no label or vote columns) is one ValueError naming it.
Pure: the caller reads the file's text and lists the data folder (fer_core.prepare.ingest).
"""

from __future__ import annotations

import csv
import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from fer_core import UsageError
from fer_core.config.ingest import IngestConfig
from fer_core.config.labels import LabelsConfig
from fer_core.prepare import votes as votes_mod
from fer_core.prepare.manifest import REJECTED
from fer_core.store.images import BOX_SEP

SPLITS = ("train", "val", "test")
LINE_SEP = "#line="  # a malformed row's manifest path: the labels file's name and line
NOT_LISTED = "not in the labels file"


@dataclass(frozen=True, kw_only=True)
class Table:
    """The labels file's rows as text: ``frame`` (its columns and ``_line``, 1-based) and
    the malformed lines (``{"line", "reason"}``)."""

    frame: pd.DataFrame
    malformed: list[dict]


def read_table(text: str, name: str, columns: tuple[str, ...] | None = None) -> Table:
    """CSV or TSV with a header (a tab in the header line makes it TSV), or, given
    ``columns``, a headerless whitespace-separated list."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise UsageError(f"{name}: the labels file is empty")
    if columns is None:
        delimiter = "\t" if "\t" in lines[0][1] else ","
        fields = list(csv.reader([line for _, line in lines], delimiter=delimiter))
        header = tuple(f.strip() for f in fields[0])
        body = zip((n for n, _ in lines[1:]), fields[1:], strict=True)
    else:
        header, body = tuple(columns), ((n, line.split()) for n, line in lines)
    if "path" not in header:
        raise UsageError(f"{name}: no 'path' column (columns: {', '.join(header)}); a "
                         "headerless list needs its column names (--columns path,label)")
    good, malformed = [], []
    for n, row in body:
        if len(row) != len(header):
            malformed.append({"line": n, "reason": f"malformed row: {len(row)} fields, "
                              f"the header has {len(header)}"})
        else:
            good.append([*(f.strip() for f in row), n])
    return Table(frame=pd.DataFrame(good, columns=[*header, "_line"]), malformed=malformed)


def vote_columns(header: Iterable[str], cfg: LabelsConfig) -> tuple[str, ...]:
    """The class vote columns (in file order, then ``ignore_columns``); none when the
    file has a ``label`` column."""
    header = [c for c in header if c != "_line"]
    if "label" in header:
        return ()
    reserved = {"path", "group", cfg.split_column, *(cfg.box_columns or ()),
                *cfg.skip_columns, *cfg.ignore_columns}
    classes = [c for c in header if c not in reserved]
    missing = [c for c in cfg.ignore_columns if c not in header]
    if not classes or missing:
        why = f"ignored column(s) {missing} not in it" if missing else "no class columns"
        raise UsageError(f"{cfg.file}: neither a 'label' column nor vote columns ({why}; "
                         f"columns: {', '.join(header)})")
    return (*classes, *cfg.ignore_columns)


def check_file(text: str, cfg: LabelsConfig) -> None:
    """Fail at once (one line naming the file) when nothing of it can be read."""
    table = read_table(text, cfg.file, cfg.columns)
    vote_columns(table.frame.columns, cfg)
    wanted = [cfg.split_column, *(cfg.box_columns or ())]
    missing = [c for c in wanted if c and c not in table.frame.columns]
    if missing:
        raise UsageError(f"{cfg.file}: no column(s) {missing} (columns: "
                         f"{', '.join(c for c in table.frame.columns if c != '_line')})")


def labelled_rows(text: str, cfg: IngestConfig, present: Iterable[str],
                  images: Iterable[str]) -> tuple[list[dict], list[dict]]:
    """(rows settled here: rejected with their reason; rows to inspect: path, subset,
    class, group, votes, distribution). ``present``: every file under the data folder,
    relative; ``images``: those of them with an image extension."""
    labels = cfg.labels
    check_file(text, labels)
    table = read_table(text, labels.file, labels.columns)
    name = PurePosixPath(labels.file).name
    settled = [_rejected(f"{name}{LINE_SEP}{m['line']}", f"{m['reason']} (line {m['line']})")
               for m in table.malformed]
    columns = vote_columns(table.frame.columns, labels)
    read = _VoteReader(table.frame, columns, labels, cfg.class_map) if columns else None
    present, seen, todo, listed = set(present), {}, [], set()
    for i, row in enumerate(table.frame.to_dict("records")):
        line = row["_line"]
        path, problem = _manifest_path(row, labels)
        if problem:
            settled.append(_rejected(f"{name}{LINE_SEP}{line}", f"{problem} (line {line})"))
            continue
        file = path.split(BOX_SEP)[0]
        listed.add(file)
        out = {"path": path, "subset": "train", "group": row.get("group", "")}
        if path in seen:
            settled.append({**out, "status": REJECTED,
                            "reason": f"listed twice: line {line}, first at line {seen[path]}"})
            continue
        seen[path] = line
        reason = ""
        if labels.split_column:
            value = row[labels.split_column]
            out["subset"] = split_of(value, labels)
            if out["subset"] not in SPLITS:
                reason, out["subset"] = f"unknown split '{value}': line {line}", ""
        if not reason:
            got = read.label(i, out["subset"]) if read else _named_class(row["label"], labels)
            out.update(got)
            reason = out.pop("reason", "")
            if "class" in out and not read:
                out["class"] = cfg.class_map.get(out["class"], out["class"])
        if not reason and cfg.classes is not None and out["class"] not in cfg.classes:
            reason = f"class '{out['class']}' not selected"
        if not reason and file not in present:
            reason = f"no such file: listed at line {line}"
        if reason:
            settled.append({**out, "status": REJECTED, "reason": reason})
        else:
            todo.append(out)
    settled += [_rejected(p, NOT_LISTED) for p in sorted(set(images) - listed)
                if p != labels.file]
    return settled, todo


def split_of(value: str, cfg: LabelsConfig) -> str:
    """A split column's value mapped by ``split_map``: a key is the value itself or a
    pattern (``train_*=train``: RAF-DB's split is its file names' prefix, so
    ``--split-column path``); an unmapped value is kept (train, val, test pass)."""
    if value in cfg.split_map:
        return cfg.split_map[value]
    return next((v for k, v in cfg.split_map.items() if fnmatch.fnmatchcase(value, k)), value)


def _rejected(path: str, reason: str) -> dict:
    return {"path": path, "subset": "", "class": "", "status": REJECTED, "reason": reason}


def _manifest_path(row: dict, cfg: LabelsConfig) -> tuple[str, str]:
    """(the manifest path: the file, with its face box; or why the row has none)."""
    path = row["path"]
    if not path:
        return "", "malformed row: empty path"
    if not cfg.box_columns:
        return path, ""
    try:
        box = [int(round(float(row[c]))) for c in cfg.box_columns]
    except ValueError:
        return "", f"malformed row: face box {[row[c] for c in cfg.box_columns]} is not numbers"
    if box[2] <= 0 or box[3] <= 0:
        return "", f"malformed row: face box {box} has no area"
    return f"{path}{BOX_SEP}{','.join(map(str, box))}", ""


def _named_class(value: str, cfg: LabelsConfig) -> dict:
    if not value:
        return {"reason": "malformed row: empty label"}
    if not cfg.label_names:
        return {"class": value}
    if value in cfg.label_names:
        return {"class": cfg.label_names[value]}
    if value in cfg.label_names.values():
        return {"class": value}
    kind = "code" if value.lstrip("-").isdigit() else "class"
    return {"class": value, "reason": f"unknown {kind} '{value}' (known: "
            f"{', '.join(f'{k}={v}' for k, v in cfg.label_names.items())})"}


class _VoteReader:
    """Votes of each row, as numbers, and their label under the mode of the row's split."""

    def __init__(self, frame: pd.DataFrame, columns: tuple[str, ...], cfg: LabelsConfig,
                 class_map):
        self.columns, self.cfg = columns, cfg
        # The distribution is keyed by class name, as the manifest's ``class`` (mapped).
        self.classes = [class_map.get(c, c) for c in columns[:len(columns) -
                                                             len(cfg.ignore_columns)]]
        self.ignored = cfg.ignore_columns
        values = frame[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        self.bad = np.isnan(values).any(axis=1) | (values < 0).any(axis=1)
        self.values = values
        good = values[~self.bad]
        self.counts = (votes_mod.are_counts(good) if cfg.votes == "auto"
                       else cfg.votes == "counts")
        self.text = frame[list(columns)].to_numpy(str)

    def label(self, i: int, subset: str) -> dict:
        if self.bad[i]:
            bad = [f"{c}={v!r}" for c, v in zip(self.columns, self.text[i], strict=True)]
            return {"reason": f"malformed row: votes must be numbers >= 0 ({', '.join(bad)})"}
        row = self.values[i]
        raw = json.dumps(dict(zip(self.columns, row.tolist(), strict=True)))
        if not row.sum() > 0:
            return {"votes": raw, "reason": "no votes"}
        # FER+ reports accuracy on the majority labels: val and test are labelled by majority.
        mode = self.cfg.mode if subset == "train" else "majority"
        dist, reason = votes_mod.label_votes(row, self.ignored, mode, counts=self.counts)
        if dist is None:
            return {"votes": raw, "reason": reason}
        return {"votes": raw, "class": self.classes[int(np.argmax(dist))],
                "distribution": json.dumps(dict(zip(self.classes, dist.round(6).tolist(),
                                                    strict=True)))}


def label_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """(ours, for a file of votes) Which faces the votes label, per split as the file gives
    it: faces per class, and the faces without a label by reason (``no majority``,
    ``unknown``, ``not a face``, ``too spread``). Counted as labelled, whatever a later
    stage did with the face (a duplicate stays counted): the file's labels themselves."""
    rows = manifest[manifest["votes"] != ""]
    labelled = rows["distribution"] != ""
    what = rows["class"].where(labelled, rows["reason"].str.split(":").str[0])
    table = pd.crosstab(rows["subset"], what)
    reasons = sorted(set(what[~labelled]))
    classes = sorted(set(what[labelled]))
    order = [s for s in SPLITS if s in table.index]
    return table.reindex(index=order, columns=classes + reasons, fill_value=0) \
        .rename_axis(index="split", columns=None).reset_index()
