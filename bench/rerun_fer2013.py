"""Benchmark of ``fer prepare`` reruns (issue 11), through the command users run.

On a copy of the data under bench/work (the original is never touched), each step is
``fer prepare DATA --out RUN --class-map fer2013`` in a subprocess (bench/measure.run_cli:
wall time, peak RSS):

1. fresh: a new run folder (its store inside it);
2. unchanged: the same command again (embedded Prefect server);
3. unchanged, server: again, against a running ``prefect server start`` (PREFECT_API_URL);
4. edit: one training image's pixels changed (flipped, same name), then the command again;
   then a fresh run on the edited data in a new folder, and the two runs' outputs compared
   byte for byte (sets/, reports/, manifest.parquet);
5. add: a new training image (a flipped copy of one from another class folder), likewise;
6. remove: one training image deleted, likewise.

With ``--repeat N`` each step runs N times (a changed step changes another image each
time) and its figures are the median run's, with every run's wall time beside them. The
fresh figure is the median of every fresh run, those on the changed data included (the
oracles of steps 4-6: one image apart, the same work); ``--fresh-repeat`` sets how many
run on the data as it is.
For each step, what each task run did (``Cached``, ``Completed``), from its log. For each
rerun: how many sealed stage results were made or resealed (0 for an unchanged
rerun) and, for the unchanged ones, that every output byte stayed the same. Results go to
bench/results/rerun_fer2013.json, with the machine and each exact command. Usage::

    .venv/bin/python bench/rerun_fer2013.py                     # all of FER2013
    .venv/bin/python bench/rerun_fer2013.py --repeat 3          # medians of 3 per step
    .venv/bin/python bench/rerun_fer2013.py --repeat 3 --fresh-repeat 1   # 4 fresh runs, not 6
    .venv/bin/python bench/rerun_fer2013.py --data /tmp/sub --results /tmp/rerun.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from measure import machine_info, run_cli, shown_command, shown_path  # noqa: E402

FER = str(HERE.parent / ".venv" / "bin" / "fer")
PREFECT = str(HERE.parent / ".venv" / "bin" / "prefect")


def digest(run: Path) -> dict[str, str]:
    files = [run / "manifest.parquet",
             *sorted(p for d in ("sets", "reports") for p in (run / d).rglob("*") if p.is_file())]
    return {p.relative_to(run).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def sealed(store: Path) -> dict[str, int]:
    return {p.parent.relative_to(store).as_posix(): p.stat().st_mtime_ns
            for p in store.rglob("_done.json")}


def resealed(before: dict, after: dict) -> list[str]:
    return sorted(k for k, v in after.items() if before.get(k) != v)


def prepare(data: Path, run: Path, logs: Path, name: str, env: dict | None = None) -> dict:
    out = run_cli([FER, "prepare", str(data), "--out", str(run), "--class-map", "fer2013"],
                  logs / f"{name}.log", env)
    if out["returncode"] != 0:
        raise SystemExit(f"{name}: exit {out['returncode']}\n" + "\n".join(out["log_tail"]))
    return out


def stages(run_log: Path) -> list[dict]:
    """What each task run did, from the run's log (Prefect logs each task run's end):
    ``{"run": task run name, "state": "Cached", "Completed", ...}`` in the order they ended.
    A stage's runs start with its name (the ``stages`` table groups them so)."""
    rows = []
    for line in run_log.read_text(errors="replace").splitlines():
        if "Finished in state" in line and "Task run" in line:
            text = line.split("|", 2)[-1].strip()
            name = text.split("'")[1] if text.count("'") >= 2 else text
            state = text.split("Finished in state", 1)[1].strip().split("(")[0]
            rows.append({"run": name, "state": state})
    return rows


def stage_summary(rows: list[dict]) -> dict[str, int]:
    """How many task runs ended in each state (Cached, Completed, ...)."""
    out: dict[str, int] = {}
    for r in rows:
        out[r["state"]] = out.get(r["state"], 0) + 1
    return out


