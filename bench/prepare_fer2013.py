"""Data preparation as users run it: ``fer prepare DATA --out RUN`` on all of FER2013.

One measure: the command in a subprocess, with a fresh run folder and store (nothing
cached), through ``measure.run_cli``: wall time, the peak RSS of the largest process of its
tree (``/usr/bin/time -v``) and the tree's summed RSS sampled from /proc, and the CPU share
other processes took meanwhile. Beside it, what the run reported about itself:

- per stage: the flow's own ``stages`` table (the Prefect artifact every ``fer prepare``
  ends with: ran or cached, task runs, seconds summed over a stage's task runs: the
  ``align-batch`` runs overlap, ``align.workers`` at a time), read from the embedded
  server's database (sqlite, read only), with the wall time of the ``prepare`` flow run and
  of its ``align`` sub-flow;
- the share aligned per split (``reports/alignment.csv``, Table 3), the manifest's status
  counts, the saved sets (``prepare.json``), near-duplicate pairs by split and the
  warnings (sharpness, subsets);
- the wall time scaled linearly to 43,435 images against issue 10's targets (<= 6 min on
  2 cores, peak RSS <= 3 GB).

A rerun of the same command is ``bench/rerun_fer2013.py``'s measure; the align stage against
bare batched MTCNN is ``bench/align_vs_mtcnn.py``'s. Usage::

    .venv/bin/python bench/prepare_fer2013.py                   # extracts the tarball once
    .venv/bin/python bench/prepare_fer2013.py --data bench/work/fer2013
    .venv/bin/python bench/prepare_fer2013.py --per-class 10 --work /tmp/pf --results /tmp/pf.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from measure import (  # noqa: E402 - bench/ is on sys.path when run as a script
    CHILD_CWD,
    CpuWatch,
    command_line,
    machine_info,
    rate,
    run_cli,
    shown_command,
    write_result,
)

TARBALL = Path("/work/shared/data/fer2013.tar.gz")
MARKER = ".prepare_bench"  # a run folder this script made (and may wipe)
TARGET_IMAGES = 43_435  # issue 10: a set of this size prepared in <= 6 min on 2 cores, <= 3 GB
TARGET_WALL_S = 6 * 60
TARGET_RSS_BYTES = 3 * 1000**3
CODE_PACKAGES = ("fer_core", "tasks", "flows", "fer_cli")


# ---------------------------------------------------------------- the data


def extract(tarball: Path, dest: Path, per_class: int | None) -> Path:
    """FER2013 from the tarball under ``dest`` (once): all of it, or the first ``per_class``
    files (archive order) of each ``{train,test}/<class>`` folder, read straight from the
    archive. Returns the data folder."""
    name = "fer2013" if not per_class else f"fer2013_per_class{per_class}"
    data, done = dest / name, dest / f"{name}.extracted"  # beside DATA: ingest would list it
    if done.exists() and data.is_dir():
        return data
    shutil.rmtree(data, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    print(f"extracting {tarball} -> {data}", flush=True)
    taken: dict[str, int] = {}
    with tarfile.open(tarball) as tar:
        for member in tar:
            parts = Path(member.name).parts  # fer2013/<subset>/<class>/<file>
            if not member.isfile() or len(parts) != 4:
                continue
            key = f"{parts[1]}/{parts[2]}"
            if per_class and taken.get(key, 0) >= per_class:
                continue
            taken[key] = taken.get(key, 0) + 1
            target = data / parts[1] / parts[2] / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
    done.write_text(f"{tarball}, per class: {per_class or 'all'}\n")
    return data


def subset(data: Path, per_class: int, dest: Path) -> Path:
    """The first ``per_class`` files (sorted) of each class folder of ``data``, hard-linked."""
    out = dest / f"{data.name}_per_class{per_class}"
    shutil.rmtree(out, ignore_errors=True)
    for folder in sorted(p for p in data.glob("*/*") if p.is_dir()):
        target = out / folder.relative_to(data)
        target.mkdir(parents=True)
        for f in sorted(folder.iterdir())[:per_class]:
            try:
                os.link(f, target / f.name)
            except OSError:
                shutil.copyfile(f, target / f.name)
    return out


def count_files(data: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in data.rglob("*"):
        if f.is_file():
            top = f.relative_to(data).parts[0]
            counts[top] = counts.get(top, 0) + 1
    return {"total": sum(counts.values()), **dict(sorted(counts.items()))}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def fresh_dir(path: Path) -> Path:
    """An empty folder; an existing one is wiped only if this script made it."""
    if path.exists():
        if not (path / MARKER).exists():
            raise SystemExit(f"{path} exists and was not made by this benchmark; "
                             "remove it or pick another --out")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by bench/prepare_fer2013.py\n")
    return path


# ---------------------------------------------------------------- the code that runs


def code_files(root: Path) -> list[Path]:
    return sorted(p for pkg in CODE_PACKAGES for p in (root / pkg).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def code_hash(root: Path) -> str:
    """sha256 over the pipeline's packages (relative path and content of every file)."""
    h = hashlib.sha256()
    for p in code_files(root):
        h.update(f"{p.relative_to(root).as_posix()}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def snapshot_code(dest: Path) -> Path:
    """Copy the pipeline's packages as they are now; the ``fer`` subprocess imports the copy
    (its working folder and PYTHONPATH), so edits to the tree during an hour-long run
    cannot mix two versions of the pipeline in one result."""
    for p in code_files(REPO):
        target = dest / p.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(dest), *filter(None, [os.environ.get("PYTHONPATH")])])
    CHILD_CWD[0] = dest
    return dest


