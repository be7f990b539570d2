"""CPU, one thread: the layers `convzoo.runtime.cpu_kernels` changes, against torch's own, fp32.

    python benchmarks/cpu_kernels.py            # writes results/cpu_kernels.json (a minute)
    python benchmarks/cpu_kernels.py --smoke    # seconds: one round, writes nothing

- full-extent convolutions, whose kernel covers the whole input (LeNet-5's C5; the 1x1
  squeeze-and-excitation convolutions on a 1x1 pooled map): `nn.Conv2d` against the
  `FullExtentConv2d` convzoo swaps in on the CPU (the same weights, as one `F.linear`);
- ReLU's backward with its gradient contiguous against channels_last beside a channels_last
  map (what `LayoutPadShortcut`, `LayoutAdaptiveAvgPool2d` and `LayoutSqueezeExcite` avoid);
- whole channels_last training steps of lenet5, lenet5_modern, resnet20 (bf16) and
  efficientnet_b0 with torch's layers against convzoo's CPU layers, and lenet5's step with
  its C3 gathering each group's inputs (as it does) against slicing one gathered tensor;
- 2x2 max-pooling, stride 2 (lenet5_modern's subsampling, VGG's pools): `F.max_pool2d`
  against the maximum of four strided views, autograd doing the backward. The forward is
  what `EvalMaxPool2d` computes where no gradient is recorded; the backward shows why
  training keeps torch's kernel.

Result (results/cpu_kernels.json): full-extent convolutions 2.6-4.4x faster forward+backward
(LeNet-5's C5 at batch 64, contiguous: 0.95 ms against 0.23 ms); the strided max-pool 1.6-9.3x
faster forward but 0.1-0.4x in forward+backward; ReLU's backward 20x faster with its gradient
channels_last (11.4 ms against 0.57 ms); whole steps with convzoo's layers: lenet5 1.06x,
lenet5_modern 1.13x, resnet20 (bf16) 1.07x to the same weights, efficientnet_b0 1.02x;
lenet5's step with C3 gathering per group 1.11x the sliced form.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write  # noqa: E402
from convzoo.runtime.cpu_kernels import FullExtentConv2d  # noqa: E402
from cpu_conv import mean_ms  # noqa: E402

# name: (C_in, H=W=kernel, C_out, batch)
FULL_EXTENT = {
    "lenet5.C5": (16, 5, 120, 64),
    "lenet5.C5/b128": (16, 5, 120, 128),
    "efficientnet_b0.se_reduce": (96, 1, 4, 64),
    "efficientnet_b0.se_expand": (4, 1, 96, 64),
    "se_resnet50.se_reduce": (256, 1, 16, 64),
    "se_resnet50.se_expand": (16, 1, 256, 64),
}
POOLS = {"lenet5_modern.S2": (64, 6, 28, 28), "lenet5_modern.S4": (64, 16, 10, 10)}


def views_max_pool(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pooling, stride 2, as the maximum of the four strided views (even H, W)."""
    return torch.maximum(torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]),
                         torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]))


def native_max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 2)


def compare(ways: dict[str, Callable[[torch.Tensor], torch.Tensor]], x: torch.Tensor,
            params: list[torch.Tensor], rounds: int, fill_s: float) -> dict[str, Any]:
    """Times and the largest relative difference of the second way from the first."""
    g = torch.randn_like(next(iter(ways.values()))(x))
    times: dict[str, dict[str, list[float]]] = {n: {"forward": [], "train": []} for n in ways}
    names = list(ways)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            f = ways[name]
            with torch.no_grad():
                times[name]["forward"].append(mean_ms(lambda f=f: f(x), fill_s))
            times[name]["train"].append(mean_ms(lambda f=f: f(x).backward(g), fill_s))
    results = []
    for f in ways.values():
        for t in (x, *params):
            t.grad = None
        y = f(x)
        y.backward(g)
        results.append([y.detach(), *(t.grad.clone() for t in (x, *params))])
    diff = max(float((b - a).abs().max() / a.abs().max().clamp_min(1e-30))
               for a, b in zip(*results))
    out: dict[str, Any] = {n: {f"{k}_ms": statistics.median(v) for k, v in times[n].items()}
                           for n in names}
    base, new = names
    out[new]["forward_speedup"] = out[base]["forward_ms"] / out[new]["forward_ms"]
    out[new]["train_speedup"] = out[base]["train_ms"] / out[new]["train_ms"]
    out[new]["max_rel_diff"] = diff
    return out


