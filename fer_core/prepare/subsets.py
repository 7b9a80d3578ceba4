"""Named test subsets: a list file names some held-out images (FER2013's PrivateTest).

A subset is saved as row indices into its parent split (``test``), never as a second copy
of the pixels. Everything here is pure: the list's text and the manifest come in, the rows
and an account of every list entry that matched no kept test image go out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core import UsageError
from fer_core.config.subsets import PARENT, SubsetSpec
from fer_core.prepare.manifest import KEPT

RESERVED = ("train", "val", "test")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UsageError(f"subset name {name!r}: use letters, digits, '_', '-', '.'")
    if name in RESERVED:
        raise UsageError(f"subset name {name!r} is a split's name; choose another")
    return name


def parse_option(option: str) -> tuple[str, str]:
    """``NAME=LIST`` (the command line's ``--subset``) -> (name, list path)."""
    name, sep, path = option.partition("=")
    if not sep or not path.strip():
        raise UsageError(f"--subset {option!r}: expected NAME=LIST_FILE, "
                         "e.g. test_private=fer2013/test_private.txt")
    return check_name(name.strip()), path.strip()


def specs_from(lists: Mapping[str, str], data_root: str | Path) -> tuple[SubsetSpec, ...]:
    """Specs from ``{name: list path}``; a relative path is taken relative to the data
    folder, so one config works for any copy of the data."""
    out = []
    for name, path in lists.items():
        p = Path(path).expanduser()
        out.append(SubsetSpec(name=check_name(str(name)),
                              list_path=str(p if p.is_absolute() else Path(data_root) / p)))
    return tuple(out)


def parse_list(text: str) -> tuple[str, ...]:
    """The entries of a list file: one relative path a line, as the manifest writes paths
    (``/`` separators, no leading ``./``); blank lines and ``#`` comments skipped."""
    entries = []
    for line in text.splitlines():
        line = line.strip().replace("\\", "/")
        if not line or line.startswith("#"):
            continue
        while line.startswith("./"):
            line = line[2:]
        entries.append(line)
    return tuple(entries)


@dataclass(frozen=True, kw_only=True)
class SubsetMatch:
    rows: np.ndarray  # int64, ascending: rows of the parent split's saved arrays
    entries: int  # lines of the list (blank lines and comments aside)
    repeated: int  # entries listed more than once (counted once)
    unmatched: dict[str, int]  # why an entry matched no kept image of the parent -> count
    examples: dict[str, str]  # one entry per reason


def match(entries: Sequence[str], parent_paths: Sequence[str], manifest: pd.DataFrame | None,
          *, parent: str = PARENT) -> SubsetMatch:
    """Rows of ``parent_paths`` (the parent split's saved rows, in order) that ``entries``
    list, and why each other entry matched nothing (from the manifest when given)."""
    unique = list(dict.fromkeys(entries))
    position = {p: i for i, p in enumerate(parent_paths)}
    rows = np.array(sorted(position[e] for e in unique if e in position), dtype=np.int64)
    missing = [e for e in unique if e not in position]
    why = _reasons(missing, manifest, parent)
    unmatched = Counter(why.values())
    examples = {}
    for entry, reason in why.items():
        examples.setdefault(reason, entry)
    return SubsetMatch(rows=rows, entries=len(entries), repeated=len(entries) - len(unique),
                       unmatched=dict(sorted(unmatched.items())), examples=examples)


def _reasons(missing: Iterable[str], manifest: pd.DataFrame | None, parent: str) -> dict[str, str]:
    rows = ({} if manifest is None else
            {p: r for p, r in zip(manifest["path"], manifest.to_dict("records"), strict=True)})
    out = {}
    for entry in missing:
        r = rows.get(entry)
        if r is None:
            out[entry] = "not in the data"
        elif r["status"] != KEPT:
            kind = str(r["reason"]).split(":")[0].strip()
            out[entry] = f"{r['status']}" + (f" ({kind})" if kind else "")
        else:
            out[entry] = f"in the {r['split'] or 'no'} split, not {parent}"
    return out


def summary(m: SubsetMatch) -> dict:
    """What sets/meta.json records of a match (beside the index file)."""
    return {"entries": m.entries, "n": int(len(m.rows)), "repeated": m.repeated,
            "unmatched": m.unmatched, "unmatched_examples": m.examples}


def check_matched(spec: SubsetSpec, m: SubsetMatch, parent_paths: Sequence[str]) -> None:
    """A list that matches nothing is a mistake (another dataset, or paths not relative to
    the data folder), not a subset of size 0."""
    if len(m.rows):
        return
    if not len(parent_paths):
        raise UsageError(f"subset {spec.name}: the data has no kept '{spec.parent}' images "
                         f"to take it from")
    listed = next(iter(m.examples.values()), None)
    raise UsageError(f"subset {spec.name}: none of the {m.entries} entries of "
                     f"{spec.list_path} is a kept {spec.parent} image (e.g. {listed!r}: "
                     f"{dict(m.unmatched)}); entries are paths relative to the data folder, "
                     f"like {parent_paths[0]!r}")


def warnings(meta: Mapping) -> list[str]:
    """One line per subset of a sets/meta.json whose list named images it does not hold."""
    lines = []
    for name, s in (meta.get("subsets") or {}).items():
        lost = sum(s["unmatched"].values())
        if not lost:
            continue
        why = "; ".join(f"{n} {reason} (e.g. {s['unmatched_examples'][reason]})"
                        for reason, n in s["unmatched"].items())
        lines.append(f"subset {name}: {lost} of the {s['entries'] - s['repeated']} images "
                     f"listed in {s['list']} match no kept {s['parent']} image and are left "
                     f"out ({s['n']} kept): {why}")
    return lines


def all_to_test(manifest: pd.DataFrame) -> pd.DataFrame:
    """Every file of the data in the held-out ``test`` subset: a dataset that is only scored
    (cross-dataset evaluation) is one test set, whatever its train/test layout said."""
    return manifest.assign(subset=PARENT)