def fer_imports(code_root: Path) -> list[str]:
    """Where the ``fer`` subprocess's packages come from (its sys.path, from its folder)."""
    return subprocess.run(
        [sys.executable, "-c", "import fer_cli.main, flows.prepare, fer_core; print(fer_cli."
         "main.__file__, flows.prepare.__file__, fer_core.__file__)"], cwd=code_root,
        capture_output=True, text=True).stdout.split()


# ---------------------------------------------------------------- what the run reported


def prefect_database(env: dict[str, str]) -> Path | None:
    """The sqlite file of the embedded server the ``fer`` run used (None: another server)."""
    if env.get("PREFECT_API_URL") or os.environ.get("PREFECT_API_URL"):
        return None
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    url = url.get_secret_value() if hasattr(url, "get_secret_value") else str(url)
    if not url or not url.startswith("sqlite"):
        return None
    return Path(url.split("///", 1)[1])


def flow_record(db: Path | None, out: Path, started: dt.datetime) -> dict:
    """The ``prepare`` flow run of ``--out out`` started after ``started`` (UTC): its wall
    time, its ``align`` sub-flow's, and its ``stages`` table artifact."""
    if db is None or not db.exists():
        return {"stages": None, "why": f"no local Prefect database ({db})"}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = con.execute(
            "SELECT fr.id, fr.start_time, fr.end_time, fr.state_name FROM flow_run fr "
            "JOIN flow f ON f.id = fr.flow_id WHERE f.name = 'prepare' AND "
            "json_extract(fr.parameters, '$.out') = ? AND fr.created >= ? "
            "ORDER BY fr.created DESC LIMIT 1",
            (str(out), started.strftime("%Y-%m-%d %H:%M:%S"))).fetchone()
        if row is None:
            return {"stages": None, "why": f"no prepare flow run of {out} in {db}"}
        run_id, start, end, state = row
        align = con.execute(
            "SELECT fr.start_time, fr.end_time FROM flow_run fr JOIN flow f ON f.id = "
            "fr.flow_id WHERE f.name = 'align' AND fr.parent_task_run_id IN "
            "(SELECT id FROM task_run WHERE flow_run_id = ?)", (run_id,)).fetchone()
        art = con.execute("SELECT data FROM artifact WHERE flow_run_id = ? AND key = 'stages' "
                          "ORDER BY created DESC LIMIT 1", (run_id,)).fetchone()
    finally:
        con.close()
    stages = None
    if art is not None:
        stages = json.loads(art[0])
        stages = json.loads(stages) if isinstance(stages, str) else stages
    return {"flow_run_id": run_id, "state": state, "flow_seconds": seconds(start, end),
            "align_subflow_seconds": seconds(*align) if align else None,
            "stages": stages, "stages_from": f"the 'stages' table artifact of the flow run, {db}"}


def seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    t0, t1 = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (start, end))
    return round((t1 - t0).total_seconds(), 2)


def run_outputs(run: Path) -> dict:
    """The run's own figures, from the files it wrote."""
    import pandas as pd

    out: dict = {}
    result = run / "prepare.json"
    if result.exists():
        meta = json.loads(result.read_text())
        out |= {"classes": meta.get("classes"), "sets": meta.get("sets"),
                "warnings": meta.get("warnings"), "failed_batches": meta.get("failed_batches")}
    manifest = run / "manifest.parquet"
    if manifest.exists():
        m = pd.read_parquet(manifest, columns=["status"])
        out["status_counts"] = {k: int(v) for k, v in m["status"].value_counts().items()}
    for name, key in (("alignment.csv", "alignment"),
                      ("near_duplicates_by_split.csv", "near_duplicates_by_split")):
        path = run / "reports" / name
        if path.exists():
            out[key] = pd.read_csv(path).to_dict("records")
    store = run / "store"
    out["store_bytes"] = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    return out