def full_extent_case(shape: tuple[int, int, int, int], layout: str, rounds: int,
                     fill_s: float) -> dict[str, Any]:
    c, k, o, batch = shape
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    conv = nn.Conv2d(c, o, k).to(memory_format=fmt)
    fast = nn.Conv2d(c, o, k)
    fast.weight, fast.bias = conv.weight, conv.bias  # the same parameters: gradients compare
    fast.__class__ = FullExtentConv2d
    x = torch.randn(batch, c, k, k).contiguous(memory_format=fmt).requires_grad_()
    r = compare({"conv2d": conv, "full_extent_linear": fast}, x,
                [conv.weight, conv.bias], rounds, fill_s)
    return {"input": [batch, c, k, k], "out_channels": o, "layout": layout, **r}


def pool_case(shape: tuple[int, int, int, int], layout: str, rounds: int,
              fill_s: float) -> dict[str, Any]:
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    x = torch.randn(*shape).contiguous(memory_format=fmt).requires_grad_()
    r = compare({"max_pool2d": native_max_pool, "strided_views": views_max_pool}, x, [],
                rounds, fill_s)
    return {"input": list(shape), "layout": layout, **r}


def relu_backward_case(rounds: int, fill_s: float) -> dict[str, Any]:
    """ReLU's backward on a channels_last bf16 map with its gradient in either layout."""
    shape = (128, 16, 32, 32)
    y = torch.relu(torch.randn(*shape, dtype=torch.bfloat16)).contiguous(
        memory_format=torch.channels_last)
    g_cl = torch.randn(*shape, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    g_c = g_cl.contiguous()
    ways = {"gradient_contiguous": g_c, "gradient_channels_last": g_cl}
    times: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(rounds):
        for k in ways if r % 2 == 0 else list(ways)[::-1]:
            times[k].append(mean_ms(
                lambda g=ways[k]: torch.ops.aten.threshold_backward(g, y, 0), fill_s))
    out: dict[str, Any] = {"input": list(shape), "dtype": "bfloat16",
                           **{f"{k}_ms": statistics.median(v) for k, v in times.items()}}
    out["speedup"] = out["gradient_contiguous_ms"] / out["gradient_channels_last_ms"]
    return out


# model: (batch, input size, autocast dtype as convzoo's rule picks it on an AMX CPU)
STEPS = {"lenet5": (64, (1, 32, 32), None),
         "lenet5_modern": (64, (1, 32, 32), None),
         "resnet20": (128, (3, 32, 32), torch.bfloat16),
         "efficientnet_b0": (16, (3, 96, 96), None)}


def step_case(name: str, rounds: int, steps: int) -> dict[str, Any]:
    """A channels_last training step with torch's layers against convzoo's CPU layers
    (`apply_cpu_kernels`); how far apart the weights are after the steps."""
    from convzoo import create_model
    from convzoo.runtime.cpu_kernels import apply_cpu_kernels
    from convzoo.runtime.device import autocast

    batch, size, amp = STEPS[name]
    x = torch.randn(batch, *size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    said: list[str] = []

    def run(swap: bool) -> tuple[float, list[torch.Tensor]]:
        torch.manual_seed(0)
        model = create_model(name, num_classes=10).train().to(
            memory_format=torch.channels_last)
        if swap:
            said[:] = apply_cpu_kernels(model, size)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)

        def step() -> None:
            with autocast(torch.device("cpu"), amp):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        t = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - t) / steps * 1e3, [p.detach() for p in model.parameters()]

    times: dict[str, list[float]] = {"torch_layers": [], "convzoo_layers": []}
    weights = {}
    for r in range(rounds):
        for k in times if r % 2 == 0 else list(times)[::-1]:
            ms, weights[k] = run(k == "convzoo_layers")
            times[k].append(ms)
    out: dict[str, Any] = {"batch": batch, "input": list(size), "steps": steps,
                           "precision": "bfloat16" if amp else "float32", "swapped": said,
                           **{f"{k}_ms_per_step": statistics.median(v) for k, v in times.items()}}
    out["speedup"] = out["torch_layers_ms_per_step"] / out["convzoo_layers_ms_per_step"]
    out["max_weight_difference"] = max(float((a - b).abs().max())
                                       for a, b in zip(*weights.values()))
    return out


