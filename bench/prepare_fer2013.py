"""Benchmark of ``fer prepare`` on all of FER2013 (CPU only): per-stage throughput,
bare MTCNN throughput, the real CLI's wall time and peak RSS, and a fully cached rerun.

This is a benchmark, not a test: it takes tens of minutes on a 2-core machine. Usage::

    .venv/bin/python bench/prepare_fer2013.py                 # extracts the tarball if needed
    .venv/bin/python bench/prepare_fer2013.py --data bench/work/fer2013 --skip-cli
    .venv/bin/python bench/prepare_fer2013.py --subset 200 --results /tmp/smoke.json  # smoke

Phases (each can be skipped):

1. stages: every Prefect task's underlying function (``task.fn``), called in the order of
   ``flows.prepare.prepare_sets``, with a fresh store; wall time (``time.perf_counter``),
   images/s and peak RSS (``ru_maxrss``, this process) after each stage.
2. mtcnn: bare ``MTCNN.detect(batch, landmarks=True)`` over the same batches the align
   stage planned, images decoded in memory beforehand: pure detection throughput. The
   align stage's images/s (file reading + decoding + detection + storing) is reported as a
   percentage of it.
3. cli: ``fer prepare DATA --out RUN`` in a subprocess (fresh run folder and store): wall
   time and the child's peak RSS (``os.wait4`` rusage; the process tree's summed RSS is
   also sampled from /proc).
4. cached: the same command again (same run folder and store): everything should be reused.

Results go to bench/results/prepare_fer2013.json (written after every phase).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from measure import (  # noqa: E402 - bench/ is on sys.path when run as a script
    CHILD_CWD,
    CpuWatch,
    cpu_model,
    current_rss_bytes,
    mib,
    now,
    peak_rss_bytes,
    rate,
    run_cli,
    total_ram_bytes,
)

TARBALL = Path("/work/shared/data/fer2013.tar.gz")
MARKER = ".prepare_bench"  # a run folder this script made (and may wipe)

# Targets from the brief: a 43,435-image set prepared in <= 6 min on 2 cores, <= 3 GB RSS,
# alignment at >= 90% of bare batched MTCNN throughput.
TARGET_IMAGES = 43_435
TARGET_WALL_S = 6 * 60
TARGET_RSS_BYTES = 3 * 1000**3
TARGET_ALIGN_PCT = 90.0


# ---------------------------------------------------------------- small helpers


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine_info() -> dict:
    import cv2
    import numpy
    import pandas
    import prefect
    import torch

    try:
        from importlib.metadata import version

        facenet = version("facenet-pytorch")
    except Exception:  # noqa: BLE001 - informational only
        facenet = "unknown"
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "total_ram_bytes": total_ram_bytes(),
        "total_ram_gib": round((total_ram_bytes() or 0) / 2**30, 2),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cuda_available": bool(torch.cuda.is_available()),
        "facenet_pytorch": facenet,
        "opencv": cv2.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "prefect": prefect.__version__,
    }


CODE_PACKAGES = ("fer_core", "tasks", "flows", "fer_cli")


def code_files(root: Path) -> list[Path]:
    return sorted(p for pkg in CODE_PACKAGES for p in (root / pkg).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def code_hash(root: Path) -> str:
    """sha256 over the pipeline's packages (relative path + content of every file)."""
    h = hashlib.sha256()
    for p in code_files(root):
        h.update(f"{p.relative_to(root).as_posix()}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()


def code_state(root: Path) -> dict:
    return {"root": str(root), "packages_sha256": code_hash(root),
            "repo_git_head": git("rev-parse", "HEAD"),
            "repo_git_dirty_files": len([ln for ln in git("status", "--porcelain").splitlines()
                                         if ln])}


def snapshot_code(dest: Path) -> Path:
    """Copy fer_core/, tasks/, flows/ and fer_cli/ as they are now, and import them from the copy
    (here and, through PYTHONPATH, in the fer subprocesses): other people's edits during a
    run that takes an hour cannot then mix two versions of the pipeline in one result."""
    if dest.exists():
        shutil.rmtree(dest)
    for p in code_files(REPO):
        target = dest / p.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)
    for name in list(sys.modules):
        if name.split(".")[0] in CODE_PACKAGES:
            raise RuntimeError(f"{name} was imported before the code snapshot")
    sys.path.insert(0, str(dest))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(dest), *filter(None, [os.environ.get("PYTHONPATH")])])
    return dest


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def fresh_dir(path: Path) -> Path:
    """An empty folder; an existing one is wiped only if this script made it."""
    if path.exists():
        if not (path / MARKER).exists():
            raise SystemExit(f"{path} exists and was not made by this benchmark; "
                             "remove it or pick another --out")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by bench/prepare_fer2013.py\n")
    return path


