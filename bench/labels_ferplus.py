"""FER+ from the two shared files, as users run it, against the data README's label counts.

``fer prepare fer2013/ --labels ferplus_votes.csv --preset ferplus --no-align --augment none``
on all of FER2013 (alignment and augmentation do not change which faces the votes label),
then its ``reports/labels.csv`` (faces per class and per reason, per split) compared cell by
cell with the table "Labels under FER+'s own majority rule" of ``../shared/data/README.md``
(Training -> train, PublicTest -> val, PrivateTest -> test). Also recorded: Table 2 (the
split as given), the manifest's status counts, that no val/test face was dropped as a
duplicate, and the saved sets' sizes. Usage::

    .venv/bin/python bench/labels_ferplus.py                  # extracts the tarball once
    .venv/bin/python bench/labels_ferplus.py --data bench/work/fer2013 --mode crossentropy
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from measure import run_cli, write_result  # noqa: E402 - bench/ is on sys.path
from prepare_fer2013 import extract  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
README_COLUMNS = {"NF": "not a face"}  # the README's column -> labels.csv's


def readme_table(readme: Path) -> pd.DataFrame:
    """The README's FER+ majority counts: index split, columns as labels.csv names them."""
    lines = [ln for ln in readme.read_text().splitlines() if ln.startswith("| ")]
    head = next(i for i, ln in enumerate(lines) if ln.startswith("| usage |"))
    cols = [c.strip() for c in lines[head].strip("|").split("|")]
    rows = []
    for ln in lines[head + 1:]:  # (the |---| line is not among them)
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if cells[0] not in USAGE:
            break
        rows.append(cells)
    table = pd.DataFrame(rows, columns=cols).set_index("usage")
    table = table.rename(index=USAGE).astype(int)
    return table.rename(columns=lambda c: README_COLUMNS.get(c, c.capitalize()
                                                              if c not in ("no majority",
                                                                           "unknown") else c))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="FER2013's folder (default: extract the tarball)")
    ap.add_argument("--votes", type=Path, default=SHARED / "ferplus_votes.csv")
    ap.add_argument("--readme", type=Path, default=SHARED / "README.md")
    ap.add_argument("--mode", default="majority", choices=("majority", "probability",
                                                            "crossentropy"))
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results" /
                    "labels_ferplus.json")
    args = ap.parse_args()
    data = args.data or extract(SHARED / "fer2013.tar.gz", args.work, None)
    run = args.work / f"labels_ferplus_{args.mode}"
    shutil.rmtree(run, ignore_errors=True)
    cmd = [str(REPO / ".venv" / "bin" / "fer"), "prepare", str(data), "--labels",
           str(args.votes), "--preset", "ferplus", "--labels-mode", args.mode, "--no-align",
           "--augment", "none", "--out", str(run)]
    args.work.mkdir(parents=True, exist_ok=True)
    measured = run_cli(cmd, args.work / f"labels_ferplus_{args.mode}.log")
    if measured["returncode"]:
        print("\n".join(measured["log_tail"]))
        return 1
    got = pd.read_csv(run / "reports" / "labels.csv").set_index("split")
    want = readme_table(args.readme)
    record = {"prepare": measured, "mode": args.mode, "labels_csv": got.reset_index()
              .to_dict("records"), "readme_table": want.reset_index().to_dict("records")}
    # The README's table is FER+'s majority rule; the other modes differ on train only.
    compare = want if args.mode == "majority" else want.loc[["val", "test"]]
    cells = {f"{s}/{c}": [int(got.at[s, c]) if c in got.columns else 0, int(compare.at[s, c])]
             for s in compare.index for c in compare.columns}
    diff = {k: v for k, v in cells.items() if v[0] != v[1]}
    record |= {"cells_compared": len(cells), "cells_equal": len(cells) - len(diff),
               "differences": diff, "equal": not diff}
    m = pd.read_parquet(run / "manifest.parquet")
    record["manifest_status"] = m["status"].value_counts().to_dict()
    record["held_out_duplicates"] = int(((m["status"] == "duplicate")
                                         & m["subset"].isin(["val", "test"])).sum())
    record["table2_split"] = pd.read_csv(run / "reports" / "split.csv").to_dict("records")
    record["sets"] = json.loads((run / "prepare.json").read_text())["sets"]
    write_result(args.results, record)
    print(f"labels.csv vs README: {record['cells_equal']} of {len(cells)} cells equal"
          + ("" if not diff else f"; differ: {diff}"))
    print(f"held-out faces dropped as duplicates: {record['held_out_duplicates']}; "
          f"sets: {record['sets']}; wrote {args.results}")
    return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