def aligned_share(table: list[dict]) -> dict[str, float]:
    """Per split and over all, the share of images aligned, from Table 3's Total row."""
    total = next((r for r in table if r.get("class") == "Total"), None)
    if total is None:
        return {}
    counts = {k[:-len("_aligned")]: (v, total.get(k.replace("_aligned", "_not_aligned"), 0))
              for k, v in total.items() if k.endswith("_aligned") and "_not_" not in k}
    out = {s: round(a / (a + b), 4) for s, (a, b) in counts.items() if a + b}
    a, b = (sum(c[i] for c in counts.values()) for i in (0, 1))
    return {**out, "all": round(a / (a + b), 4)} if a + b else out


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="an extracted FER2013 folder ({train,test}/"
                   "<class>/*.jpg); default: --tarball extracted once under --work")
    p.add_argument("--tarball", type=Path, default=TARBALL)
    p.add_argument("--per-class", type=int, metavar="N",
                   help="smoke run: only the first N files of each class folder")
    p.add_argument("--work", type=Path, default=HERE / "work", help="scratch (git-ignored)")
    p.add_argument("--out", type=Path, help="the benchmark's folder (default "
                   "WORK/prepare_run: holds run/, the log, code/); wiped at start")
    p.add_argument("--results", type=Path, default=HERE / "results" / "prepare_fer2013.json")
    p.add_argument("--fer-args", default="", help="more arguments for fer prepare, one "
                   "string (e.g. '--class-map fer2013')")
    p.add_argument("--cli-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the fer run (e.g. OMP_NUM_THREADS=1)")
    p.add_argument("--code", choices=("snapshot", "live"), default="snapshot",
                   help="snapshot (default): run a copy of the pipeline's packages made at "
                   "start; live: the working tree as it changes")
    p.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = p.parse_args(argv)

    if args.data is None:
        data = extract(args.tarball, args.work, args.per_class)
        source = {"tarball": str(args.tarball), "tarball_sha256": file_sha256(args.tarball)}
    else:
        data = subset(args.data, args.per_class, args.work) if args.per_class else args.data
        source = {"data": str(args.data)}
    data = data.resolve()
    bench = fresh_dir((args.out or args.work / "prepare_run").resolve())
    code_root = snapshot_code(bench / "code") if args.code == "snapshot" else REPO
    run = bench / "run"
    cmd = [str(Path(sys.executable).parent / "fer"), "prepare", str(data), "--out", str(run),
           *shlex.split(args.fer_args)]
    env = dict(kv.split("=", 1) for kv in args.cli_env)
    files = count_files(data)
    record: dict = {
        "benchmark": "fer prepare on FER2013, fresh (bench/prepare_fer2013.py)",
        "command": command_line() if argv is None else shown_command([sys.executable, __file__,
                                                                   *argv]),
        "machine": machine_info(), "note": args.note,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code": {"root": str(code_root), "packages_sha256": code_hash(code_root),
                 "repo_git_head": git("rev-parse", "HEAD"),
                 "repo_git_dirty_files": len(git("status", "--porcelain").splitlines()),
                 "fer_subprocess_imports": fer_imports(code_root)},
        "data": {"path": str(data), "per_class": args.per_class, **source, "files": files},
        "targets": {"images": TARGET_IMAGES, "wall_seconds": TARGET_WALL_S,
                    "peak_rss_bytes": TARGET_RSS_BYTES},
    }
    print(f"data: {data} ({files['total']} files); run: {run}", flush=True)
    started = dt.datetime.now(dt.UTC)
    watch = CpuWatch()
    result = run_cli(cmd, bench / "prepare.log", env)
    result["cpu"] = watch.result()
    record["prepare"] = result
    record["flow"] = flow_record(prefect_database(env), run, started - dt.timedelta(seconds=2))
    record["run"] = run_outputs(run)
    wall, n = result["wall_seconds"], files["total"]
    scaled = round(wall * TARGET_IMAGES / n, 1) if n else None
    ok = result["returncode"] == 0
    record["figures"] = {"images_per_s": rate(n, wall), "wall_scaled_to_target_images": scaled,
                         "outside_the_flow_seconds": round(wall - record["flow"]["flow_seconds"],
                                                           2)
                         if record["flow"].get("flow_seconds") else None,
                         "aligned_share": aligned_share(record["run"].get("alignment", []))}
    record["pass"] = {"wall_scaled_le_6min": bool(ok and scaled is not None
                                                  and scaled <= TARGET_WALL_S),
                      "peak_rss_le_3GB": bool(ok and result["peak_rss_bytes"]
                                              <= TARGET_RSS_BYTES)}
    record["code"]["unchanged_during_run"] = code_hash(code_root) == \
        record["code"]["packages_sha256"]
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_result(args.results, record)
    print(f"fer prepare: exit {result['returncode']}, {wall} s wall ({scaled} s scaled to "
          f"{TARGET_IMAGES} images), peak RSS {result['peak_rss_mib']} MiB", flush=True)
    for row in record["flow"].get("stages") or []:
        print(f"  {row['stage']:<20} {row['status']:<10} {row['runs']:>5} runs "
              f"{row['seconds']:>9.2f} s", flush=True)
    for row in record["run"].get("alignment", []):
        print(f"  alignment: {row}", flush=True)
    print(f"results: {args.results}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
