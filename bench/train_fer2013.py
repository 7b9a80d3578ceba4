"""Benchmark: train on a RUN_DIR prepared from all of FER2013 and record time and accuracy.

    python bench/train_fer2013.py RUN_DIR --config bench/configs/gpu_resnet18.yaml
    python bench/train_fer2013.py RUN_DIR --config bench/configs/gpu_resnet18.yaml \
        --synthetic-throughput

The first form runs ``fer_core.train.fit`` and writes bench/results/train_<name>.json
(machine, command, wall time, training images/s, val/test accuracy and macro-F1). The
second times bare forward+backward+step on random data for the same model and settings
(train_<name>_synthetic.json): the ceiling the real training loop can be compared with.
<name> is the config file's stem unless --name is given. Not a test.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
from pathlib import Path

import torch
from torch import nn

from fer_core import store
from fer_core.checkpoint import code_version
from fer_core.device import autocast, machine_info, resolve_device, seed_everything, set_threads
from fer_core.evaluate import to_input
from fer_core.models import create_model, model_spec
from fer_core.train import TrainConfig, fit, make_optimizer

BENCH = Path(__file__).resolve().parent


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
    size = model_spec(cfg.model).input_size
    images = torch.randint(0, 256, (cfg.batch_size, size, size, 3), dtype=torch.uint8,
                           device=device)
    targets = torch.randint(0, num_classes, (cfg.batch_size,), device=device)
    model.train()

    def step() -> None:
        with autocast(device, cfg.amp):
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="RUN_DIR written by `fer prepare` (sets/)")
    ap.add_argument("--config", type=Path, required=True, help="YAML file of TrainConfig keys")
    ap.add_argument("--name", help="result name (default: the config file's stem)")
    ap.add_argument("--out-dir", type=Path,
                    help="checkpoints and reports (default: bench/work/<name>)")
    ap.add_argument("--results", type=Path, default=BENCH / "results")
    ap.add_argument("--fresh", action="store_true", help="ignore an earlier last.pt")
    ap.add_argument("--synthetic-throughput", action="store_true",
                    help="time forward+backward on random data instead of training")
    ap.add_argument("--steps", type=int, default=50, help="timed steps (synthetic mode)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps (synthetic mode)")
    args = ap.parse_args(argv)

    cfg = TrainConfig.from_file(args.config)
    name = args.name or args.config.stem
    meta = store.read_json(store.sets_dir(args.run_dir) / store.SETS_META)
    record = {"name": name, "config_file": str(args.config), "config": cfg.to_dict(),
              "command": shlex.join([sys.executable, *sys.argv]),
              "run_dir": str(args.run_dir), "splits": meta["splits"],
              "code_version": code_version()}
    t0 = time.perf_counter()
    if args.synthetic_throughput:
        record["synthetic"] = synthetic_throughput(cfg, num_classes=len(meta["classes"]),
                                                   steps=args.steps, warmup=args.warmup)
        out = args.results / f"train_{name}_synthetic.json"
    else:
        out_dir = args.out_dir or BENCH / "work" / name

        def show(r: dict) -> None:
            print(f"epoch {r['epoch']:3d}  loss {r['train_loss']:.3f}  "
                  f"val acc {r['val_acc']:.4f}  val F1 {r['val_macro_f1']:.4f}  "
                  f"{r['train_images_per_s']:.0f} img/s", flush=True)

        result = fit(args.run_dir, cfg, out_dir=out_dir, resume=not args.fresh, progress=show)
        record |= {
            "out_dir": str(out_dir), "train_images": result.train_images,
            "train_seconds": result.train_seconds,
            "images_per_s": result.train_images / max(result.train_seconds, 1e-9),
            "best_epoch": result.best_epoch, "last_epoch": result.last_epoch,
            "stopped_early": result.stopped_early,
            **{split: {k: m[k] for k in ("accuracy", "macro_f1", "n")}
               for split, m in result.metrics.items()},
        }
        out = args.results / f"train_{name}.json"
    record["wall_seconds"] = time.perf_counter() - t0
    record["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    record["machine"] = machine_info()  # after the run: includes the threads torch used
    store.write_json(out, record)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
