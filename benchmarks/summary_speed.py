"""Wall time of `convzoo.summary` for every registered model at its default input (CPU).

Peer: torchinfo's `summary` on the same convzoo models (it runs a real forward pass, so the
model is built with real weights first; construction is timed apart). Run:

    .venv/bin/python benchmarks/summary_speed.py [PATTERN]
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

import convzoo
from common import environment, write


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    pattern = sys.argv[1] if len(sys.argv) > 1 else None
    try:
        import torchinfo
    except ImportError:
        torchinfo = None
    convzoo.summary("lenet5")  # import and first-call costs are paid once, outside the timings
    rows = []
    for name in convzoo.list_models(pattern):
        ours = timed(lambda n=name: convzoo.summary(n))
        prof = convzoo.summary(name)
        row = {"model": name, "params": prof.total_params, "macs": prof.total_macs,
               "convzoo_summary_s": round(ours, 4)}
        if torchinfo is not None:
            t = time.perf_counter()
            model = convzoo.create_model(name).eval()
            row["build_real_model_s"] = round(time.perf_counter() - t, 4)
            size = (1, *model.default_input_size)
            with torch.no_grad():
                peer = timed(lambda m=model, s=size: torchinfo.summary(m, s, verbose=0), 1)
            row["torchinfo_summary_s"] = round(peer, 4)
            row["ratio_torchinfo_over_convzoo"] = round(peer / ours, 1)
            del model
        rows.append(row)
        print(row, flush=True)
    ours = [r["convzoo_summary_s"] for r in rows]
    payload = {
        "benchmark": "convzoo summary at each model's default input, wall seconds (best of 3)",
        "models": len(rows),
        "convzoo_max_s": max(ours),
        "convzoo_median_s": statistics.median(ours),
        "rows": rows,
    }
    if torchinfo is not None:
        peer = [r["torchinfo_summary_s"] for r in rows]
        payload["torchinfo_version"] = torchinfo.__version__ if hasattr(
            torchinfo, "__version__") else "unknown"
        payload["torchinfo_median_s"] = statistics.median(peer)
    path = write("summary_speed_cpu", {**environment(torch.device("cpu")), **payload})
    print(f"max {max(ours):.3f}s, median {statistics.median(ours):.3f}s per model -> {path}")


if __name__ == "__main__":
    main()