# ---------------------------------------------------------------- data


def extract(tarball: Path, dest: Path) -> Path:
    """Extract the tarball under dest (once); returns DATA (dest/fer2013)."""
    data = dest / "fer2013"
    done = dest / "fer2013.extracted"  # beside DATA, not in it: ingest would list it
    if done.exists() and data.is_dir():
        return data
    dest.mkdir(parents=True, exist_ok=True)
    print(f"extracting {tarball} -> {dest}", flush=True)
    with tarfile.open(tarball) as tf:
        tf.extractall(dest, filter="data")
    done.write_text(str(tarball) + "\n")
    return data


def make_subset(data: Path, per_class: int, dest: Path) -> Path:
    """A smaller copy (hard links) of DATA: the first ``per_class`` files of each class folder."""
    out = dest / f"fer2013_subset{per_class}"
    done = dest / f"fer2013_subset{per_class}.extracted"
    if done.exists() and out.is_dir():
        return out
    for class_dir in sorted(p for p in data.glob("*/*") if p.is_dir()):
        target = out / class_dir.relative_to(data)
        target.mkdir(parents=True, exist_ok=True)
        for f in sorted(class_dir.iterdir())[:per_class]:
            try:
                os.link(f, target / f.name)
            except OSError:
                shutil.copyfile(f, target / f.name)
    done.write_text(f"subset {per_class} per class of {data}\n")
    return out


def count_images(data: Path) -> dict:
    counts: dict[str, int] = {}
    for f in data.rglob("*"):
        if f.is_file():
            key = f.relative_to(data).parts[0]
            counts[key] = counts.get(key, 0) + 1
    return {"total": sum(counts.values()), **dict(sorted(counts.items()))}


# ---------------------------------------------------------------- store snapshots


def store_snapshot(store_root: Path) -> dict[str, float]:
    """{stage/key: mtime of its _done.json} for every sealed result in the store."""
    return {p.parent.relative_to(store_root).as_posix(): p.stat().st_mtime_ns
            for p in store_root.glob("*/*/_done.json")}


def store_diff(before: dict, after: dict) -> dict:
    """Per stage: results reused (same seal), recomputed (new or resealed)."""
    out: dict[str, dict[str, int]] = {}
    for key, mtime in after.items():
        stage = key.split("/", 1)[0]
        entry = out.setdefault(stage, {"reused": 0, "recomputed": 0})
        entry["reused" if before.get(key) == mtime else "recomputed"] += 1
    return dict(sorted(out.items()))


def store_size(store_root: Path) -> int:
    return sum(p.stat().st_size for p in store_root.rglob("*") if p.is_file())


# ---------------------------------------------------------------- phase 1: stages


class StageTimer:
    def __init__(self, store_root: Path):
        self.rows: list[dict] = []
        self.store_root = store_root

    def run(self, name: str, fn, *, images=None, what: str = ""):
        before = store_snapshot(self.store_root)
        watch = CpuWatch()
        t0 = now()
        result = fn()
        dt = now() - t0
        cpu = watch.result()
        n = images(result) if callable(images) else images
        row = {"stage": name, "seconds": round(dt, 3), "images": n, "images_are": what,
               "images_per_s": rate(n, dt) if n else None,
               "peak_rss_mib": mib(peak_rss_bytes()), "rss_mib": mib(current_rss_bytes()),
               "own_cpu_seconds": cpu["own_cpu_seconds"],
               "other_processes_cpu_share": cpu["other_processes_cpu_share"],
               "store_written": {k: v["recomputed"] for k, v in
                                 store_diff(before, store_snapshot(self.store_root)).items()
                                 if v["recomputed"]}}
        self.rows.append(row)
        ips = f"{row['images_per_s']:>9.1f} img/s" if row["images_per_s"] else " " * 15
        print(f"  {name:<18} {dt:8.2f} s {ips}  peak RSS {row['peak_rss_mib']:>8.1f} MiB",
              flush=True)
        return result


