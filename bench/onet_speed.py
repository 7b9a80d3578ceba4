"""O-Net's speed per crop on the CPU: torch.jit trace + freeze + optimize_for_inference
(what fer_core.prepare.onet.frozen does; deprecated in torch 2.14 with a FutureWarning)
against the replacements that need no compiler toolchain: eager with channels_last, and
eager in plain layout. Outputs compared with the eager net's.

    .venv/bin/python bench/onet_speed.py    # writes bench/results/onet_speed.json
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.measure import CpuWatch, now, write_result  # noqa: E402
from fer_core.prepare import onet  # noqa: E402
from fer_core.prepare.align import AlignConfig, load_detector  # noqa: E402

N, REPEATS = 256, 15  # crops per call (a retry pass over a batch is ~1.2 crops per image)


def per_crop_ms(variants: dict) -> dict[str, float]:
    """Each variant's best time of REPEATS, interleaved (the machine may be shared: the best
    time is the one least slowed by others, and interleaving spreads their load evenly)."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.inference_mode():
        for net, x in variants.values():
            net(x)  # warm-up
        for _ in range(REPEATS):
            for name, (net, x) in variants.items():
                t = now()
                net(x)
                times[name].append(now() - t)
    return {k: round(1000 * min(v) / N, 4) for k, v in times.items()}


def main() -> None:
    torch.set_num_threads(1)  # as alignment runs: one torch thread per worker
    detector = load_detector(AlignConfig(device="cpu"))
    eager = detector.onet.eval()
    crops = np.random.default_rng(0).integers(0, 256, (N, onet.SIZE, onet.SIZE, 3), np.uint8)
    x = (torch.from_numpy(crops).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125
    x_last = x.contiguous(memory_format=torch.channels_last)
    watch = CpuWatch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frozen = onet.frozen(detector)
    deprecations = sorted({str(w.message)[:80] for w in caught
                           if issubclass(w.category, FutureWarning)})
    with torch.inference_mode():
        ref = [t.numpy() for t in eager(x)]
        got = [t.numpy() for t in frozen(x_last)]
    record = {
        "crops_per_call": N, "torch_threads": 1, "repeats_median_of": REPEATS,
        "ms_per_crop_best": per_crop_ms({"jit_trace_freeze_optimize": (frozen, x_last),
                                         "eager_channels_last": (eager, x_last),
                                         "eager": (eager, x)}),
        "frozen_max_abs_diff": max(float(np.abs(a - b).max()) for a, b in
                                   zip(ref, got, strict=True)),
        "future_warnings_reaching_a_caller": deprecations,
        **watch.result(),
    }
    print(record["ms_per_crop_best"], "warnings:", deprecations)
    write_result(Path(__file__).parent / "results" / "onet_speed.json", record)


if __name__ == "__main__":
    main()
