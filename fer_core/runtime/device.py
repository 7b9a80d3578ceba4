"""Where training runs and the work done there outside the model: device choice, CPU
threads, seeds, mixed precision, and batches cut and augmented on the device."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import queue
import random
import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from fer_core import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then Apple's MPS, then the CPU; an explicit choice must exist."""
    if name not in DEVICES:
        raise UsageError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' asked for, but torch sees no CUDA GPU")
    if name == "mps" and not has_mps:
        raise UsageError("device 'mps' asked for, but this torch build has no MPS")
    return torch.device(name)


def set_threads(num_threads: int | None) -> int:
    """Intra-op CPU threads; None means one per core the process may use."""
    if num_threads is None:
        # Affinity, not os.cpu_count(): a container may see 64 cores but own 2.
        num_threads = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                       else os.cpu_count() or 1)
    if num_threads < 1:
        raise UsageError(f"num_threads must be at least 1, got {num_threads}")
    torch.set_num_threads(num_threads)
    return num_threads


@contextlib.contextmanager
def threads(num_threads: int):
    """torch's intra-op threads set to ``num_threads`` for a block, then set back."""
    before = torch.get_num_threads()
    set_threads(num_threads)
    try:
        yield num_threads
    finally:
        torch.set_num_threads(before)


def seed_everything(seed: int) -> None:
    """Seed every generator a training step may draw from (dropout, init, shuffles)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device, enabled: bool, *,
             cpu: bool = False) -> contextlib.AbstractContextManager:
    """bf16 autocast: on CUDA when ``enabled``; on the CPU only when ``cpu`` is asked for
    too. bf16 needs no loss scaling. On CPUs with native bf16 (AVX512-BF16, AMX) oneDNN's
    bf16 convolutions ran a small CNN 2-2.5x faster here; on others bf16 is slower, so the
    CPU case is an explicit choice (TrainConfig.cpu_amp)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def machine_info() -> dict:
    """What a timing was measured on, for benchmark records."""
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "gpu": None,
            "cpu": _cpu_model(), "memory_gib": _memory_gib()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


# ---------------------------------------------------------------- batches on the device
# The sets live on the device as uint8; batches are cut, scaled and augmented there with
# whole-batch tensor ops, so no per-image Python loop runs. Random numbers come from a
# host numpy Generator: cheap to draw, and the same stream on every device.


def to_device_uint8(images: np.ndarray, device: torch.device, chunk: int = 4096) -> torch.Tensor:
    """Copy a (memory-mapped) uint8 array to ``device`` in chunks, never whole on the host."""
    out = torch.empty(images.shape, dtype=torch.uint8, device=device)
    for s in range(0, len(images), chunk):
        out[s:s + chunk].copy_(torch.from_numpy(np.array(images[s:s + chunk])))  # writable copy
    return out


def batches(images: torch.Tensor, targets: torch.Tensor, batch_size: int, *,
            order: np.ndarray | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 NHWC, int64) batches, in ``order`` when given (a shuffle, possibly cut short)."""
    idx = torch.from_numpy(order).to(images.device) if order is not None else None
    n = len(images) if idx is None else len(idx)
    for s in range(0, n, batch_size):
        take = slice(s, s + batch_size) if idx is None else idx[s:s + batch_size]
        yield images[take], targets[take]


def file_batches(read: Callable[[np.ndarray], np.ndarray], targets: np.ndarray,
                 batch_size: int, *, order: np.ndarray | None = None,
                 prefetch: int = 2) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 NHWC, int64 or float32 targets) CPU batches read from disk by ``read(rows)``
    (``store.read_rows``), ``prefetch`` batches ahead on a thread while the model computes.

    Nothing but the batches in flight is held in memory, so a set of any size trains in
    bounded memory. Rows are read in ascending order within a batch (the file is read
    forward); a batch's order does not matter to its gradient.
    """
    order = np.arange(len(targets)) if order is None else np.asarray(order)

    def load(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.sort(order[s:s + batch_size])
        y = targets[rows]  # classes, or (crossentropy) distributions as float32
        return torch.from_numpy(read(rows)), torch.from_numpy(
            y.astype(np.float32 if y.dtype.kind == "f" else np.int64))

    return prefetched((load(s) for s in range(0, len(order), batch_size)), prefetch)


def prefetched(items: Iterable, depth: int) -> Iterator:
    """Iterate ``items`` on a daemon thread, at most ``depth`` ahead; errors re-raise here."""
    if depth < 1:
        yield from items
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put((done, e))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            item, err = q.get()
            if item is done:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()  # a consumer that stops early (break, error) lets the thread end


def shuffled_order(n: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation cut to whole batches: a short last batch would get an outsized step
    (and BatchNorm fails on a single image)."""
    steps = max(1, n // batch_size)
    return rng.permutation(n)[: steps * batch_size if n >= batch_size else n]


def shrink(x: torch.Tensor, size: int) -> torch.Tensor:
    """Halve a float NCHW batch by 2x2 averaging while it stays at least twice ``size``:
    a warp to a much smaller output then samples a prefiltered image, not aliased pixels
    (the 96 px sets hold 48 px faces upscaled, so 96 -> 48 loses nothing)."""
    while min(x.shape[-2:]) >= 2 * size:
        x = F.avg_pool2d(x, 2)
    return x


def augment(x: torch.Tensor, rng: np.random.Generator, *, translate: float, scale: float,
            rotate_deg: float, hflip: bool, size: int | None = None) -> torch.Tensor:
    """Random shift and zoom (a crop with reflected padding), rotation and mirror, done as
    one affine warp of the whole float NCHW batch, to ``size`` x ``size`` pixels (default:
    the input's size)."""
    n = x.shape[0]
    out_hw = (size, size) if size else tuple(x.shape[-2:])
    u = torch.from_numpy(rng.random((n, 5), dtype=np.float32) * 2 - 1)  # uniform [-1, 1)
    angle = u[:, 0] * math.radians(rotate_deg)
    zoom = 1 + u[:, 1] * scale
    flip = torch.where((u[:, 4] < 0) & hflip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output to input coordinates in [-1, 1]: a shift of f*side is 2f.
    theta = torch.stack([torch.stack([cos * flip, -sin, u[:, 2] * 2 * translate], 1),
                         torch.stack([sin * flip, cos, u[:, 3] * 2 * translate], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), [n, x.shape[1], *out_hw],
                         align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def mix(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, *, mixup_alpha: float,
        cutmix_alpha: float, prob: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix (one per batch, chosen at random): (x, partner targets, lambda).

    The loss is then lam * CE(out, y) + (1 - lam) * CE(out, partner).
    """
    if mixup_alpha <= 0 and cutmix_alpha <= 0 or rng.random() >= prob:
        return x, y, 1.0
    cut = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < 0.5)
    alpha = cutmix_alpha if cut else mixup_alpha
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(len(x))).to(x.device)
    if not cut:
        return x.mul(lam).add_(x[perm], alpha=1 - lam), y[perm], lam
    h, w = x.shape[2:]
    ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    return x, y[perm], 1 - (y1 - y0) * (x1 - x0) / (h * w)  # the box may have been clipped