def paths_of(batch) -> list[str]:
    """The image paths of a planned align batch (a dict with "paths" and "sha1s")."""
    return batch["paths"] if isinstance(batch, dict) else list(batch)


def take(batches: list, limit: int | None) -> list:
    """The planned batches cut to their first ``limit`` images (the last one shortened)."""
    if not limit:
        return batches
    out, n = [], 0
    for b in batches:
        if n >= limit:
            break
        k = limit - n
        out.append({key: v[:k] for key, v in b.items()} if isinstance(b, dict) else b[:k])
        n += len(paths_of(out[-1]))
    return out


def run_stages(data: Path, run_dir: Path) -> tuple[dict, list, str]:
    """Phase 1, in the order of flows.prepare.prepare_sets and its align sub-flow.
    Returns the report, the planned align batches and the data root."""
    from fer_core import store
    from fer_core.prepare import ingest
    from fer_core.prepare.config import build_config
    from fer_core.prepare.manifest import KEPT
    from fer_core.prepare.split import classes_of
    from tasks import prepare as tp
    from tasks.reports import reports_task
    from tasks.save import save_task

    out_dir = str(run_dir)
    store_root = run_dir / "store"
    store_root.mkdir(parents=True, exist_ok=True)
    sr = str(store_root)
    cfg = build_config(str(data))
    root = ingest.data_root(cfg.ingest.root)
    st = StageTimer(store_root)
    t_all = now()

    def rows(ref) -> int:
        return len(tp.read_manifest(ref))

    m = st.run("ingest", lambda: tp.ingest_task.fn(cfg.ingest, sr),
               images=rows, what="files in the manifest")
    n_files = rows(m)
    m = st.run("duplicates", lambda: tp.duplicates_task.fn(m, cfg.dedup, sr),
               images=n_files, what="manifest rows")
    m = st.run("split", lambda: tp.split_task.fn(m, cfg.split, sr),
               images=n_files, what="manifest rows")
    batches = st.run("plan_align_batches", lambda: tp.plan_align_batches.fn(m, cfg.align),
                     images=lambda b: sum(len(paths_of(x)) for x in b),
                     what="images planned for alignment")
    n_align = sum(len(paths_of(b)) for b in batches)
    # The detector loads lazily in the first batch (lru_cache); load it here so the align
    # stage's images/s is detection throughput, comparable with bare MTCNN.
    st.run("load_detector", lambda: tp._detector(cfg.align))
    batch_s: list[float] = []

    def align_all():
        refs = []
        for i, batch in enumerate(batches):
            t0 = now()
            refs.append(tp.align_batch_task.fn(batch, i, cfg.align, root, sr))
            batch_s.append(now() - t0)
            if (i + 1) % 20 == 0 or i + 1 == len(batches):
                done = sum(len(paths_of(b)) for b in batches[:i + 1])
                print(f"    align {i + 1}/{len(batches)} batches, {done / sum(batch_s):.1f} img/s",
                      flush=True)
        return refs

    found = st.run("align", align_all, images=n_align,
                   what="kept images in a split, read from files, decoded, MTCNN, stored")
    m = st.run("merge_alignment", lambda: tp.merge_alignment_task.fn(m, found, [], sr),
               images=n_align, what="aligned-stage images merged")
    classes = st.run("classes", lambda: classes_of(tp.read_manifest(m)))
    resized = st.run("resize", lambda: tp.resize_task.fn(m, cfg.resize, root, sr),
                     images=lambda r: store.result_meta(r)["images"],
                     what="images read, aligned (rotated) and resized")
    augmented = st.run("augment", lambda: tp.augment_task.fn(resized, classes, cfg.augment, sr),
                       images=lambda r: store.result_meta(r)["after"],
                       what="training images rendered (after augmentation)")
    counts = st.run("save", lambda: save_task.fn(resized, augmented, classes, out_dir),
                    images=lambda c: sum(c.values()), what="images in the saved sets")
    st.run("reports", lambda: reports_task.fn(m, resized, augmented, classes, root, out_dir),
           images=n_files, what="manifest rows")
    total = now() - t_all

    manifest = tp.read_manifest(m)
    live = manifest[(manifest["status"] == KEPT) & (manifest["split"] != "")]
    per_split = {s: {"images": int(len(g)), "aligned": int(g["aligned"].sum()),
                     "rate": round(float(g["aligned"].mean()), 4)}
                 for s, g in live.groupby("split")}
    n_aligned = int(live["aligned"].sum())
    stage_s = {r["stage"]: r["seconds"] for r in st.rows}
    sizes = [len(paths_of(b)) for b in batches]
    report = {
        "run_dir": out_dir,
        "config": cfg.to_dict(),
        "classes": list(classes),
        "status_counts": {k: int(v) for k, v in manifest["status"].value_counts().items()},
        "sets": counts,
        "stages": st.rows,
        "not_timed": "publish_artifacts (Prefect UI artifacts; needs a flow run context)",
        "total_seconds": round(total, 2),
        "total_images_per_s": rate(n_files, total),
        "peak_rss_mib": mib(peak_rss_bytes()),
        "align": {
            "batches": len(batches),
            "batch_size_config": cfg.align.batch_size,
            "batch_images": {"min": min(sizes), "median": statistics.median(sizes),
                             "max": max(sizes)} if sizes else {},
            "images": n_align,
            "seconds": stage_s["align"],
            "images_per_s": rate(n_align, stage_s["align"]),
            "images_per_s_incl_detector_load": rate(n_align, stage_s["align"]
                                                    + stage_s["load_detector"]),
            "batch_seconds": {"min": round(min(batch_s), 3), "median": round(
                statistics.median(batch_s), 3), "max": round(max(batch_s), 3),
                "first": round(batch_s[0], 3)} if batch_s else {},
        },
        "detection": {"aligned": n_aligned, "total": int(len(live)),
                      "rate": round(n_aligned / len(live), 4) if len(live) else None,
                      "per_split": per_split},
        "store_bytes": store_size(store_root),
    }
    return report, batches, root


