"""Measuring helpers shared by the benchmark scripts: the machine a figure was measured on,
wall and CPU time, the CPU share other processes took, the peak RSS of a command run the way
users run it, and the result file (``write_result``: the command and the machine first)."""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def now() -> float:
    return time.perf_counter()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def rss_fields(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, RssAnon (heap: what the process allocated) and RssFile (mapped files, e.g.
    memory-mapped .npy arrays: page cache the kernel can drop), in bytes."""
    out = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in out:
                out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def current_rss_bytes(pid: int | str = "self") -> int:
    return rss_fields(pid)["VmRSS"]


def mib(n: float | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


def rate(n: int, seconds: float) -> float | None:
    return round(n / seconds, 2) if seconds > 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def total_ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_info() -> dict:
    """The machine: fer_core's record (platform, CPU, memory, torch threads, GPU), the CPUs
    this process may use, and the versions of the libraries the pipeline runs on."""
    from importlib.metadata import PackageNotFoundError, version

    from fer_core.runtime.device import machine_info as base

    libs = {}
    for name in ("torch", "facenet-pytorch", "opencv-python-headless", "opencv-python",
                 "numpy", "pandas", "prefect"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            continue
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {**base(), "cpu_affinity": affinity, "cpu_vector": cpu_vector(),
            "total_ram_bytes": total_ram_bytes(), "libraries": libs}


def cpu_vector() -> list[str]:
    """The CPU's vector extensions that set torch's speed here (AVX-512, its bf16 and VNNI,
    AMX): machines of one kind differ in them, and bf16 autocast (cpu_amp) is native only
    with avx512_bf16 or AMX, so a figure is comparable only with one of the same set."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags")).split(":", 1)[1].split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if f.startswith(("avx", "amx")) or f == "fma")


