"""Benchmark: train and evaluate on a RUN_DIR prepared from all of FER2013, the way users do.

    python bench/train_fer2013.py RUN_DIR --config bench/configs/cpu_30min.yaml
    python bench/train_fer2013.py RUN_DIR --config bench/configs/gpu_resnet18.yaml --direct
    python bench/train_fer2013.py RUN_DIR --config bench/configs/gpu_resnet18.yaml \
        --synthetic-throughput

The first form runs ``fer train RUN_DIR --config CONFIG --store FRESH_STORE`` in a
subprocess (a fresh store: nothing cached) and records its wall time, peak RSS, the CPU
share other processes took meanwhile, and the scores it wrote (RUN_DIR/reports/metrics.json:
val, test and any subset such as test_private, per-class F1). The training curves and
confusion matrices are copied to bench/results/<name>/. ``--direct`` calls
``fer_core.train.loop.fit`` in this process instead: for a machine without Prefect (the GPU
machines here), with the same config and the same reports. ``--synthetic-throughput``
times bare forward+backward+step on random data for the same model and settings: the
ceiling the real training loop is compared with (train_<name>_synthetic.json).
<name> is the config file's stem unless --name is given. Not a test.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from measure import CpuWatch, peak_rss_bytes, run_cli, shown_command, shown_path  # noqa: E402

from fer_core import store  # noqa: E402 - after the path set-up above
from fer_core.evaluate.score import REPORTS, to_input  # noqa: E402
from fer_core.models.checkpoint import code_version  # noqa: E402
from fer_core.models.registry import create_model, model_spec  # noqa: E402
from fer_core.runtime.device import (  # noqa: E402
    autocast,
    machine_info,
    resolve_device,
    seed_everything,
    set_threads,
)
from fer_core.train.loop import TrainConfig, fit  # noqa: E402
from fer_core.train.optim import make_optimizer  # noqa: E402

# Issue 9's targets, and issue 32's for the 30-minute recipe and the shipped model.
TARGETS = {"cpu_30min": {"max_wall_seconds": 30 * 60, "min_test_accuracy": 0.67},
           "gpu_resnet18": {"max_train_seconds": 10 * 60, "min_test_private_accuracy": 0.735,
                            "min_feed_ratio": 0.80},
           "shipped": {"max_wall_seconds": 2 * 3600, "min_test_accuracy": 0.685,
                       "min_test_private_accuracy": 0.69, "max_peak_rss_mib": 2.5 * 1024,
                       "max_model_bytes": 10 * 2**20}}
COPIED = ("training_curves.png", "history.csv", "metrics.json")


def synthetic_throughput(cfg: TrainConfig, *, num_classes: int, steps: int,
                         warmup: int) -> dict:
    """Images/s of forward+backward+optimizer step on random uint8 batches (no augmentation,
    no data movement from the host), with the config's model, precision and layout."""
    device = resolve_device(cfg.device)
    set_threads(cfg.num_threads)
    seed_everything(cfg.random_state)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = create_model(cfg.model, num_classes=num_classes).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if cfg.compile else model
    optimizer = make_optimizer(model, cfg)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    size = model_spec(cfg.model).work_size  # what the training loop feeds after its warp
    images = torch.randint(0, 256, (cfg.batch_size, size, size, 3), dtype=torch.uint8,
                           device=device)
    targets = torch.randint(0, num_classes, (cfg.batch_size,), device=device)
    bf16 = cfg.amp if device.type == "cuda" else cfg.cpu_amp
    model.train()

    def step() -> None:
        with autocast(device, bf16, cpu=bf16):
            loss = criterion(step_model(to_input(images, channels_last=cfg.channels_last)),
                             targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):  # cuDNN autotuning, torch.compile, allocator growth
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {"images_per_s": steps * cfg.batch_size / seconds, "seconds": seconds,
            "steps": steps, "warmup_steps": warmup, "batch_size": cfg.batch_size,
            "device": str(device)}


def scores(metrics: dict) -> dict:
    """Accuracy, macro-F1, n and per-class F1 of every scored split in a metrics.json."""
    return {s: {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"],
                "per_class_f1": {c: v["f1"] for c, v in m["per_class"].items()}}
            for s, m in metrics.items() if isinstance(m, dict) and "confusion" in m}


def copy_reports(reports: Path, dest: Path) -> list[str]:
    """Curves, history, metrics and every confusion matrix, beside the results JSON."""
    names = [*COPIED, *sorted(p.name for p in reports.glob("confusion_*"))]
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in names:
        if (reports / name).is_file():
            shutil.copyfile(reports / name, dest / name)
            copied.append(shown_path(dest / name))
    return copied