def sliced_c3_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    """LeNet-5's C3 as it was: one gathered 60-map tensor, sliced per group of maps."""
    gathered = x.index_select(1, self.index)
    outs, start = [], 0
    for (s, n), conv in zip(self.runs, self.convs):
        outs.append(conv(gathered[:, start:start + s * n]))
        start += s * n
    return torch.cat(outs, 1)


def c3_case(rounds: int, steps: int) -> dict[str, Any]:
    """The paper's lenet5 training step (channels_last, batch 64) with C3 gathering per group
    (convzoo's) against gathering once and slicing."""
    from convzoo.models.lenet import SparseConv

    per_group = SparseConv.forward
    times: dict[str, list[float]] = {"sliced": [], "per_group": []}
    try:
        for r in range(rounds):
            for k in times if r % 2 == 0 else list(times)[::-1]:
                SparseConv.forward = sliced_c3_forward if k == "sliced" else per_group
                times[k].append(step_case("lenet5", 1, steps)["convzoo_layers_ms_per_step"])
    finally:
        SparseConv.forward = per_group
    out: dict[str, Any] = {f"{k}_ms_per_step": statistics.median(v) for k, v in times.items()}
    out["speedup"] = out["sliced_ms_per_step"] / out["per_group_ms_per_step"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="seconds: one round, writes nothing")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rounds, fill = (1, 0.01) if a.smoke else (a.rounds, 0.1)
    result: dict[str, Any] = {"benchmark": "cpu_kernels", **environment(torch.device("cpu")),
                              "smoke": a.smoke, "rounds": rounds, "threads": 1,
                              "full_extent": {}, "max_pool": {}}
    print(f"{'layer':28} {'layout':13} {'torch fwd/train ms':>19} {'new fwd/train ms':>19} "
          f"{'fwd x':>6} {'train x':>7} {'max rel diff':>12}")
    for group, cases, fn, (base, new) in (
            ("full_extent", FULL_EXTENT, full_extent_case, ("conv2d", "full_extent_linear")),
            ("max_pool", POOLS, pool_case, ("max_pool2d", "strided_views"))):
        for name, shape in cases.items():
            for layout in ("contiguous", "channels_last"):
                r = fn(shape, layout, rounds, fill)
                result[group][f"{name}/{layout}"] = r
                b, n = r[base], r[new]
                print(f"{name:28} {layout:13} {b['forward_ms']:8.3f}/{b['train_ms']:8.3f}  "
                      f"{n['forward_ms']:8.3f}/{n['train_ms']:8.3f}  "
                      f"{n['forward_speedup']:5.2f}x {n['train_speedup']:6.2f}x "
                      f"{n['max_rel_diff']:12.1e}", flush=True)
    r = result["relu_backward"] = relu_backward_case(rounds, fill)
    print(f"ReLU backward, bf16 (128, 16, 32, 32) channels_last: gradient contiguous "
          f"{r['gradient_contiguous_ms']:.3f} ms, channels_last "
          f"{r['gradient_channels_last_ms']:.3f} ms ({r['speedup']:.1f}x)")
    result["steps"] = {}
    for name in STEPS:
        r = result["steps"][name] = step_case(name, rounds, 2 if a.smoke else 10)
        print(f"{name} {r['precision']} training step, batch {r['batch']}: torch's layers "
              f"{r['torch_layers_ms_per_step']:.2f} ms, convzoo's "
              f"{r['convzoo_layers_ms_per_step']:.2f} ms ({r['speedup']:.2f}x; "
              f"{', '.join(r['swapped'])}); weights after the steps differ by at most "
              f"{r['max_weight_difference']:.1e}", flush=True)
    r = result["lenet5_c3"] = c3_case(rounds, 2 if a.smoke else 30)
    print(f"lenet5 training step: C3 sliced from one gather {r['sliced_ms_per_step']:.2f} ms, "
          f"gathered per group {r['per_group_ms_per_step']:.2f} ms ({r['speedup']:.2f}x)")
    if not a.smoke:
        write("cpu_kernels", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