# ---------------------------------------------------------------- phase 2: bare MTCNN


def run_bare_mtcnn(batches: list, root: str, limit: int | None) -> dict:
    import numpy as np
    import torch

    from fer_core import store
    from fer_core.prepare.align import AlignConfig, load_detector

    batches = [paths_of(b) for b in take(batches, limit)]
    t0 = now()
    images = [store.read_images(root, b) for b in batches]
    decode_s = now() - t0
    t0 = now()
    detector = load_detector(AlignConfig())
    load_s = now() - t0
    n = sum(map(len, batches))
    print(f"  bare MTCNN over {n} images in {len(batches)} batches "
          f"(decoded in {decode_s:.1f} s, detector loaded in {load_s:.1f} s)", flush=True)
    times, found = [], 0
    for i, imgs in enumerate(images):
        batch = np.stack(imgs)
        t0 = now()
        _, _, points = detector.detect(batch, landmarks=True)
        times.append(now() - t0)
        found += sum(p is not None for p in points)
        if (i + 1) % 20 == 0 or i + 1 == len(images):
            done = sum(len(b) for b in images[:i + 1])
            print(f"    mtcnn {i + 1}/{len(images)} batches, {done / sum(times):.1f} img/s",
                  flush=True)
    total = sum(times)
    return {"images": n, "batches": len(batches), "batch_size_config": AlignConfig().batch_size,
            "torch_threads": torch.get_num_threads(),
            "decode_seconds": round(decode_s, 3), "detector_load_seconds": round(load_s, 3),
            "detect_seconds": round(total, 3), "images_per_s": rate(n, total),
            "faces_found": int(found),
            "batch_seconds": {"min": round(min(times), 3), "median": round(
                statistics.median(times), 3), "max": round(max(times), 3),
                "first": round(times[0], 3)} if times else {},
            "peak_rss_mib_after": mib(peak_rss_bytes())}


