"""Nothing of a killed ``fer`` outlives it: a watchdog ends what the command started.

``fer`` starts processes of its own: Prefect's embedded server (a uvicorn subprocess that
Prefect stops only from an ``atexit`` handler, which never runs when ``fer`` is killed with
SIGKILL), and whatever a flow forks. ``guard_descendants()`` forks a small watchdog first,
while ``fer`` is still single-threaded. It waits on a pipe that only ``fer`` holds open:
when ``fer`` ends, however it ends, the pipe reads end-of-file, and the watchdog stops
(SIGTERM, then SIGKILL after a grace period) every process ``fer`` started that is still
there. It knows them two ways: it walks ``fer``'s process tree every half second while
``fer`` lives (recording each process's start time, so a reused PID is never hit), and
every process whose environment carries ``fer``'s token (``FER_CLI_GUARD``; Prefect passes
its environment on to the server), which also finds one started in the last half second.

Linux only (``/proc``); elsewhere it does nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
import uuid

ENV = "FER_CLI_GUARD"
POLL_S = 0.5
GRACE_S = 3.0

_write_end: int | None = None


def guard_descendants() -> int | None:
    """Fork the watchdog of this process's descendants; returns its PID (None where
    unsupported, or already guarded)."""
    global _write_end
    if _write_end is not None or not sys.platform.startswith("linux") \
            or not os.path.isdir("/proc/self"):
        return None
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    os.environ[ENV] = token
    read_end, write_end = os.pipe()  # both non-inheritable: exec'd children never hold them
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the watchdog
        try:
            os.close(write_end)
            _detach()
            _watch(read_end, parent, token)
        finally:
            os._exit(0)
    os.close(read_end)
    _write_end = write_end
    # A child forked without exec (multiprocessing) must not keep the pipe open.
    os.register_at_fork(after_in_child=_close_in_child)
    return pid


def _close_in_child() -> None:
    global _write_end
    if _write_end is not None:
        with contextlib.suppress(OSError):
            os.close(_write_end)
        _write_end = None


def _detach() -> None:
    """Out of the terminal's process group and signals (Ctrl-C, hang-up reach ``fer``, not
    its watchdog), and off its output."""
    with contextlib.suppress(OSError):
        os.setsid()
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTSTP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _watch(read_end: int, parent: int, token: str) -> None:
    known: dict[int, int] = {}  # pid -> start time, of every descendant seen
    me = os.getpid()
    while True:
        ready, _, _ = select.select([read_end], [], [], POLL_S)
        if ready and not os.read(read_end, 1):
            break  # the parent has ended
        known.update(descendants(parent, table=processes()))
    known.pop(me, None)
    stop(known, token, exclude={me})


def processes() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, start time)} of every process now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        out[int(name)] = (int(fields[1]), int(fields[19]))
    return out


def descendants(root: int, *, table: dict[int, tuple[int, int]]) -> dict[int, int]:
    """{pid: start time} of ``root``'s descendants in ``table``."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid not in out:
            out[pid] = table[pid][1]
            todo.extend(children.get(pid, ()))
    return out


def _carries(pid: int, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{ENV}={token}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def _alive(pid: int, start: int) -> bool:
    """Still the same process (not a reused PID) and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    fields = stat[stat.rindex(b")") + 2:].split()
    return fields[0] != b"Z" and int(fields[19]) == start


def stop(known: dict[int, int], token: str, *, exclude: set[int]) -> None:
    """SIGTERM, then SIGKILL after GRACE_S, to every live process in ``known``, every one
    carrying ``token``, and their descendants."""
    table = processes()
    targets = {pid: start for pid, start in known.items()
               if table.get(pid, (0, None))[1] == start}
    targets |= {pid: start for pid, (_, start) in table.items() if _carries(pid, token)}
    for pid in list(targets):
        targets |= descendants(pid, table=table)
    for pid in exclude:
        targets.pop(pid, None)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        live = {p: s for p, s in targets.items() if _alive(p, s)}
        for pid in live:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_S
        while live and time.monotonic() < deadline:
            time.sleep(0.05)
            live = {p: s for p, s in live.items() if _alive(p, s)}
        if not live:
            return
        targets = live
