"""``fer serve`` under load, through HTTP as clients use it: 640x480 photos (FER2013 test
faces planted in photos) at 1 and at 8 concurrent clients (p50/p95 latency, throughput),
the server's peak RSS, and the bare detect+classify time of one photo in-process for the
target (p50 at 1 client <= 1.5x bare; >= 15 photos/s at 8 clients on 2 cores). Then a
bad-input run: N requests mixing malformed bodies with real photos; every malformed one
must get a 4xx, every photo its answer, and the server must never restart.

    .venv/bin/python bench/serve_load.py [--requests 200] [--bad-run 1000]

Writes bench/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import (  # noqa: E402
    REPO,
    CpuWatch,
    free_port,
    mib,
    now,
    shown_command,
    tree_rss,
    wait_http,
    write_result,
)

FER = str(Path(sys.executable).parent / "fer")
TAR = REPO.parent / "shared" / "data" / "fer2013.tar.gz"


def planted_photos(n: int, seed: int = 0) -> list[bytes]:
    """n JPEG photos of 640x480, each a FER2013 test face planted at a random place."""
    from fer_core.datasets.planted import backgrounds, plant_face

    faces = []
    with tarfile.open(TAR) as tar:
        for m in tar:
            if m.isfile() and "/test/" in m.name and m.name.endswith(".jpg"):
                faces.append(cv2.imdecode(np.frombuffer(tar.extractfile(m).read(), np.uint8),
                                          cv2.IMREAD_GRAYSCALE))
                if len(faces) == n:
                    break
    rng, backs, out = np.random.default_rng(seed), backgrounds(), []
    for face in faces:
        photo, _ = plant_face(face, backs, rng)
        canvas = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
        out.append(cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))[1].tobytes())
    return out


def post(port: int, body: bytes, ctype: str = "image/jpeg") -> tuple[int, dict, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = now()
    conn.request("POST", "/predict", body=body, headers={"Content-Type": ctype})
    r = conn.getresponse()
    data = r.read()
    took = now() - t0
    conn.close()
    try:
        payload = json.loads(data)
    except ValueError:
        payload = {"raw": data[:200].decode(errors="replace")}
    return r.status, payload, took


def load(port: int, photos: list[bytes], clients: int, requests: int) -> dict:
    latencies, lock, errors = [], threading.Lock(), []
    todo = iter(range(requests))

    def client():
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            status, _, took = post(port, photos[i % len(photos)])
            with lock:
                (latencies if status == 200 else errors).append(took if status == 200 else status)

    t0 = now()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = now() - t0
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": requests, "errors": errors,
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "photos_per_s": round(len(latencies) / wall, 2), "wall_seconds": round(wall, 2)}


def bare_seconds(photos: list[bytes], repeats: int = 20) -> float:
    """Detect + classify one photo in-process (model and MTCNN loaded, warm): the median."""
    from fer_core.infer.predict import PredictConfig, load_predictor, predict_images
    from fer_core.models.weights import DEFAULT_CHECKPOINT

    cfg = PredictConfig(device="cpu")
    predictor = load_predictor(DEFAULT_CHECKPOINT, cfg)
    images = [cv2.cvtColor(cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB) for p in photos[:repeats]]
    predict_images(images[:1], predictor, cfg)  # warm
    times = []
    for img in images:
        t0 = now()
        predict_images([img], predictor, cfg)
        times.append(now() - t0)
    return statistics.median(times)


def malformed(photo: bytes, rng: np.random.Generator) -> tuple[bytes, str, str]:
    kinds = ["empty", "text", "truncated", "garbage", "wrong_type", "too_many_bytes", "bomb",
             "bad_multipart"]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "empty":
        return b"", "image/jpeg", kind
    if kind == "text":
        return b"hello, this is not an image", "image/png", kind
    if kind == "truncated":
        return photo[:int(len(photo) * rng.uniform(0.1, 0.9))], "image/jpeg", kind
    if kind == "garbage":
        return rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(), "image/jpeg", kind
    if kind == "wrong_type":
        return photo, "application/json", kind
    if kind == "too_many_bytes":
        return b"\xff" * (21 * 2**20), "image/jpeg", kind
    if kind == "bomb":
        return BOMB, "image/png", kind
    return b"--b\r\nContent-Disposition: form-data\r\n\r\nx", "multipart/form-data; boundary=b", \
        kind


BOMB = b""


def bad_run(port: int, photos: list[bytes], n: int, expected: list[str]) -> dict:
    global BOMB
    from fer_core.datasets.bomb import bomb_png

    BOMB = bomb_png(20000, 20000)
    rng = np.random.default_rng(1)
    counts: dict[str, dict] = {}
    wrong = []
    for _ in range(n):
        if rng.random() < 0.5:
            k = int(rng.integers(len(photos)))
            status, body, _ = post(port, photos[k])
            got = [f["class"] for f in body.get("faces", [])] if status == 200 else None
            ok = status == 200 and got == expected[k]
            kind = "photo"
        else:
            data, ctype, kind = malformed(photos[int(rng.integers(len(photos)))], rng)
            try:
                status, body, _ = post(port, data, ctype)
            except (ConnectionError, http.client.HTTPException) as e:
                status, body = 0, {"detail": repr(e)}
            ok = 400 <= status < 500 and bool(body.get("detail"))
        c = counts.setdefault(kind, {"sent": 0, "as_expected": 0, "statuses": {}})
        c["sent"] += 1
        c["as_expected"] += int(ok)
        c["statuses"][str(status)] = c["statuses"].get(str(status), 0) + 1
        if not ok and len(wrong) < 10:
            wrong.append({"kind": kind, "status": status, "body": str(body)[:200]})
    return {"requests": n, "by_kind": counts, "unexpected": wrong}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--requests", type=int, default=200, help="per client count")
    ap.add_argument("--bad-run", type=int, default=1000)
    ap.add_argument("--serve-args", default="", help="more fer serve options, e.g. '--workers 2'")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "serve_load.json"))
    args = ap.parse_args()
    photos = planted_photos(args.photos)
    port = free_port()
    cmd = [FER, "serve", "--port", str(port), *args.serve_args.split()]
    server = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL)
    peak, stop = {"VmRSS": 0}, threading.Event()

    def sample():
        while not stop.is_set():
            peak["VmRSS"] = max(peak["VmRSS"], tree_rss(server.pid)["VmRSS"])
            stop.wait(0.2)

    try:
        startup = wait_http(f"http://127.0.0.1:{port}/health", proc=server)
        threading.Thread(target=sample, daemon=True).start()
        expected = []
        for p in photos:  # warm-up, and each photo's answer for the bad-input run
            status, body, _ = post(port, p)
            expected.append([f["class"] for f in body["faces"]])
        watch = CpuWatch()
        one = load(port, photos, 1, max(40, args.requests // 4))
        eight = load(port, photos, 8, args.requests)
        cpu = watch.result()
        bad = bad_run(port, photos, args.bad_run, expected)
        alive = server.poll() is None
        pid_same = alive  # one process from start to end: no restart
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
    bare = bare_seconds(photos)
    result = {
        "server_command": shown_command(cmd), "photos": f"{len(photos)} FER2013 test faces planted "
        "in 640x480 JPEG photos (fer_core.datasets.planted)", "startup_seconds": round(startup, 2),
        "one_client": one, "eight_clients": eight,
        "bare_detect_classify_ms": round(bare * 1000, 1),
        "p50_one_client_over_bare": round(one["p50_ms"] / (bare * 1000), 3),
        "targets": {"p50_one_client_over_bare": 1.5, "photos_per_s_eight_clients": 15},
        "server_peak_rss_mib": mib(peak["VmRSS"]), "cpu_during_load": cpu,
        "bad_input_run": bad, "server_alive_after": alive, "no_restart": pid_same}
    write_result(Path(args.out), result)
    print(json.dumps({k: result[k] for k in ("one_client", "eight_clients",
                                             "bare_detect_classify_ms", "server_peak_rss_mib",
                                             "no_restart")}, indent=1))
    print(json.dumps(bad["by_kind"]))


if __name__ == "__main__":
    main()
