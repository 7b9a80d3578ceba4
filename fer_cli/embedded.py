"""Prefect's embedded server, started by ``fer`` as soon as its command is checked.

With no server named (``PREFECT_API_URL``), Prefect starts a temporary one at a flow's
first API call: after ``fer`` has imported its flows, and after it has imported Prefect's
whole server package in its own process only to reach the class that starts it
(``prefect.server.api.server.SubprocessASGIServer``), then waits for it. Here the same
server process (uvicorn over ``create_app``, UI off, the same flags and environment
Prefect gives it) starts first, before anything heavy is imported: it comes up on one
core while ``fer`` imports on the other, and the flow runs against it through
``PREFECT_API_URL`` for the command's length (``api()``). Runs are recorded where Prefect's
own temporary server records them ($PREFECT_HOME's database), and the server stops when
``fer`` ends (and ``fer_cli.guard`` ends it when ``fer`` is killed).

Where Prefect's settings name a server (the environment, a profile), that server is used
and none is started: a profile is only read with Prefect's settings, so a server started
before they are read is stopped as soon as they say so.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import tasks  # noqa: F401 - its environment for the embedded server (analytics off, timeout)

# What Prefect's SubprocessASGIServer sets for its server process: no UI, ephemeral mode.
SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
              "PREFECT__SERVER_FINAL": "1"}
PORT_IN_USE = 3  # uvicorn's exit status when it cannot bind

_server: EmbeddedServer | None = None


class EmbeddedServer:
    """One Prefect server process on a free local port, started at once (``start``)."""

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.ready = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def launch(self) -> None:
        self.port = free_port()
        prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env={**os.environ, **SERVER_ENV})

    def wait(self, timeout_s: float) -> str:
        """Its API URL once it answers ``/health``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code == PORT_IN_USE:  # taken since it was found free: another one
                self.launch()
            elif code is not None:
                raise RuntimeError(f"Prefect's embedded server exited with status {code} "
                                   "before it answered (its error is above)")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        self.ready = True
                        return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Prefect's embedded server did not answer within {timeout_s:.0f} s "
                           "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")

    def stop(self) -> None:
        """As Prefect stops its own: SIGTERM, up to 5 s to finish, then SIGKILL."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _named_server() -> bool:
    """Whether a server is named before Prefect's settings are read: in the environment,
    or in settings already loaded in this process (a test's temporary settings)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    settings = sys.modules.get("prefect.settings")
    return bool(settings is not None and settings.PREFECT_API_URL.value())


def start() -> EmbeddedServer | None:
    """Start the embedded server now, unless a server is named; ``api()`` then waits for it."""
    global _server
    if _server is not None or _named_server():
        return _server
    _server = EmbeddedServer()
    _server.launch()
    atexit.register(_server.stop)  # before Prefect's handlers: it runs after they flush
    return _server


@contextlib.contextmanager
def api():
    """The block's flows run against the server ``start()`` started (waited for here), or
    against the one Prefect's settings name (that one is then stopped, unused)."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        PREFECT_UI_URL,
        temporary_settings,
    )

    global _server
    named = PREFECT_API_URL.value() or not PREFECT_SERVER_ALLOW_EPHEMERAL_MODE.value()
    if _server is None or named:
        if _server is not None:
            _server.stop()
            _server = None
        yield None
        return
    url = _server.wait(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    print(f"Prefect: embedded server on {url} (the runs are in $PREFECT_HOME's database; "
          "set PREFECT_API_URL to use a running server)", file=sys.stderr)
    updates = {PREFECT_API_URL: url}
    if PREFECT_UI_URL.value() is None:  # no UI is served: no "View at" link to it
        updates[PREFECT_UI_URL] = ""
    with temporary_settings(updates=updates):
        yield url