def median_step(entries: list[dict]) -> dict:
    """The run of median wall time, with every run's wall time and peak RSS beside it."""
    mid = sorted(entries, key=lambda e: e["wall_seconds"])[(len(entries) - 1) // 2]
    return {**mid, "repeats": len(entries),
            "wall_seconds": round(statistics.median(e["wall_seconds"] for e in entries), 2),
            "wall_seconds_each": [e["wall_seconds"] for e in entries],
            "peak_rss_mib_each": [e.get("peak_rss_mib") for e in entries]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(logs: Path, port: int = 0) -> tuple[subprocess.Popen, str, list[str]]:
    port = port or free_port()
    cmd = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = open(logs / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url, cmd
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("prefect server did not start; see " + str(logs / "server.log"))


def change(data: Path, kind: str, n: int = 0) -> str:
    """The ``n``-th change of this kind (each repetition changes another image)."""
    import cv2

    train = sorted((data / "train" / "happy").glob("*.jpg"))
    if kind == "edit":
        victim = train[(len(train) // 2 + n) % len(train)]
        cv2.imwrite(str(victim), cv2.flip(cv2.imread(str(victim)), 1))
        return f"flipped the pixels of {victim.relative_to(data)} (same name)"
    if kind == "add":
        sad = sorted((data / "train" / "sad").glob("*.jpg"))
        src = sad[(7 + n) % len(sad)]
        dst = data / "train" / "sad" / f"zz_bench_added_{n}.jpg"
        cv2.imwrite(str(dst), cv2.flip(cv2.imread(str(src)), 1))
        return f"added {dst.relative_to(data)} (a flipped copy of {src.name})"
    victim = train[(len(train) // 3 + n) % len(train)]
    victim.unlink()
    return f"removed {victim.relative_to(data)}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(HERE / "work" / "fer2013"))
    p.add_argument("--work", default=str(HERE / "work" / "rerun"))
    p.add_argument("--results", default=str(HERE / "results" / "rerun_fer2013.json"))
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per step, each figure their median (a changed step changes "
                        "another image each time; its outputs are compared with a fresh run "
                        "after the first change)")
    p.add_argument("--fresh-repeat", type=int,
                   help="fresh runs on the data as it is (default: --repeat); the fresh "
                        "runs on changed data that each changed step is compared with "
                        "count among the fresh figures too")
    p.add_argument("--server-port", type=int, default=0,
                   help="port of the `prefect server start` step (default: a free one)")
    p.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    logs = work / "logs"
    logs.mkdir(parents=True)
    data = work / "data"
    shutil.copytree(args.data, data)
    record: dict = {"command": shown_command([sys.executable, *sys.argv]),
                    "machine": machine_info(), "data": shown_path(args.data),
                    "images": sum(1 for p in data.rglob("*") if p.is_file()),
                    "repeat": args.repeat, "note": args.note, "steps": {}}
    results = Path(args.results)
    n = args.repeat

    def save(name: str, entry: dict) -> None:
        record["steps"][name] = entry
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(record, indent=2) + "\n")

    def named(step: str, i: int) -> str:
        return step if i == 0 else f"{step}_{i + 1}"

    run = work / "run"
    runs = []
    for i in range(args.fresh_repeat or n):  # the first fresh run's folder is rerun below
        folder = run if i == 0 else work / f"fresh_{i + 1}"
        runs.append(prepare(data, folder, logs, named("fresh", i)))
        if i:
            shutil.rmtree(folder)
    fresh_runs = runs
    fresh = median_step(runs)
    save("fresh", {**fresh, "tasks": stage_summary(stages(logs / "fresh.log"))})
    outputs, seals = digest(run), sealed(run / "store")

    def rerun(step: str, env: dict | None = None) -> dict:
        runs = []
        for i in range(n):
            runs.append({**prepare(data, run, logs, named(step, i), env),
                         "tasks": stages(logs / f"{named(step, i)}.log")})
        out = median_step(runs)
        return {**out, "task_states": stage_summary(out["tasks"]),
                "resealed_results": resealed(seals, sealed(run / "store")),
                "outputs_identical": digest(run) == outputs,
                "fraction_of_fresh": round(out["wall_seconds"] / fresh["wall_seconds"], 3)}

    save("unchanged", rerun("unchanged"))
    server, url, server_cmd = start_server(logs, args.server_port)
    try:
        prepare(data, run, logs, "unchanged_server_warmup", {"PREFECT_API_URL": url})
        step = rerun("unchanged_server", {"PREFECT_API_URL": url})
    finally:
        server.terminate()
        server.wait(30)
    save("unchanged_server", {**step, "server_command": shown_command(server_cmd),
                              "note": "after a warm-up run against the same server (its "
                              "log: logs/unchanged_server_warmup.log)"})

    for kind in ("edit", "add", "remove"):
        runs, checked = [], {}
        for i in range(n):
            what = change(data, kind, i)
            before = sealed(run / "store")
            step = prepare(data, run, logs, named(kind, i))
            runs.append({**step, "change": what, "tasks": stages(logs / f"{named(kind, i)}.log"),
                         "resealed_results": resealed(before, sealed(run / "store"))})
            if i == 0:  # the oracle: a fresh run on the changed data
                ref_run = work / f"fresh_after_{kind}"
                ref = prepare(data, ref_run, logs, f"fresh_after_{kind}")
                fresh_runs = [*fresh_runs, {**ref, "data": f"after {what}"}]
                mine, theirs = digest(run), digest(ref_run)
                checked = {"fresh_on_changed_data": ref,
                           "outputs_identical_to_fresh": mine == theirs,
                           "differing_outputs": sorted(k for k in set(mine) | set(theirs)
                                                       if mine.get(k) != theirs.get(k))}
                shutil.rmtree(ref_run)
        out = median_step(runs)
        save(kind, {**out, **checked, "task_states": stage_summary(out["tasks"]),
                    "fraction_of_fresh": round(out["wall_seconds"] / fresh["wall_seconds"], 3),
                    "fraction_of_fresh_on_changed_data": round(
                        out["wall_seconds"] / checked["fresh_on_changed_data"]["wall_seconds"],
                        3)})
    # Every fresh run counts (a fresh run on data one image apart costs the same), and
    # each step's fraction is of their median.
    fresh = median_step(fresh_runs)
    record["steps"]["fresh"] = {**record["steps"]["fresh"], **fresh}
    for kind in ("unchanged", "unchanged_server", "edit", "add", "remove"):
        step = record["steps"][kind]
        step["fraction_of_fresh"] = round(step["wall_seconds"] / fresh["wall_seconds"], 3)
    save("fresh", record["steps"]["fresh"])
    print(json.dumps({k: {"wall_seconds": v["wall_seconds"],
                          **{f: v[f] for f in ("task_states", "outputs_identical",
                                               "outputs_identical_to_fresh",
                                               "fraction_of_fresh") if f in v}}
                      for k, v in record["steps"].items()}, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
