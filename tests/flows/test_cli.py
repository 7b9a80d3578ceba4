"""The `fer` command itself: bad commands fail at once, and a killed `fer` leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_cli import checks, guard
from fer_cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]
FER = Path(sys.executable).with_name("fer")


def fer_command() -> list[str]:
    """The installed console script when there is one, else the package as a module."""
    return [str(FER)] if FER.is_file() else [sys.executable, "-m", "fer_cli"]


def clean_env(tmp_path: Path) -> dict[str, str]:
    """No Prefect server configured (the embedded one starts), in a throw-away home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


def fer(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*fer_command(), *args], capture_output=True, text=True,
                          cwd=tmp_path, env=clean_env(tmp_path), timeout=120)


@pytest.fixture
def data(tmp_path) -> Path:
    """A tiny labelled folder DATA/<class>/*.png."""
    import numpy as np

    from fer_core.store import write_image

    rng = np.random.default_rng(0)
    for c in ("happy", "sad"):
        for i in range(3):
            write_image(tmp_path / "data" / c / f"{i}.png",
                        rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return tmp_path / "data"


def assert_usage_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"one line, no traceback: {result.stderr}"
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in result.stderr and "prefect" not in result.stderr.lower()


def test_missing_data_folder(tmp_path):
    result = fer(tmp_path, "prepare", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"))
    assert_usage_error(result, "fer prepare: error:", "nowhere", "no such data folder")
    assert not (tmp_path / "run").exists()
    result = fer(tmp_path, "pipeline", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"))
    assert_usage_error(result, "fer pipeline: error:", "no such data folder")


def test_unknown_config_keys(tmp_path, data):
    cfg = tmp_path / "prep.yaml"
    cfg.write_text("align:\n  batch_size: 6\n  bacth: 2\n")
    result = fer(tmp_path, "prepare", str(data), "--out", "run", "--config", str(cfg))
    assert_usage_error(result, str(cfg), "[align]", "unknown key(s) ['bacth']", "batch_size")
    cfg.write_text("alignment:\n  batch_size: 6\n")
    result = fer(tmp_path, "prepare", str(data), "--out", "run", "--config", str(cfg))
    assert_usage_error(result, "unknown section(s) ['alignment']")
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text("epochs: 2\nlearning_rate: 0.1\n")
    result = fer(tmp_path, "pipeline", str(data), "--out", "run", "--config", str(train_cfg))
    assert_usage_error(result, str(train_cfg), "unknown TrainConfig key(s) ['learning_rate']")


def test_invalid_yaml_is_one_line_with_file_line_and_column(tmp_path, data):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("align:\n  batch_size: [6\nresize:\n  size: 48\n")
    result = fer(tmp_path, "prepare", str(data), "--out", "run", "--config", str(cfg))
    assert_usage_error(result, str(cfg), "line 3, column 7", "not valid YAML")
    run = tmp_path / "run_dir"
    (run / "sets").mkdir(parents=True)
    (run / "sets" / "meta.json").write_text("{}")
    cfg.write_text("epochs: 2\n  lr: 0.1\n")
    result = fer(tmp_path, "train", str(run), "--config", str(cfg))
    assert_usage_error(result, str(cfg), "line 2, column 5", "not valid YAML")


def test_train_on_a_folder_fer_prepare_did_not_make(tmp_path, data):
    result = fer(tmp_path, "train", str(data))
    assert_usage_error(result, f"{data} was not made by `fer prepare`",
                       f"make one with `fer prepare DATA --out {data}`")
    assert "Errno" not in result.stderr and "meta.json'" not in result.stderr
    result = fer(tmp_path, "train", str(tmp_path / "nowhere"))
    assert_usage_error(result, "nowhere does not exist", "fer prepare DATA --out")
    result = fer(tmp_path, "evaluate", str(data))
    assert_usage_error(result, "was not made by `fer prepare`")


def test_bad_commands_import_neither_prefect_nor_torch(tmp_path, data):
    """The checks run before anything heavy: a bad command never loads Prefect (nor starts
    its server) or torch; a value only the config classes can judge (an unknown model)
    is still refused before Prefect."""
    run = tmp_path / "run_dir"
    (run / "sets").mkdir(parents=True)
    (run / "sets" / "meta.json").write_text("{}")
    cfg = tmp_path / "prep.yaml"
    cfg.write_text("resize:\n  sise: 48\n")
    script = ("import json, sys\nfrom fer_cli.main import main\nrc = main(sys.argv[1:])\n"
              "print(json.dumps([rc, 'prefect' in sys.modules, 'torch' in sys.modules]))")
    cases = {
        "missing data": ["prepare", str(tmp_path / "nowhere"), "--out", "r"],
        "unknown key": ["prepare", str(data), "--out", "r", "--config", str(cfg)],
        "not a run": ["train", str(data)],
    }
    for name, argv in cases.items():
        out = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                             text=True, cwd=tmp_path, env=clean_env(tmp_path), timeout=120)
        assert json.loads(out.stdout.splitlines()[-1]) == [2, False, False], (name, out.stderr)
    out = subprocess.run([sys.executable, "-c", script, "train", str(run), "--model", "nosuch"],
                         capture_output=True, text=True, cwd=tmp_path, env=clean_env(tmp_path),
                         timeout=120)
    assert json.loads(out.stdout.splitlines()[-1]) == [2, False, False], out.stderr
    assert "--model 'nosuch': unknown model" in out.stderr and "compact_cnn" in out.stderr
    # A bad value only the config schema judges (a negative epoch count) is refused before
    # Prefect and torch too: the schema (fer_core.config) imports neither.
    out = subprocess.run([sys.executable, "-c", script, "train", str(run), "--epochs", "-3"],
                         capture_output=True, text=True, cwd=tmp_path, env=clean_env(tmp_path),
                         timeout=120)
    assert json.loads(out.stdout.splitlines()[-1]) == [2, False, False], out.stderr
    assert "epochs=-3" in out.stderr


# Every `fer` command with a config file, and each section such a file may have.
PREPARE_SECTIONS = ("ingest", "review", "dedup", "near_duplicates", "split", "quality",
                    "align", "resize", "augment")


def test_an_unknown_key_in_any_section_fails_at_once(tmp_path, data):
    """An unknown key in each prepare section, in a training config and in an audit config:
    exit 2, one line naming the file, the section and the key (and a known key), with
    neither torch nor Prefect imported. All in one process (the machine is shared)."""
    from fer_core.config.prepare import SECTIONS

    assert set(PREPARE_SECTIONS) == set(SECTIONS)
    run = tmp_path / "run_dir"
    (run / "sets").mkdir(parents=True)
    (run / "sets" / "meta.json").write_text("{}")
    cases = []  # (argv, what the one line must say)
    for name in PREPARE_SECTIONS:
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(f"{name}:\n  bogus_key: 1\n")
        known = sorted(SECTIONS[name].model_fields)[0]
        cases.append((["prepare", str(data), "--out", "r", "--config", str(cfg)],
                      [f"{cfg} [{name}]", "unknown key(s) ['bogus_key']", known]))
        cases.append((["pipeline", str(data), "--out", "r", "--prepare-config", str(cfg)],
                      [f"{cfg} [{name}]", "unknown key(s) ['bogus_key']"]))
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text("epochs: 2\nbogus_key: 1\n")
    for argv in (["train", str(run)], ["pipeline", str(data), "--out", "r"]):
        cases.append(([*argv, "--config", str(train_cfg)],
                      [str(train_cfg), "unknown TrainConfig key(s) ['bogus_key']", "epochs"]))
    audit_cfg = tmp_path / "audit.yaml"
    audit_cfg.write_text("folds: 3\nbogus_key: 1\n")
    cases.append((["audit", str(run), "--config", str(audit_cfg)],
                  [str(audit_cfg), "unknown audit key(s) ['bogus_key']", "folds"]))
    # A value of the wrong kind is named the same way.
    bad = tmp_path / "bad.yaml"
    bad.write_text("dedup:\n  on_conflict: maybe\n")
    cases.append((["prepare", str(data), "--out", "r", "--config", str(bad)],
                  [f"{bad} [dedup]", "on_conflict", "'maybe'", "keep_first"]))
    script = (
        "import contextlib, io, json, sys\nfrom fer_cli.main import main\nout = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        rc = main(argv)\n"
        "    out.append([rc, err.getvalue()])\n"
        "print(json.dumps([out, 'prefect' in sys.modules, 'torch' in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", script, json.dumps([a for a, _ in cases])],
                            capture_output=True, text=True, cwd=tmp_path,
                            env=clean_env(tmp_path), timeout=120)
    answers, prefect, torch = json.loads(result.stdout.splitlines()[-1])
    assert (prefect, torch) == (False, False), result.stderr
    for (argv, needles), (rc, stderr) in zip(cases, answers, strict=True):
        lines = stderr.strip().splitlines()
        assert rc == 2 and len(lines) == 1, (argv, rc, stderr)
        assert lines[0].startswith(f"fer {argv[0]}: error: "), lines[0]
        for needle in needles:
            assert needle in lines[0], (argv, needle, lines[0])


def test_model_names_are_the_registry_s_without_torch():
    from fer_core.models.registry import REGISTRY

    assert checks.model_names() == tuple(REGISTRY)


def test_flows_holds_only_flows_and_every_command_lives_in_fer_cli():
    assert not list((REPO / "flows").glob("cli*.py"))
    assert cli_main.main.__module__ == "fer_cli.main"
    commands = cli_main.build_parser()._subparsers._group_actions[0].choices
    assert {"prepare", "demo", "train", "evaluate", "pipeline", "predict", "export",
            "audit"} <= set(commands)
    for name, parser in commands.items():
        assert parser.get_default("func").__module__.startswith("fer_cli."), name


def _tree(pid: int) -> dict[int, int]:
    return guard.descendants(pid, table=guard.processes())


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc (Linux)")
def test_killed_fer_leaves_no_process_behind(tmp_path, data):
    """kill -9 of `fer prepare` while its embedded Prefect server runs: the server (and
    everything else it started) is gone within seconds, not left as an orphan."""
    proc = subprocess.Popen([*fer_command(), "prepare", str(data), "--out", "run"], cwd=tmp_path,
                            env=clean_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        seen: dict[int, int] = {}
        server = None
        while server is None and time.monotonic() < deadline and proc.poll() is None:
            seen |= _tree(proc.pid)
            server = next((p for p in seen if "uvicorn" in _cmdline(p)), None)
            time.sleep(0.1)
        assert server is not None, "fer prepare started its embedded server"
        seen |= _tree(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = {p: s for p, s in seen.items() if guard._alive(p, s)}
        if not left:
            break
        time.sleep(0.1)
    names = [_cmdline(p) for p in left]
    for pid in left:  # a failing test leaves no orphan either
        os.kill(pid, signal.SIGKILL)
    assert not left, f"outlived the killed fer: {names}"


def test_every_option_of_every_command_says_what_it_is():
    """`fer COMMAND --help` describes every option in one line; the model names come from
    the torch-free list the config checks (fer_core.config.train.MODEL_NAMES)."""
    import argparse

    from fer_cli.main import build_parser
    from fer_core.config.train import MODEL_NAMES

    parser = build_parser()
    commands = next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    assert {"prepare", "demo", "train", "evaluate", "pipeline", "predict", "serve",
            "audit"} <= set(commands)
    todo = list(commands.items())
    while todo:  # sub-commands of sub-commands too (fer store gc)
        name, command = todo.pop()
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            what = action.option_strings or action.dest
            assert action.help and action.help.strip(), (name, what)
            assert "\n" not in action.help, (name, what)
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {n}", c) for n, c in action.choices.items()]
    for name in ("train", "pipeline"):
        model = next(a for a in commands[name]._actions if "--model" in a.option_strings)
        assert all(m in model.help for m in MODEL_NAMES), model.help
