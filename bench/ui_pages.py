"""The Prefect UI's pages of a `fer demo` run (twice, the second cached) on a real
`prefect server start`, screenshotted in headless Chromium: the run graph and its logs, the
Task Runs tab, the Artifacts tab, the `reports` task page and its inputs, the Figure 4
artifact. The checks are tests/flows/test_ui.py's; this keeps the screenshots.

    .venv/bin/python bench/ui_pages.py    # bench/results/ui_*.png and ui_pages.json
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import REPO, CpuWatch, write_result  # noqa: E402

RESULTS = REPO / "bench" / "results"


def main() -> None:
    watch = CpuWatch()
    env = {**os.environ, "FER_UI_SHOTS": str(RESULTS)}
    r = subprocess.run([sys.executable, "-m", "pytest", "tests/flows/test_ui.py", "-q",
                        "-p", "no:cacheprovider"], cwd=REPO, env=env, capture_output=True,
                       text=True)
    write_result(RESULTS / "ui_pages.json", {
        "pytest_returncode": r.returncode, "pytest_tail": r.stdout.splitlines()[-5:],
        "screenshots": sorted(p.name for p in RESULTS.glob("ui_*.png")), **watch.result()})
    print(r.stdout[-2000:])
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
