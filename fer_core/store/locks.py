"""Locks on stage results and shared JSON indexes, between threads and processes.

``fcntl.flock`` on a lock file beside what it guards: the kernel drops the lock when its
holder's file is closed, so a process that dies (even killed with SIGKILL) never leaves a
lock behind. A lock is per open file, not per process, so threads of one process that
each take it exclude one another too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from fer_core.store.files import read_json, write_json

__all__ = ["LOCK_SUFFIX", "lock_path", "locked", "is_locked", "update_json"]

LOCK_SUFFIX = ".lock"


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of a result folder or a file: ``<path>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def locked(path: str | os.PathLike, *, shared: bool = False) -> Iterator[None]:
    """Hold the lock of ``path`` (exclusive, or ``shared`` with other shared holders) while
    the block runs; wait for it while another holder has it."""
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def is_locked(path: str | os.PathLike) -> bool:
    """Whether a live holder (this process or another) holds the lock of ``path`` now."""
    lock = lock_path(path)
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def update_json(path: str | os.PathLike, change: Callable[[dict], dict | None],
                default: Callable[[], dict] = dict) -> dict:
    """Read, change and write a JSON index that several runs share, under its lock: no
    update is lost to another writer. ``change`` gets the index (``default()`` when it is
    missing or unreadable) and returns the new one (or None: changed in place)."""
    with locked(path):
        try:
            index = read_json(path)
        except (OSError, ValueError):
            index = default()
        new = change(index)
        index = index if new is None else new
        write_json(path, index)
    return index
