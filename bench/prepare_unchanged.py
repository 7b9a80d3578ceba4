"""Unchanged behaviour across a code change: the same FER2013 subset prepared by ``fer
prepare`` at two revisions of the code (git worktrees), and every saved set and table
compared byte for byte.

    .venv/bin/python bench/prepare_unchanged.py --before REV [--after HEAD] [--per-class 120]

Writes bench/results/prepare_unchanged.json.
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure  # noqa: E402
from measure import REPO, run_cli, write_result  # noqa: E402

TAR = REPO.parent / "shared" / "data" / "fer2013.tar.gz"


def subset(dest: Path, per_class: int) -> Path:
    """The first per_class training and per_class // 4 test images of each class (archive
    order), and the PrivateTest list."""
    taken: dict[str, int] = {}
    with tarfile.open(TAR) as tar:
        for m in tar:
            parts = Path(m.name).parts
            if m.name.endswith("test_private.txt"):
                (dest / "lists").mkdir(parents=True, exist_ok=True)
                (dest / "lists" / "test_private.txt").write_bytes(tar.extractfile(m).read())
                continue
            if not m.isfile() or len(parts) != 4:
                continue
            key, limit = f"{parts[1]}/{parts[2]}", per_class if parts[1] == "train" \
                else per_class // 4
            if taken.get(key, 0) >= limit:
                continue
            taken[key] = taken.get(key, 0) + 1
            target = dest / "data" / parts[1] / parts[2] / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(m).read())
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git revision of the code before")
    ap.add_argument("--after", default="HEAD")
    ap.add_argument("--per-class", type=int, default=120)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "prepare_unchanged.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    subset(work, args.per_class)
    runs = {}
    for side, rev in (("before", args.before), ("after", args.after)):
        tree = work / f"code_{side}"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=REPO,
                       check=True, capture_output=True)
        try:
            cmd = [sys.executable, "-m", "fer_cli.main", "prepare", str(work / "data"),
                   "--out", str(work / f"run_{side}"), "--class-map", "fer2013",
                   "--subset", f"test_private={work / 'lists' / 'test_private.txt'}"]
            # The child imports fer_core from the worktree: `python -m` puts its working
            # folder first on sys.path, before the editable install.
            measure.CHILD_CWD[0] = tree
            run = run_cli(cmd, work / f"{side}.log")
            origin = subprocess.run([sys.executable, "-c", "import fer_core; print(fer_core"
                                     ".__file__)"], cwd=tree, capture_output=True, text=True)
            runs[side] = {"fer_core_from": origin.stdout.strip(), "revision": subprocess.run(
                ["git", "rev-parse", rev], cwd=REPO, capture_output=True, text=True
            ).stdout.strip(), "returncode": run["returncode"], "wall_seconds": run["wall_seconds"]}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO,
                           capture_output=True)
    a, b = work / "run_before", work / "run_after"
    files = sorted(str(p.relative_to(a)) for p in [*(a / "sets").rglob("*"),
                                                   *(a / "reports").glob("*.csv")]
                   if p.is_file())
    compared = {f: filecmp.cmp(a / f, b / f, shallow=False) if (b / f).is_file() else False
                for f in files}
    result = {"data": f"FER2013: {args.per_class} train and {args.per_class // 4} test images "
              "per class (archive order), PrivateTest named", "runs": runs,
              "files_compared": len(compared), "identical": sum(compared.values()),
              "differ": [f for f, same in compared.items() if not same], "by_file": compared}
    write_result(Path(args.out), result)
    print(f"{result['identical']} of {result['files_compared']} files identical; "
          f"differ: {result['differ']}")


if __name__ == "__main__":
    main()
