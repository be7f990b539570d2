"""CPU, one thread: few-channel convolutions through torch's native kernel (oneDNN) against an
explicit im2col + matrix multiply, forward and forward+backward, fp32.

    python benchmarks/cpu_conv.py            # writes results/cpu_conv.json (a few minutes)
    python benchmarks/cpu_conv.py --smoke    # seconds: batch 64, one round, writes nothing

Three ways for each shape, batch and memory layout (contiguous, channels_last):

- native: `F.conv2d`, its backward torch's own;
- unfold_autograd: `F.unfold`, a matrix multiply and the bias as differentiable ops, autograd
  doing the backward (through `F.fold`);
- im2col_function: a `torch.autograd.Function` that builds the columns as (C*kh*kw, B*L) in
  one strided copy, one GEMM forward, one GEMM for the weight gradient
  (B*L folded into the reduction), the input gradient (GEMM, then one strided add per offset)
  only when `ctx.needs_input_grad` asks for it. Its output is written in the input's layout.

The shapes are the first convolutions of the small CPU models: lenet5_modern's C1 and C3,
resnet20's stem and first-stage convolution, resnet_fmnist_s's stem and first convolution.
A stem's input needs no gradient (it is the image); the others' does, as inside a model. Each
figure is the median over rounds of the mean over enough repeats to fill ~0.1 s; the three
ways alternate order between rounds. A win is a forward+backward ratio native / im2col >= 1.3.

Result (`python benchmarks/cpu_conv.py`, results/cpu_conv.json): no win for any shape, batch
or layout, so convzoo has no im2col kernel. The best is lenet5_modern's C1 at batch 64,
contiguous: native 1.15 ms forward+backward, the im2col Function 1.34 ms (0.86x); C3 at batch
64 is 1.52 ms native against 3.00 ms (0.51x); resnet20's first-stage convolution at batch 128,
channels_last, 11.8 ms against 149 ms (0.08x). The unfold + autograd version is 0.05x-0.39x.
Both agree with native to a relative 1.5e-5. The columns hold kh*kw copies of the input, and
writing and reading them once per GEMM costs more on one core than oneDNN's whole
convolution, even where the GEMMs themselves are cheap.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, matmul_peak, write  # noqa: E402

# name: (C_in, H, W, C_out, kernel, padding, input needs a gradient)
SHAPES = {
    "lenet5_modern.C1": (1, 32, 32, 6, 5, 0, False),
    "lenet5_modern.C3": (6, 14, 14, 16, 5, 0, True),
    "resnet20.stem": (3, 32, 32, 16, 3, 1, False),
    "resnet20.stage1": (16, 32, 32, 16, 3, 1, True),
    "resnet_fmnist_s.stem": (1, 28, 28, 16, 3, 1, False),
    "resnet_fmnist_s.stage1": (16, 28, 28, 32, 3, 1, True),
}
Conv = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", int], torch.Tensor]


def native(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, p: int) -> torch.Tensor:
    return F.conv2d(x, w, b, 1, p)


def unfold_autograd(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                    p: int) -> torch.Tensor:
    B, _, H, W = x.shape
    O, _, k, _ = w.shape
    out = w.reshape(O, -1) @ F.unfold(x, k, padding=p)  # (B, O, L)
    if b is not None:
        out = out + b.view(1, O, 1)
    return out.view(B, O, H + 2 * p - k + 1, W + 2 * p - k + 1)


class _Im2col(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                p: int) -> torch.Tensor:
        B, C, H, W = x.shape
        O, _, k, _ = w.shape
        Ho, Wo = H + 2 * p - k + 1, W + 2 * p - k + 1
        cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        xp = F.pad(x, (p, p, p, p)) if p else x
        sB, sC, sH, sW = xp.stride()
        # (C, k, k, B, Ho, Wo) as one strided view copied once (rows of Wo stay contiguous):
        # faster here than a copy per kernel offset, and the (K, B*L) matrix the GEMMs want
        cols = xp.as_strided((C, k, k, B, Ho, Wo), (sC, sH, sW, sB, sH, sW),
                             xp.storage_offset()).reshape(C * k * k, B * Ho * Wo)
        wm = w.reshape(O, -1)
        if cl:  # (B*L, O) is NHWC as it stands
            out = cols.t() @ wm.t() if b is None else torch.addmm(b, cols.t(), wm.t())
            out = out.view(B, Ho, Wo, O).permute(0, 3, 1, 2)
        else:
            out = wm @ cols if b is None else torch.addmm(b.view(O, 1), wm, cols)
            out = out.view(O, B, Ho, Wo).transpose(0, 1).contiguous()
        ctx.save_for_backward(cols, w)
        ctx.geometry = (B, C, H, W, p, Ho, Wo, cl, b is not None)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        cols, w = ctx.saved_tensors
        B, C, H, W, p, Ho, Wo, cl, has_bias = ctx.geometry
        O, _, k, _ = w.shape
        # (O, B*L) without a copy when the gradient is channels_last
        gm = (g.permute(0, 2, 3, 1).reshape(-1, O).t() if cl
              else g.transpose(0, 1).reshape(O, -1))
        gx = gw = gb = None
        if ctx.needs_input_grad[1]:
            gw = (gm @ cols.t()).view_as(w)
        if has_bias and ctx.needs_input_grad[2]:
            gb = gm.sum(1)
        if ctx.needs_input_grad[0]:
            gc = (w.reshape(O, -1).t() @ gm).view(C, k, k, B, Ho, Wo)
            gxp = g.new_zeros(C, B, H + 2 * p, W + 2 * p)
            for i in range(k):
                for j in range(k):
                    gxp[:, :, i:i + Ho, j:j + Wo] += gc[:, i, j]
            fmt = torch.channels_last if cl else torch.contiguous_format
            gx = gxp[:, :, p:p + H, p:p + W].transpose(0, 1).contiguous(memory_format=fmt)
        return gx, gw, gb, None


def im2col_function(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                    p: int) -> torch.Tensor:
    return _Im2col.apply(x, w, b, p)


WAYS: dict[str, Conv] = {"native": native, "unfold_autograd": unfold_autograd,
                         "im2col_function": im2col_function}


def mean_ms(f: Callable[[], Any], fill_s: float) -> float:
    f()
    n, t = 1, time.perf_counter()
    f()
    once = max(time.perf_counter() - t, 1e-6)
    n = max(1, int(fill_s / once))
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n * 1e3


def check(way: Conv, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, p: int) -> float:
    """Largest difference from native over output and gradients, each relative to the largest
    magnitude of native's tensor (the bias gradient of a ones gradient is B*L, so absolute
    differences there are fp32 rounding of large sums)."""
    outs = []
    for f in (native, way):
        for t in (x, w, b):
            t.grad = None
        y = f(x, w, b, p)
        y.backward(torch.ones_like(y))
        outs.append([y.detach(), *(t.grad for t in (x, w, b) if t.grad is not None)])
    return max(float((c - a).abs().max() / a.abs().max()) for a, c in zip(*outs))


def case(shape: tuple, batch: int, layout: str, rounds: int, fill_s: float) -> dict[str, Any]:
    C, H, W, O, k, p, input_grad = shape
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    x = torch.randn(batch, C, H, W).contiguous(memory_format=fmt).requires_grad_(input_grad)
    w = (torch.randn(O, C, k, k) / (C * k * k) ** 0.5).contiguous(memory_format=fmt)
    w.requires_grad_()
    b = torch.randn(O).requires_grad_()
    g = torch.randn_like(native(x, w, b, p))
    times: dict[str, dict[str, list[float]]] = {n: {"forward": [], "train": []} for n in WAYS}

    def step(f: Conv) -> None:
        f(x, w, b, p).backward(g)

    names = list(WAYS)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            f = WAYS[name]
            with torch.no_grad():
                times[name]["forward"].append(mean_ms(lambda f=f: f(x, w, b, p), fill_s))
            times[name]["train"].append(mean_ms(lambda f=f: step(f), fill_s))
    out: dict[str, Any] = {"input": [batch, C, H, W], "out_channels": O, "kernel": k,
                           "padding": p, "input_grad": input_grad, "layout": layout}
    for name in names:
        out[name] = {f"{kind}_ms": statistics.median(v) for kind, v in times[name].items()}
        if name != "native":
            out[name]["max_rel_diff"] = check(WAYS[name], x, w, b, p)
            out[name]["train_speedup"] = out["native"]["train_ms"] / out[name]["train_ms"]
            out[name]["forward_speedup"] = out["native"]["forward_ms"] / out[name]["forward_ms"]
    macs = batch * O * C * k * k * (H + 2 * p - k + 1) * (W + 2 * p - k + 1)
    out["macs"] = macs
    out["native"]["train_gflop_s"] = (3 if input_grad else 2) * 2 * macs / (
        out["native"]["train_ms"] * 1e6)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="seconds: batch 64, one round")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    torch.set_num_threads(1)  # the per-core question; the training run picks its own count
    rounds, fill = (1, 0.02) if a.smoke else (a.rounds, 0.1)
    batches = (64,) if a.smoke else (64, 128)
    result: dict[str, Any] = {"benchmark": "cpu_conv", **environment(torch.device("cpu")),
                              "smoke": a.smoke, "rounds": rounds, "threads": 1,
                              "win_threshold": 1.3, "cases": {}}
    head = (f"{'shape':24} {'B':>4} {'layout':13} {'native fwd/train ms':>20} "
            f"{'unfold x':>9} {'im2col fwd/train ms':>20} {'im2col x':>9}")
    print(head)
    for name, shape in SHAPES.items():
        for batch in batches:
            for layout in ("contiguous", "channels_last"):
                r = case(shape, batch, layout, rounds, fill)
                result["cases"][f"{name}/b{batch}/{layout}"] = {"shape": name, **r}
                n, u, f = r["native"], r["unfold_autograd"], r["im2col_function"]
                print(f"{name:24} {batch:4} {layout:13} "
                      f"{n['forward_ms']:9.3f}/{n['train_ms']:9.3f}  {u['train_speedup']:8.2f}x "
                      f"{f['forward_ms']:9.3f}/{f['train_ms']:9.3f}  {f['train_speedup']:8.2f}x",
                      flush=True)
    best = max(result["cases"].items(),
               key=lambda kv: max(kv[1][w]["train_speedup"] for w in WAYS if w != "native"))
    best_x = max(best[1][w]["train_speedup"] for w in WAYS if w != "native")
    result["matmul_peak_gflop_s"] = matmul_peak(256 if a.smoke else 2048)
    result["best_train_speedup"] = {"case": best[0], "speedup": best_x}
    result["im2col_wins"] = best_x >= result["win_threshold"]
    print(f"best im2col forward+backward speedup {best_x:.2f}x ({best[0]}); "
          f"{'a win' if result['im2col_wins'] else 'no win'} at the 1.3x threshold; "
          f"fp32 matmul peak {result['matmul_peak_gflop_s']:.0f} GFLOP/s")
    if not a.smoke:  # a smoke run checks the script, its figures are not worth keeping
        write("cpu_conv", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