def run_thread_variants(batches: list, root: str, limit: int) -> dict:
    """Bare MTCNN at the default torch thread count vs one thread, interleaved batch by batch
    over the first ``limit`` planned images (so both see the same load from other jobs)."""
    import numpy as np
    import torch

    from fer_core import store
    from fer_core.prepare.align import AlignConfig, load_detector

    default = torch.get_num_threads()
    detector = load_detector(AlignConfig())
    chosen = [paths_of(b) for b in take(batches, limit)]
    n = sum(map(len, chosen))
    variants = sorted({default, 1}, reverse=True)
    times = {t: 0.0 for t in variants}
    try:
        for paths in chosen:
            batch = np.stack(store.read_images(root, paths))
            for t in variants:
                torch.set_num_threads(t)
                t0 = now()
                detector.detect(batch, landmarks=True)
                times[t] += now() - t0
    finally:
        torch.set_num_threads(default)
    out = {"images": n, "batches": len(chosen),
           "images_per_s_by_torch_threads": {str(t): rate(n, s) for t, s in times.items()}}
    print(f"  bare MTCNN by torch threads over {n} images: "
          f"{out['images_per_s_by_torch_threads']}", flush=True)
    return out


def run_interleaved(data: Path, run_dir: Path, limit: int) -> dict:
    """align_batch_task.fn (files -> detections in a fresh store) and bare detect on the same
    pre-decoded batch, alternately (order swapped every batch), over the first ``limit``
    planned images: the align task's overhead over bare MTCNN, under the same load."""
    import numpy as np

    from fer_core import store
    from fer_core.prepare import ingest
    from fer_core.prepare.align import AlignConfig, load_detector
    from fer_core.prepare.config import build_config
    from tasks import prepare as tp

    store_root = str(run_dir / "store")
    cfg = build_config(str(data))
    root = ingest.data_root(cfg.ingest.root)
    m = tp.ingest_task.fn(cfg.ingest, store_root)
    m = tp.duplicates_task.fn(m, cfg.dedup, store_root)
    m = tp.split_task.fn(m, cfg.split, store_root)
    batches = take(tp.plan_align_batches.fn(m, cfg.align), limit)
    n = sum(len(paths_of(b)) for b in batches)
    tp._detector(cfg.align)
    bare_detector = load_detector(AlignConfig())
    t_task = t_bare = 0.0
    for i, planned in enumerate(batches):
        pixels = np.stack(store.read_images(root, paths_of(planned)))

        def task(planned=planned, i=i):
            return tp.align_batch_task.fn(planned, i, cfg.align, root, store_root)

        def bare(pixels=pixels):
            return bare_detector.detect(pixels, landmarks=True)

        for which, fn in ((("task", task), ("bare", bare)) if i % 2 == 0
                          else (("bare", bare), ("task", task))):
            t0 = now()
            fn()
            dt = now() - t0
            if which == "task":
                t_task += dt
            else:
                t_bare += dt
    out = {"images": n, "batches": len(batches), "align_task_seconds": round(t_task, 2),
           "bare_detect_seconds": round(t_bare, 2), "align_images_per_s": rate(n, t_task),
           "bare_images_per_s": rate(n, t_bare),
           "align_pct_of_bare_mtcnn": round(100 * t_bare / t_task, 1) if t_task else None}
    print(f"  align task {out['align_images_per_s']} img/s, bare {out['bare_images_per_s']} img/s"
          f" = {out['align_pct_of_bare_mtcnn']}%", flush=True)
    shutil.rmtree(run_dir)
    return out


# ---------------------------------------------------------------- phases 3-4: the CLI


def sets_digest(run_dir: Path) -> dict:
    base = run_dir / "sets"
    out = {}
    for p in sorted(base.rglob("*")):
        if p.is_file() and p.suffix in (".json", ".csv") or p.name == "labels.npy":
            out[p.relative_to(base).as_posix()] = file_sha256(p)
    return out


# ---------------------------------------------------------------- main