def command_line() -> str:
    """This benchmark's command, as typed."""
    return shown_command([sys.executable, *sys.argv])


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a result file records it: relative to the repository when it is in this
    checkout or beside it (the venv, ../shared), so a result names no folder of the machine."""
    value = str(path)
    if os.path.isabs(value) and Path(value).is_relative_to(REPO.parent):
        value = os.path.relpath(value, REPO)
    return value


def shown_command(cmd: list[str]) -> str:
    """``cmd`` as a result file records it, each path through ``shown_path``."""
    def shown(arg: str) -> str:
        flag, eq, value = arg.rpartition("=") if arg.startswith("--") else ("", "", arg)
        return f"{flag}{eq}{shown_path(value)}"

    return shlex.join(shown(str(a)) for a in cmd)


def result_checkpoint(result: dict) -> Path:
    """The best checkpoint of the result's training: the run's model (RUN/model/best.pt)
    or one of its trainings (RUN/train/NAME/model/best.pt, where a later training has
    taken the run's place), whichever was trained with the result's config to its epoch."""
    run_dir = Path(result["run_dir"])
    run_dir = run_dir if run_dir.is_absolute() else REPO / run_dir
    from fer_core.models.checkpoint import load_checkpoint  # torch: only where needed

    for best in [run_dir / "model" / "best.pt", *sorted(run_dir.glob("train/*/model/best.pt"))]:
        meta = load_checkpoint(best)[1]
        if meta["config"] == result["config"] and meta["epoch"] == result["best_epoch"]:
            return best
    raise SystemExit(f"{run_dir}: no checkpoint of this result's training (config and best "
                     f"epoch {result['best_epoch']})")


def write_result(path: Path, record: dict) -> Path:
    """``record`` as indented JSON at ``path``, the command and the machine first (taken
    now unless ``record`` has them)."""
    out = {"command": record.get("command") or command_line(),
           "machine": record.get("machine") or machine_info(), **record}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


class CpuWatch:
    """CPU seconds spent by the whole machine vs by this process and its children over an
    interval: other users of the 2 cores (concurrent jobs) make timings slower."""

    TICK = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _system() -> tuple[float, float]:
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = f[0] + f[1] + f[2] + f[5] + f[6]
        return busy / CpuWatch.TICK, (f[7] if len(f) > 7 else 0) / CpuWatch.TICK

    @staticmethod
    def _own() -> float:
        a = resource.getrusage(resource.RUSAGE_SELF)
        b = resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    def __init__(self):
        self.t0, (self.busy0, self.steal0), self.own0 = now(), self._system(), self._own()

    def result(self, extra_own: float = 0.0) -> dict:
        """``extra_own``: CPU seconds of children not yet waited for (none here)."""
        wall = now() - self.t0
        busy, steal = self._system()
        busy, steal, own = busy - self.busy0, steal - self.steal0, self._own() - self.own0
        other = max(0.0, busy - own - extra_own)
        ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return {"wall_seconds": round(wall, 2), "own_cpu_seconds": round(own, 2),
                "other_processes_cpu_seconds": round(other, 2),
                "other_processes_cpu_share": round(other / (wall * ncpu), 3) if wall else None,
                "steal_seconds": round(steal, 2),
                "loadavg_end": Path("/proc/loadavg").read_text().split()[:3]}


def tree_rss(root_pid: int) -> dict[str, int]:
    """Summed VmRSS/RssAnon/RssFile of root_pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(d.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}, [root_pid]
    while todo:
        pid = todo.pop()
        for k, v in rss_fields(pid).items():
            total[k] += v
        todo.extend(children.get(pid, []))
    return total


TIME = Path("/usr/bin/time")
# The code root the child runs in (a benchmark may point it at a snapshot): a child's
# sys.path[0] may be its working folder.
CHILD_CWD = [REPO]


def run_cli(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``cmd``; wall time and peak RSS. The child is started by /usr/bin/time -v when
    there is one: a child forked straight from this (large) process would report this
    process's peak as its own (Linux carries the parent's RSS high-water mark across
    fork + exec into ru_maxrss)."""
    peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    print(f"  $ {shown + ' ' if shown else ''}{shlex.join(cmd)}", flush=True)
    timed = TIME.exists()
    time_out = log.with_suffix(".time")
    t0 = now()
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(TIME), "-v", "-o", str(time_out), *cmd] if timed else cmd,
                                cwd=CHILD_CWD[0], stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                for k, v in tree_rss(proc.pid).items():
                    peak[k] = max(peak[k], v)
                stop.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = now() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        sampler.join()
    tail = log.read_text(errors="replace").splitlines()[-12:]
    maxrss_kib, how = usage.ru_maxrss, "os.wait4 (includes this process's peak at fork)"
    if timed and time_out.exists():
        for line in time_out.read_text().splitlines():
            if "Maximum resident set size" in line:
                maxrss_kib, how = int(line.rsplit(":", 1)[1]), "/usr/bin/time -v"
    print(f"    exit {proc.returncode}, wall {wall:.1f} s, peak RSS {maxrss_kib / 1024:.0f} MiB "
          f"(tree sampled: {mib(peak['VmRSS'])} MiB, anon {mib(peak['RssAnon'])} MiB)", flush=True)
    return {"command": shown_command(cmd), "extra_env": env or {}, "returncode": proc.returncode,
            "wall_seconds": round(wall, 2),
            "peak_rss_bytes": maxrss_kib * 1024, "peak_rss_mib": round(maxrss_kib / 1024, 1),
            "peak_rss_from": how + ": the largest single process of the tree",
            "peak_tree_rss_sampled_mib": mib(peak["VmRSS"]),
            "peak_tree_rss_anon_sampled_mib": mib(peak["RssAnon"]),
            "peak_tree_rss_file_sampled_mib": mib(peak["RssFile"]),
            "user_seconds": round(usage.ru_utime, 2), "system_seconds": round(usage.ru_stime, 2),
            "cpu_utilisation": round((usage.ru_utime + usage.ru_stime) / wall, 2),
            "log": shown_path(log), "log_tail": tail}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a benchmark starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 180, proc: subprocess.Popen | None = None) -> float:
    """Seconds until ``url`` answers; TimeoutError past ``timeout``, RuntimeError when
    ``proc`` (the server) exits first."""
    import urllib.request

    t0 = now()
    while now() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return now() - t0
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")