def run_fer_train(args: argparse.Namespace, name: str) -> dict:
    """`fer train RUN --config CONFIG` with a fresh store, as a user runs it."""
    fer = Path(sys.executable).with_name("fer")
    store_dir = HERE / "work" / f"store_{name}"
    shutil.rmtree(store_dir, ignore_errors=True)  # nothing cached: a full training
    cmd = [str(fer), "train", str(args.run_dir), "--config", str(args.config),
           "--store", str(store_dir)]
    log = HERE / "work" / f"train_{name}.log"
    watch = CpuWatch()
    run = run_cli(cmd, log)
    run["cpu"] = watch.result()
    if run["returncode"] != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed (exit {run['returncode']}); see {log}")
    return run


def run_direct(args: argparse.Namespace, cfg: TrainConfig, name: str) -> dict:
    out_dir = HERE / "work" / name
    watch = CpuWatch()

    def show(r: dict) -> None:
        print(f"epoch {r['epoch']:3d}  loss {r['train_loss']:.3f}  val acc {r['val_acc']:.4f}"
              f"  val F1 {r['val_macro_f1']:.4f}  {r['train_images_per_s']:.0f} img/s",
              flush=True)

    t0 = time.perf_counter()
    fit(args.run_dir, cfg, out_dir=out_dir, resume=False, progress=show)
    return {"command": shown_command([sys.executable, *sys.argv]),
            "wall_seconds": time.perf_counter() - t0, "out_dir": shown_path(out_dir),
            "peak_rss_mib": round(peak_rss_bytes() / 2**20), "cpu": watch.result()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="RUN_DIR written by `fer prepare` (sets/)")
    ap.add_argument("--config", type=Path, required=True, help="YAML file of TrainConfig keys")
    ap.add_argument("--name", help="result name (default: the config file's stem)")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--direct", action="store_true",
                    help="call fit() in this process (a machine without Prefect)")
    ap.add_argument("--synthetic-throughput", action="store_true",
                    help="time forward+backward on random data instead of training")
    ap.add_argument("--steps", type=int, default=50, help="timed steps (synthetic mode)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps (synthetic mode)")
    args = ap.parse_args(argv)

    cfg = TrainConfig.from_file(args.config)
    name = args.name or args.config.stem
    meta = store.read_json(store.sets_dir(args.run_dir) / store.SETS_META)
    record = {"name": name, "config_file": str(args.config), "config": cfg.to_dict(),
              "benchmark_command": shown_command([sys.executable, *sys.argv]),
              "run_dir": str(args.run_dir), "splits": meta["splits"],
              "code_version": code_version()}
    if args.synthetic_throughput:
        record["synthetic"] = synthetic_throughput(cfg, num_classes=len(meta["classes"]),
                                                   steps=args.steps, warmup=args.warmup)
        record["machine"] = machine_info()
        out = args.results / f"train_{name}_synthetic.json"
        store.write_json(out, record)
        print(f"wrote {out}")
        return 0

    run = run_direct(args, cfg, name) if args.direct else run_fer_train(args, name)
    reports = Path(run.get("out_dir", args.run_dir)) / REPORTS
    metrics = store.read_json(reports / "metrics.json")
    history = store.read_csv(reports / "history.csv")
    record |= {"run": run, "wall_seconds": run["wall_seconds"],
               "peak_rss_mib": run["peak_rss_mib"],
               "epochs": int(len(history)), "best_epoch": metrics.get("best_epoch"),
               "train_images_per_s_median": float(history["train_images_per_s"].median()),
               "scores": scores(metrics),
               "figures": copy_reports(reports, args.results / name)}
    # A trial of a recipe (cpu_30min_plain, ...) is held to the recipe's targets.
    goals = next((t for n, t in TARGETS.items() if name == n or name.startswith(f"{n}_")), {})
    model = Path(run.get("out_dir", args.run_dir)) / "model" / "best.pt"
    record["model_bytes"] = model.stat().st_size if model.is_file() else None
    measured = {"max_wall_seconds": run["wall_seconds"], "max_peak_rss_mib": run["peak_rss_mib"],
                "max_model_bytes": record["model_bytes"],
                "min_test_accuracy": record["scores"].get("test", {}).get("accuracy"),
                "min_test_private_accuracy":
                    record["scores"].get("test_private", {}).get("accuracy")}
    record["pass"] = {k: None if measured.get(k) is None
                      else measured[k] <= v if k.startswith("max_") else measured[k] >= v
                      for k, v in goals.items()}
    record["machine"] = machine_info()
    out = args.results / f"train_{name}.json"
    store.write_json(out, record)
    for split, s in record["scores"].items():
        print(f"{split}: accuracy {s['accuracy']:.4f}  macro-F1 {s['macro_f1']:.4f}  n {s['n']}")
    print(f"wall {run['wall_seconds']:.0f} s, peak RSS {run['peak_rss_mib']} MiB; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
