"""What every benchmark records beside its figures: device, library versions, date."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

# $CONVZOO_BENCH_RESULTS sends results elsewhere (gpu_suite.py --smoke: a test's temporary folder)
RESULTS = Path(os.environ.get("CONVZOO_BENCH_RESULTS")
               or Path(__file__).resolve().parent / "results")


def environment(device: torch.device) -> dict[str, Any]:
    import torchvision

    import convzoo

    if device.type == "cuda":
        dev = torch.cuda.get_device_name(device)
    else:
        dev = f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
              f"{torch.get_num_threads()} torch threads"
    return {"device": dev, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": {"convzoo": convzoo.__version__, "torch": torch.__version__,
                         "torchvision": torchvision.__version__,
                         "python": platform.python_version()},
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


def write(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(n: int = 2048, iters: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """Best GFLOP/s of an n x n CPU matrix multiply in `dtype` at the current thread count:
    the peak the CPU benchmarks hold their convolutions and training steps against."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(iters):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best
