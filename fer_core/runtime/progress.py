"""Progress bars for long stages: shown on a terminal, silent in logs and CI."""

from __future__ import annotations

from tqdm.auto import tqdm


def bar(iterable, *, total: int | None = None, desc: str | None = None):
    # disable=None: tqdm turns itself off when stderr is not a terminal.
    return tqdm(iterable, total=total, desc=desc, disable=None, leave=False,
                unit="img" if desc in ("ingest",) else "it")