def summary(res: dict) -> list[str]:
    lines = ["", "== fer prepare on FER2013: summary =="]
    m = res["machine"]
    lines.append(f"machine: {m['cpu_model']}, {m['cpu_count']} CPUs, {m['total_ram_gib']} GiB, "
                 f"torch {m['torch']} ({m['torch_threads']} threads)")
    lines.append(f"data: {res['data']['path']} ({res['data']['files']['total']} files)")
    st = res.get("stages")
    if st:
        lines.append("stage                 seconds     img/s   peak RSS MiB")
        for r in st["stages"]:
            ips = f"{r['images_per_s']:9.1f}" if r["images_per_s"] else " " * 9
            lines.append(f"  {r['stage']:<18} {r['seconds']:9.2f} {ips}   {r['peak_rss_mib']:9.1f}")
        lines.append(f"  {'total':<18} {st['total_seconds']:9.2f}")
        d = st["detection"]
        lines.append(f"detection rate: {d['aligned']}/{d['total']} = {d['rate']:.1%}")
    if res.get("mtcnn"):
        lines.append(f"bare MTCNN: {res['mtcnn']['images_per_s']} img/s; align stage "
                     f"{st['align']['images_per_s'] if st else '?'} img/s = "
                     f"{res['comparison'].get('align_pct_of_bare_mtcnn')}% (target >= "
                     f"{TARGET_ALIGN_PCT}%)")
    if res.get("interleaved"):
        i = res["interleaved"]
        lines.append(f"interleaved over {i['images']} images: align task {i['align_images_per_s']}"
                     f" img/s vs bare {i['bare_images_per_s']} img/s = "
                     f"{i['align_pct_of_bare_mtcnn']}%")
    if res.get("mtcnn_threads"):
        lines.append(f"bare MTCNN img/s by torch threads ({res['mtcnn_threads']['images']} images):"
                     f" {res['mtcnn_threads']['images_per_s_by_torch_threads']}")
    for key in ("stages", "mtcnn", "cli", "cached"):
        cpu = (res.get(key) or {}).get("cpu")
        if cpu:
            lines.append(f"{key}: other processes used {cpu['other_processes_cpu_share']:.0%} of "
                         f"the CPUs (load avg at end {' '.join(cpu['loadavg_end'])})")
    if res.get("cli"):
        c = res["cli"]
        lines.append(f"fer prepare (fresh): {c['wall_seconds']} s wall, scaled to {TARGET_IMAGES} "
                     f"images {res['comparison']['cli_wall_scaled_seconds']} s (target <= "
                     f"{TARGET_WALL_S} s); peak RSS {c['peak_rss_mib']} MiB (target <= "
                     f"{TARGET_RSS_BYTES / 2**20:.0f} MiB; tree sampled "
                     f"{c['peak_tree_rss_sampled_mib']} MiB, of it anon "
                     f"{c['peak_tree_rss_anon_sampled_mib']} MiB)")
    if res.get("cached"):
        c = res["cached"]
        lines.append(f"fer prepare (cached rerun): {c['wall_seconds']} s wall; store: "
                     f"{c.get('store')}")
    if res.get("pass"):
        lines.append("pass: " + ", ".join(f"{k}={v}" for k, v in res["pass"].items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="an extracted FER2013 folder (fer2013/{train,test}/"
                   "<class>/*.jpg); default: extract --tarball into --work/fer2013")
    p.add_argument("--tarball", type=Path, default=TARBALL)
    p.add_argument("--work", type=Path, default=HERE / "work", help="scratch folder (git-ignored)")
    p.add_argument("--out", type=Path, help="run folder for the benchmark's runs "
                   "(default WORK/prepare_run; holds stages/, cli/); wiped on start")
    p.add_argument("--results", type=Path, default=HERE / "results" / "prepare_fer2013.json")
    p.add_argument("--subset", type=int, metavar="N",
                   help="smoke run: only the first N files of each class folder (hard links)")
    p.add_argument("--mtcnn-limit", type=int, metavar="N",
                   help="bare MTCNN over the first N planned images only (default: all)")
    p.add_argument("--thread-variants", type=int, default=2048, metavar="N",
                   help="also time bare MTCNN at the default torch threads vs 1 thread over "
                   "the first N planned images (0: skip)")
    p.add_argument("--interleaved", type=int, default=2048, metavar="N",
                   help="also time the align task and bare MTCNN alternately, batch by batch, "
                   "over the first N planned images (a fresh store; same load for both; "
                   "0: skip)")
    p.add_argument("--cli-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the fer prepare runs (e.g. OMP_NUM_THREADS=1)")
    p.add_argument("--skip-stages", action="store_true", help="skip phase 1 (and 2)")
    p.add_argument("--skip-mtcnn", action="store_true", help="skip phase 2")
    p.add_argument("--skip-cli", action="store_true", help="skip phases 3 and 4 (--skip-full)")
    p.add_argument("--skip-full", dest="skip_cli", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--skip-cached", action="store_true", help="skip phase 4")
    p.add_argument("--code", choices=("snapshot", "live"), default="snapshot",
                   help="snapshot (default): copy fer_core/tasks/flows into RUN/code and run "
                   "that copy throughout; live: import the working tree as it changes")
    p.add_argument("--keep", action="store_true", help="keep the run folders (default: the "
                   "stage-by-stage run is deleted after phase 2 to save disk; cli/ is kept)")
    args = p.parse_args(argv)

    if args.data is None:
        data = extract(args.tarball, args.work)
        tar_info = {"tarball": str(args.tarball), "tarball_sha256": file_sha256(args.tarball)}
    else:
        data, tar_info = args.data, {}
    if args.subset:
        data = make_subset(data, args.subset, args.work)
    data = data.resolve()
    run_root = fresh_dir((args.out or args.work / "prepare_run").resolve())
    args.results.parent.mkdir(parents=True, exist_ok=True)
    code_root = snapshot_code(run_root / "code") if args.code == "snapshot" else REPO
    CHILD_CWD[0] = code_root
    cli_imports = subprocess.run(  # from /tmp: sys.path as the fer script has it
        [sys.executable, "-c", "import fer_cli.main, tasks.prepare, fer_core; print(fer_cli.main."
         "__file__, tasks.prepare.__file__, fer_core.__file__)"], cwd="/tmp",
        capture_output=True, text=True).stdout.split()

    res: dict = {
        "benchmark": "fer prepare on FER2013 (bench/prepare_fer2013.py)",
        "command": shlex.join([sys.executable, *sys.argv]) if argv is None
        else shlex.join([sys.executable, __file__, *argv]),
        "cwd": os.getcwd(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "code": {**code_state(code_root), "fer_subprocess_imports": cli_imports},
        "data": {"path": str(data), "subset_per_class": args.subset, **tar_info,
                 "files": count_images(data)},
        "run_root": str(run_root),
        "targets": {"images": TARGET_IMAGES, "wall_seconds": TARGET_WALL_S,
                    "peak_rss_bytes": TARGET_RSS_BYTES,
                    "align_pct_of_bare_mtcnn": TARGET_ALIGN_PCT},
        "comparison": {},
    }

    def save():
        args.results.write_text(json.dumps(res, indent=2, default=str) + "\n")

    save()
    n_files = res["data"]["files"]["total"]
    print(f"data: {data} ({n_files} files); runs under {run_root}", flush=True)

    if not args.skip_stages:
        print("phase 1: stages (task.fn, fresh store)", flush=True)
        stages_dir = run_root / "stages"
        watch = CpuWatch()
        res["stages"], batches, root = run_stages(data, stages_dir)
        res["stages"]["cpu"] = watch.result()
        save()
        if not args.skip_mtcnn:
            print("phase 2: bare batched MTCNN on the same images", flush=True)
            watch = CpuWatch()
            res["mtcnn"] = run_bare_mtcnn(batches, root, args.mtcnn_limit)
            res["mtcnn"]["cpu"] = watch.result()
            bare = res["mtcnn"]["images_per_s"]
            align = res["stages"]["align"]["images_per_s"]
            res["comparison"]["align_pct_of_bare_mtcnn"] = (
                round(100 * align / bare, 1) if bare and align else None)
            save()
            if args.thread_variants:
                watch = CpuWatch()
                res["mtcnn_threads"] = run_thread_variants(batches, root, args.thread_variants)
                res["mtcnn_threads"]["cpu"] = watch.result()
                save()
        res["stages"]["sets_digest"] = sets_digest(stages_dir)
        if not args.keep:
            shutil.rmtree(stages_dir)

    if args.interleaved:
        print(f"phase 2b: align stage vs bare MTCNN, batch by batch ({args.interleaved} images)",
              flush=True)
        watch = CpuWatch()
        res["interleaved"] = run_interleaved(data, run_root / "interleaved", args.interleaved)
        res["interleaved"]["cpu"] = watch.result()
        res["comparison"]["align_pct_of_bare_mtcnn_interleaved"] = \
            res["interleaved"]["align_pct_of_bare_mtcnn"]
        save()

    cli_env = dict(kv.split("=", 1) for kv in args.cli_env)
    if not args.skip_cli:
        fer = Path(sys.executable).parent / "fer"
        cli_dir = run_root / "cli"
        cmd = [str(fer), "prepare", str(data), "--out", str(cli_dir)]
        print("phase 3: fer prepare, fresh run folder and store", flush=True)
        watch = CpuWatch()
        res["cli"] = run_cli(cmd, run_root / "cli.log", cli_env)
        res["cli"]["cpu"] = watch.result()
        store_root = cli_dir / "store"
        snap = store_snapshot(store_root)
        res["cli"]["store"] = store_diff({}, snap)
        res["cli"]["store_bytes"] = store_size(store_root)
        wall = res["cli"]["wall_seconds"]
        res["comparison"]["cli_images_per_s"] = rate(n_files, wall)
        res["comparison"]["cli_wall_scaled_seconds"] = round(wall * TARGET_IMAGES / n_files, 1)
        if "stages" in res and res["cli"]["returncode"] == 0:
            res["comparison"]["cli_sets_equal_stage_run"] = (
                sets_digest(cli_dir) == res["stages"].get("sets_digest"))
        save()
        if not args.skip_cached and res["cli"]["returncode"] == 0:
            print("phase 4: the same command again (cached)", flush=True)
            time.sleep(1.1)  # so a resealed result gets a new mtime
            watch = CpuWatch()
            res["cached"] = run_cli(cmd, run_root / "cli_cached.log", cli_env)
            res["cached"]["cpu"] = watch.result()
            res["cached"]["store"] = store_diff(snap, store_snapshot(store_root))
            res["comparison"]["cached_fraction_of_fresh"] = round(
                res["cached"]["wall_seconds"] / wall, 3)
            save()

    res["code"]["unchanged_during_run"] = code_hash(code_root) == res["code"]["packages_sha256"]
    if args.code == "snapshot":
        res["code"]["repo_now_differs_from_snapshot"] = (
            code_hash(REPO) != res["code"]["packages_sha256"])
    ok = {}
    if "cli" in res:
        ok["wall_scaled_le_6min"] = bool(res["cli"]["returncode"] == 0 and
                                         res["comparison"]["cli_wall_scaled_seconds"]
                                         <= TARGET_WALL_S)
        ok["peak_rss_le_3GB"] = bool(res["cli"]["returncode"] == 0 and
                                     res["cli"]["peak_rss_bytes"] <= TARGET_RSS_BYTES)
        if "cached" in res:
            ok["peak_rss_le_3GB_cached"] = bool(res["cached"]["returncode"] == 0 and
                                                res["cached"]["peak_rss_bytes"] <= TARGET_RSS_BYTES)
    if res["comparison"].get("align_pct_of_bare_mtcnn_interleaved") is not None:
        ok["align_ge_90pct_bare_mtcnn_interleaved"] = bool(
            res["comparison"]["align_pct_of_bare_mtcnn_interleaved"] >= TARGET_ALIGN_PCT)
    if res["comparison"].get("align_pct_of_bare_mtcnn") is not None:
        ok["align_ge_90pct_bare_mtcnn"] = bool(res["comparison"]["align_pct_of_bare_mtcnn"]
                                               >= TARGET_ALIGN_PCT)
    if "cached" in res:
        ok["cached_rerun_reuses_everything"] = bool(
            res["cached"]["returncode"] == 0 and
            all(v["recomputed"] == 0 for v in res["cached"]["store"].values()))
    res["pass"] = ok
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save()
    print("\n".join(summary(res)), flush=True)
    print(f"results: {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
