"""The page of ``fer serve`` as a person uses it, in headless Chromium: a photo dropped on
the drop zone (a real ``drop`` event carrying the file), the page's own script posts it,
draws the boxes and labels; a screenshot is saved and what the page shows is recorded.

    .venv/bin/python bench/serve_page.py [--photo FILE] [--out bench/results/serve_page]

Needs ``chromium`` (apt-get install chromium). Writes OUT.png and OUT.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import REPO, free_port, wait_http, write_result  # noqa: E402

FER = str(Path(sys.executable).parent / "fer")


async def drive(devtools_port: int, url: str, photo: bytes, name: str) -> dict:
    import websockets

    targets = json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{devtools_port}/json/list").read())
    page = next(t for t in targets if t["type"] == "page")
    async with websockets.connect(page["webSocketDebuggerUrl"], max_size=2**26) as ws:
        counter = iter(range(1, 10**6))

        async def call(method: str, **params):
            ident = next(counter)
            await ws.send(json.dumps({"id": ident, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == ident:
                    return msg.get("result", msg)

        await call("Page.enable")
        await call("Emulation.setDeviceMetricsOverride", width=900, height=1100,
                   deviceScaleFactor=1, mobile=False)
        await call("Page.navigate", url=url)
        await asyncio.sleep(2)
        b64 = base64.b64encode(photo).decode()
        drop = f"""(async () => {{
            const bytes = Uint8Array.from(atob("{b64}"), c => c.charCodeAt(0));
            const file = new File([bytes], "{name}", {{type: "image/jpeg"}});
            const dt = new DataTransfer(); dt.items.add(file);
            document.getElementById("drop").dispatchEvent(
                new DragEvent("drop", {{dataTransfer: dt, bubbles: true, cancelable: true}}));
            return true; }})()"""
        await call("Runtime.evaluate", expression=drop, awaitPromise=True)
        seen = {}
        for _ in range(60):
            await asyncio.sleep(1)
            r = await call("Runtime.evaluate", returnByValue=True, expression="""({
                model: document.getElementById("model").textContent,
                status: document.getElementById("status").textContent,
                table: document.getElementById("faces").innerText,
                canvas: [document.getElementById("view").width,
                         document.getElementById("view").height]})""")
            seen = r["result"]["value"]
            if "face(s)" in seen["status"] or "refused" in seen["status"]:
                break
        await asyncio.sleep(1)
        shot = await call("Page.captureScreenshot", format="png")
        return {"seen": seen, "png": base64.b64decode(shot["data"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", help="a JPEG to drop (default: scikit-image's astronaut)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "serve_page"))
    args = ap.parse_args()
    if args.photo:
        photo, name = Path(args.photo).read_bytes(), Path(args.photo).name
    else:
        import cv2
        from skimage import data

        photo = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1]
        photo, name = photo.tobytes(), "astronaut.jpg"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    port, devtools = free_port(), free_port()
    server = subprocess.Popen([FER, "serve", "--port", str(port)], cwd=REPO)
    profile = tempfile.mkdtemp()
    browser = None
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        browser = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                    f"--remote-debugging-port={devtools}",
                                    f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{devtools}/json/version")
        result = asyncio.run(drive(devtools, f"http://127.0.0.1:{port}/", photo, name))
    finally:
        for proc in (browser, server):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".png").write_bytes(result["png"])
    write_result(out.with_suffix(".json"), {"photo": name, "page_shows": result["seen"],
                                            "screenshot": str(out.with_suffix(".png"))})
    print(json.dumps(result["seen"], indent=2))


if __name__ == "__main__":
    main()
