"""A cheaper start (issue 28): `fer --help` and an unchanged rerun never import torch, and
`fer prepare` with its early embedded server still records every stage of the rerun,
`cached` or `ran`, in the Prefect database (read here with sqlite3, not through Prefect)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import extract_fer2013_subset
from tests.flows.test_cli import clean_env
from tests.flows.test_store_trust import UNKEYED

HEAVY = ("torch", "facenet_pytorch", "torchvision")


def test_help_and_the_prepare_flow_import_no_torch(tmp_path):
    script = ("import json, sys\nfrom fer_cli.main import main\ntry:\n    main(['--help'])\n"
              "except SystemExit:\n    pass\nhelp = [m for m in sys.argv[1:] if m in sys.modules]\n"
              "import flows.prepare\n"
              "print(json.dumps([help, [m for m in sys.argv[1:] if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", script, *HEAVY, "prefect"], capture_output=True,
                         text=True, cwd=tmp_path, env=clean_env(tmp_path), timeout=300)
    assert out.returncode == 0, out.stderr
    help_mods, flow_mods = json.loads(out.stdout.splitlines()[-1])
    assert help_mods == [], "fer --help imports nothing heavy"
    assert flow_mods == ["prefect"], "the prepare flow imports Prefect, not torch"


def imported(stderr: str) -> set[str]:
    """The modules ``python -X importtime`` says a process imported."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def prepare(tmp_path: Path, data: Path) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "fer_cli", "prepare",
                          str(data), "--out", str(tmp_path / "run"), "--class-map", "fer2013"],
                         capture_output=True, text=True, cwd=tmp_path, env=clean_env(tmp_path),
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def recorded(db: Path) -> list[dict]:
    """Each `prepare` flow run, oldest first: its state, its `stages` table and the states of
    its task runs and its sub-flow's, as the server wrote them."""
    con = sqlite3.connect(db)
    runs = con.execute("SELECT r.id, r.state_type FROM flow_run r JOIN flow f ON r.flow_id = "
                       "f.id WHERE f.name = 'prepare' ORDER BY r.created").fetchall()
    out = []
    for run_id, state in runs:
        (data,), = con.execute("SELECT data FROM artifact WHERE key = 'stages' AND "
                               "flow_run_id = ?", (run_id,)).fetchall()
        rows = json.loads(data)
        rows = json.loads(rows) if isinstance(rows, str) else rows
        subflows = [i for i, in con.execute(
            "SELECT s.id FROM flow_run s JOIN task_run t ON s.parent_task_run_id = t.id "
            "WHERE t.flow_run_id = ?", (run_id,))]
        tasks = con.execute(
            f"SELECT name, state_name FROM task_run WHERE flow_run_id IN "
            f"({','.join('?' * (1 + len(subflows)))})", (run_id, *subflows)).fetchall()
        out.append({"state": state, "stages": {r["stage"]: r["status"] for r in rows},
                    "tasks": dict(tasks)})
    return out


@pytest.mark.fer2013
def test_a_cli_rerun_records_every_stage_cached_and_never_imports_torch(tmp_path):
    classes = ("angry", "happy", "sad")
    data = extract_fer2013_subset(tmp_path / "fer2013", per_class={
        **{f"train/{c}": 8 for c in classes}, **{f"test/{c}": 3 for c in classes}})
    fresh = prepare(tmp_path, data)
    rerun = prepare(tmp_path, data)
    assert "embedded server on http://127.0.0.1:" in rerun.stderr
    assert "View at" not in rerun.stdout + rerun.stderr, "no link to a UI that is not served"
    assert "torch" in imported(fresh.stderr), "the oracle sees torch where alignment ran"
    assert not imported(rerun.stderr) & set(HEAVY), "nothing aligned: no torch"

    first, second = recorded(tmp_path / "prefect_home" / "prefect.db")
    assert first["state"] == second["state"] == "COMPLETED"
    assert set(first["stages"].values()) == {"ran"}
    assert set(second["stages"]) == set(first["stages"]) and len(second["stages"]) >= 10
    for stage, status in second["stages"].items():
        assert status == ("ran" if stage in UNKEYED else "cached"), (stage, status)
    # Prefect's own record of the rerun's task runs agrees: every keyed stage's run Cached.
    assert second["tasks"] and set(second["tasks"].values()) <= {"Cached", "Completed"}
    cached = {name for name, state in second["tasks"].items() if state == "Cached"}
    assert len(cached) == len(second["stages"]) - len(UNKEYED), second["tasks"]
