"""CPU, one thread: the layers `convzoo.train.cpu_kernels` changes, against torch's own, fp32.

    python benchmarks/cpu_kernels.py            # writes results/cpu_kernels.json (a minute)
    python benchmarks/cpu_kernels.py --smoke    # seconds: one round, writes nothing

- full-extent convolutions, whose kernel covers the whole input (LeNet-5's C5; the 1x1
  squeeze-and-excitation convolutions on a 1x1 pooled map): `nn.Conv2d` against the
  `FullExtentConv2d` convzoo swaps in on the CPU (the same weights, as one `F.linear`);
- 2x2 max-pooling, stride 2 (lenet5_modern's subsampling, VGG's pools): `F.max_pool2d`
  against the maximum of four strided views, autograd doing the backward. The forward is
  what `EvalMaxPool2d` computes where no gradient is recorded; the backward shows why
  training keeps torch's kernel.

Result (results/cpu_kernels.json): full-extent convolutions 2.7-5.0x faster forward+backward
(LeNet-5's C5 at batch 64, contiguous: 0.87 ms against 0.18 ms); the strided max-pool 1.4-9.3x
faster forward but 0.1-0.4x in forward+backward.

Forward under `no_grad` and forward+backward (the input needs a gradient, as inside a model),
contiguous and channels_last. Each figure is the median over rounds of the mean over enough
repeats to fill ~0.1 s; the two ways alternate order between rounds. Outputs and gradients are
checked against torch's to a relative 1e-5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write  # noqa: E402
from convzoo.train.cpu_kernels import FullExtentConv2d  # noqa: E402
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
    if not a.smoke:
        write("cpu_kernels", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
