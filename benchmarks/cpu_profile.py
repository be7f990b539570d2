"""Where a CPU training step's time goes: torch's profiler over convzoo's step and the plain
loop's, one thread, for lenet5_modern (batch 64, 1x32x32) and resnet20 (batch 128, 3x32x32).

    python benchmarks/cpu_profile.py            # writes results/cpu_profile.json (a minute)
    python benchmarks/cpu_profile.py --smoke    # seconds, writes nothing

convzoo's step is the one `fit` takes on the CPU: channels_last, the faster CPU layers
(`train.cpu_kernels`), bf16 autocast where `train.device.cpu_auto_amp` chooses it, SGD's fused
step; the plain one: the default layout, fp32, torch's default SGD step. Both: forward, cross
entropy, backward, step, on in-memory random batches. Reported: milliseconds per step (unprofiled)
and each operator's share of a profiled step (self CPU time, summed over calls), the top ones
by name, so a gap between the two shows in the operators where it is; and the rate of the
convolutions alone: 6 x their multiply-adds per image (forward, input and weight gradients)
over the time in torch's convolution kernels (`mkldnn_convolution`, `convolution_backward`),
against a 2048 x 2048 matmul's GFLOP/s on the same thread in the precision the step ran in.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, matmul_peak, write  # noqa: E402
from convzoo import create_model  # noqa: E402
from convzoo.runtime.cpu_kernels import apply_cpu_kernels  # noqa: E402
from convzoo.runtime.device import autocast, cpu_auto_amp  # noqa: E402

CASES = {"lenet5_modern": (64, (1, 32, 32)), "resnet20": (128, (3, 32, 32))}


def make_step(name: str, size: tuple[int, int, int], convzoo: bool) -> tuple[Any, Any, str]:
    torch.manual_seed(0)
    model = create_model(name).train()
    amp, said = None, "plain: contiguous, fp32, default SGD step"
    if convzoo:
        model = model.to(memory_format=torch.channels_last)
        amp, why = cpu_auto_amp(model, size)
        said = ", ".join(["convzoo: channels_last", why, *apply_cpu_kernels(model, size),
                          "fused SGD step"])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4,
                          **({"fused": True} if convzoo else {}))
    fmt = torch.channels_last if convzoo else torch.contiguous_format

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with autocast(torch.device("cpu"), amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step.model, step.amp = model, amp  # type: ignore[attr-defined]
    return step, fmt, said


CONV_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward")


def conv_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds per image of the layers that run as torch convolutions (exactly
    `nn.Conv2d`: a layer swapped for a matrix product is not timed as one)."""
    total = 0

    def count(m: torch.nn.Module, args: Any, out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += out[0].numel() * (m.in_channels // m.groups) * k

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if type(m) is torch.nn.Conv2d]
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    return total


def profile_case(name: str, batch: int, size: tuple[int, int, int], convzoo: bool,
                 steps: int, top: int) -> dict[str, Any]:
    step, fmt, said = make_step(name, size, convzoo)
    x = torch.randn(batch, *size).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    for _ in range(3):
        step(x, y)
    t = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    unprofiled_ms = (time.perf_counter() - t) / steps * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step(x, y)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total_us = sum(e.self_cpu_time_total for e in ops)
    conv_ms = sum(e.self_cpu_time_total for e in ops if e.key in CONV_OPS) / steps / 1e3
    macs = conv_macs(step.model, x)
    return {"how": said, "batch": batch, "input": list(size), "steps": steps,
            "precision": "bfloat16" if step.amp is torch.bfloat16 else "float32",
            "ms_per_step": unprofiled_ms, "images_per_s": batch / unprofiled_ms * 1e3,
            "profiled_ms_per_step": total_us / steps / 1e3,
            "conv_macs_per_image": macs, "conv_ms_per_step": conv_ms,
            "conv_share": conv_ms * steps * 1e3 / total_us,
            "conv_gflop_s": 6 * macs * batch / (conv_ms * 1e6) if conv_ms else None,
            "top_ops": [{"op": e.key, "ms_per_step": e.self_cpu_time_total / steps / 1e3,
                         "share": e.self_cpu_time_total / total_us,
                         "calls_per_step": e.count / steps} for e in ops[:top]]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="seconds: a few steps, writes nothing")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    steps = 3 if a.smoke else 30
    result: dict[str, Any] = {"benchmark": "cpu_profile", **environment(torch.device("cpu")),
                              "smoke": a.smoke, "threads": 1, "cases": {}}
    n = 512 if a.smoke else 2048
    peaks = {"float32": matmul_peak(n), "bfloat16": matmul_peak(n, dtype=torch.bfloat16)}
    result["matmul_peaks_gflop_s"] = peaks
    print(f"matmul {n}x{n} on 1 thread: fp32 {peaks['float32']:.0f} GFLOP/s, bf16 "
          f"{peaks['bfloat16']:.0f}")
    for name, (batch, size) in CASES.items():
        for kind in ("convzoo", "plain"):
            r = profile_case(name, batch, size, kind == "convzoo", steps, 12)
            if r["conv_gflop_s"]:
                r["conv_fraction_of_peak"] = r["conv_gflop_s"] / peaks[r["precision"]]
            result["cases"][f"{name}/{kind}"] = r
            print(f"{name} {kind}: {r['ms_per_step']:.2f} ms/step "
                  f"({r['images_per_s']:,.0f} img/s); {r['how']}")
            if r["conv_gflop_s"]:
                print(f"  convolutions: {r['conv_ms_per_step']:.2f} ms/step "
                      f"({100 * r['conv_share']:.0f}% of the step), {r['conv_gflop_s']:.0f} "
                      f"GFLOP/s = {100 * r['conv_fraction_of_peak']:.0f}% of the "
                      f"{r['precision']} matmul peak")
            for o in r["top_ops"][:8]:
                print(f"    {o['op']:44} {o['ms_per_step']:7.3f} ms {100 * o['share']:5.1f}%")
        c, pl = result["cases"][f"{name}/convzoo"], result["cases"][f"{name}/plain"]
        result["cases"][f"{name}/speedup"] = pl["ms_per_step"] / c["ms_per_step"]
        print(f"{name}: convzoo {pl['ms_per_step'] / c['ms_per_step']:.2f}x the plain step")
    if not a.smoke:
        write("cpu_profile", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
