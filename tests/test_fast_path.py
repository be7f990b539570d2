"""The CPU fast path (channels_last, fused optimiser steps, thread choice, inference_mode,
the faster CPU layers) gives the plain path's results, within float32 rounding.

Tolerances: a few SGD steps of a small net from the same weights and batches agree to
rtol 1e-4 / atol 1e-5 (both paths compute in fp32; oneDNN's blocked kernels sum in another
order, a few ulps per step); one forward pass agrees to rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch

from convzoo import create_model
from convzoo.evaluation.score import evaluate
from convzoo.runs.checkpoint import load_checkpoint
from convzoo.runtime import device as dev
from convzoo.train import run as run_module
from convzoo.train import schedules
from convzoo.train.config import TrainConfig
from convzoo.train.loop import fit

RTOL, ATOL = 1e-4, 1e-5


def _fit(out: Path, **kw) -> dict[str, torch.Tensor]:
    cfg = TrainConfig(model="lenet5_modern", data="fake:1x28x28:96:4", epochs=2, batch_size=16,
                      lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                      device="cpu", out=str(out), plots=False, tensorboard=False, **kw)
    fit(cfg)
    return load_checkpoint(out, prefer="last").tensors("model")


def test_fast_path_trains_to_the_plain_paths_weights(tmp_path: Path, monkeypatch) -> None:
    fast = _fit(tmp_path / "fast")  # the defaults: channels_last and the fused step on the CPU
    monkeypatch.setattr(schedules, "step_kind", lambda groups: {})  # torch's default step
    monkeypatch.setattr(run_module, "apply_cpu_kernels", lambda *a: [])  # torch's own layers
    plain = _fit(tmp_path / "plain", channels_last=False)
    fast_summary = json.loads((tmp_path / "fast" / "summary.json").read_text())
    assert fast_summary["cpu_kernels"] == ["1 full-extent conv as linear",
                                           "2 2x2 max-pools as strided maxima in evaluation"]
    assert json.loads((tmp_path / "plain" / "summary.json").read_text())["cpu_kernels"] == []
    assert fast.keys() == plain.keys()
    moved = 0
    for k in fast:
        torch.testing.assert_close(fast[k], plain[k], rtol=RTOL, atol=ATOL, msg=k)
        moved += int(not torch.equal(fast[k], create_model("lenet5_modern", num_classes=4)
                                     .state_dict()[k]))
    assert moved > 0  # the comparison is of trained weights


def test_cpu_run_says_how_it_computes(tmp_path: Path) -> None:
    _fit(tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["channels_last"] is True
    assert re.search(r"\d+ threads?\)", summary["device"]), summary["device"]


@pytest.mark.parametrize("name,size", [("lenet5", (1, 32, 32)), ("lenet5_modern", (1, 32, 32)),
                                       ("resnet20", (3, 32, 32))])
def test_channels_last_gives_the_same_outputs(name: str, size: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(8, *size)
    with torch.inference_mode():
        plain = model(x)
        fast = model.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(fast, plain, rtol=RTOL, atol=ATOL)


def test_fused_step_after_loading_state_matches_the_loop() -> None:
    # A loaded momentum buffer is contiguous; the fused CPU step on a channels_last weight
    # must still pair each element with its own momentum (resuming depends on it).
    torch.manual_seed(0)
    w0, grad, buf = torch.randn(4, 3, 3, 3), torch.randn(4, 3, 3, 3), torch.randn(4, 3, 3, 3)
    cfg = TrainConfig(lr=0.1, momentum=0.9, weight_decay=0.0)
    out = {}
    for fused in (False, True):
        p = torch.nn.Parameter(w0.clone().contiguous(memory_format=torch.channels_last))
        model = torch.nn.Module()
        model.p = p
        opt = (schedules.make_optimizer(model, cfg) if fused else
               torch.optim.SGD([p], lr=0.1, momentum=0.9, foreach=False))
        state = opt.state_dict()
        state["state"] = {0: {"momentum_buffer": buf.clone()}}
        opt.load_state_dict(state)
        p.grad = grad.clone().contiguous(memory_format=torch.channels_last)
        opt.step()
        out[fused] = p.detach().clone()
    assert schedules.step_name(opt) == "fused SGD"
    torch.testing.assert_close(out[True], out[False], rtol=RTOL, atol=ATOL)


def test_optimisers_take_the_fused_or_foreach_step() -> None:
    model = torch.nn.Conv2d(3, 4, 3)
    for name, kind in (("sgd", "fused"), ("adam", "fused"), ("adamw", "fused"),
                       ("rmsprop", "foreach")):
        opt = schedules.make_optimizer(model, TrainConfig(optimizer=name))
        assert schedules.step_name(opt).startswith(kind), name


@pytest.mark.parametrize("cores,load,expected", [(2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1),
                                                 (2, 4.5, 1), (8, 2.2, 6), (1, 0.0, 1)])
def test_threads_come_from_the_cores_free(cores: int, load: float, expected: int,
                                          monkeypatch) -> None:
    monkeypatch.delenv("CONVZOO_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    choice = dev.choose_threads(cores, load)
    assert choice.threads == expected
    assert f"{cores} core" in choice.reason


def test_threads_follow_the_cores_busy_now_not_the_lagging_load_average(monkeypatch) -> None:
    # a job that ended a minute ago still weighs on the 1-minute load average; the cores busy
    # now decide, and the load average is the fallback where /proc/stat cannot be read
    monkeypatch.delenv("CONVZOO_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(dev, "load_average", lambda: 1.9)
    monkeypatch.setattr(dev, "own_load", lambda: 0.0)
    monkeypatch.setattr(dev, "busy_cores_now", lambda window=0.1: 0.05)
    assert dev.choose_threads(2).threads == 2
    monkeypatch.setattr(dev, "busy_cores_now", lambda window=0.1: None)
    assert dev.choose_threads(2).threads == 1


def test_the_cores_busy_now_are_measured() -> None:
    busy = dev.busy_cores_now(0.05)
    assert busy is None or 0.0 <= busy <= (os.cpu_count() or 1)


def test_a_thread_count_the_user_chose_is_kept(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert dev.choose_threads(2, 0.0).threads == 1
    # a cluster's setting far above this machine's cores is capped at them, and said so
    monkeypatch.setenv("OMP_NUM_THREADS", "100000")
    most = max(os.cpu_count() or 1, dev.usable_cores())
    capped = dev.choose_threads(2, 0.0)
    assert capped.threads == most and "capped" in capped.reason
    # a run's own setting wins over the environment's, and is said to be asked for
    assert dev.choose_threads(2, 0.0, asked=1).threads == 1
    assert dev.choose_threads(2, 0.0, asked=1).reason == "as asked"
    monkeypatch.setenv("CONVZOO_THREADS", "two")
    with pytest.raises(Exception, match="CONVZOO_THREADS"):
        dev.choose_threads(2, 0.0)


def test_evaluation_runs_under_inference_mode() -> None:
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.is_inference_mode_enabled())
            return x.flatten(1)[:, :3]

    x, y = torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 2, 0])
    r = evaluate(Probe(), [(x, y)], 3, device=torch.device("cpu"))
    assert seen == [True] and r.n == 4


def test_fit_gives_back_the_callers_thread_count(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONVZOO_THREADS", "2")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        cfg = TrainConfig(model="lenet5_modern", data="fake:1x28x28:16:2", epochs=1,
                          batch_size=8, device="cpu", out=str(tmp_path / "r"), plots=False,
                          tensorboard=False)
        summary = fit(cfg)
        assert summary["cpu_threads"].startswith("2 threads")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_benchmark_smoke_writes_every_section(tmp_path: Path, monkeypatch) -> None:
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_speed.py"
    spec = importlib.util.spec_from_file_location("cpu_speed", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cpu_speed"] = mod
    spec.loader.exec_module(mod)
    # the benchmark keeps its count in CONVZOO_THREADS: put the environment back afterwards
    monkeypatch.delenv("CONVZOO_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        assert mod.main(["--smoke", "--no-startup", "--out", str(tmp_path / "r.json")]) == 0
    finally:
        torch.set_num_threads(before)
    r = json.loads((tmp_path / "r.json").read_text())
    for model in ("lenet5", "lenet5_modern", "resnet20"):
        t = r["training"][model]
        for kind in ("convzoo", "plain", "dataloader"):
            assert t[kind]["images_per_s"] > 0 and 0 <= t[kind]["test_top1"] <= 1
        assert t["vs_plain"]["images_per_s"] > 0
    assert r["gflops"]["matmul_peak_gflop_s"] > 0 and 0 < r["gflops"]["fraction_of_peak"]
    assert set(r["inference"]) == {"resnet18_224", "lenet5", "lenet5_modern"}
    assert r["versions"]["torch"] == torch.__version__ and "load_average_start" in r


# ---- bf16 on the CPU -----------------------------------------------------------------------

@pytest.mark.parametrize("name,size,expected", [
    ("resnet20", (3, 32, 32), torch.bfloat16),          # convolution-bound: bf16 pays
    ("lenet5_modern", (1, 32, 32), None),               # 0.4M multiply-adds: too small
    ("alexnet", (3, 227, 227), None),                   # weight-bound: 11 per weight
    ("mobilenet_v1_025", (3, 224, 224), None),          # depthwise convolutions
])
def test_auto_amp_on_the_cpu_follows_the_measured_rule(name: str, size: tuple[int, int, int],
                                                       expected, monkeypatch) -> None:
    monkeypatch.setattr(dev, "cpu_has_amx_bf16", lambda: True)
    with torch.device("meta"):
        model = create_model(name)
    amp, why = dev.cpu_auto_amp(model, size)
    assert amp is expected, why
    assert why.startswith("bf16" if expected else "fp32")
    monkeypatch.setattr(dev, "cpu_has_amx_bf16", lambda: False)
    assert dev.cpu_auto_amp(model, size)[0] is None


def test_bf16_steps_follow_the_fp32_steps() -> None:
    # Tolerance: bf16 keeps 8 bits of mantissa (relative rounding 2^-9, 0.2%) in the
    # convolutions' operands. Over three SGD steps of resnet20 from the same weights and
    # batches the losses agree within 1%; the weights' updates point the same way (cosine
    # 0.97 measured over all of them; 0.9 asked), though single small tensors differ more.
    torch.manual_seed(0)
    x, y = torch.randn(3, 8, 3, 32, 32), torch.randint(0, 10, (3, 8))
    start = create_model("resnet20").state_dict()
    out = {}
    for amp in (None, torch.bfloat16):
        model = create_model("resnet20")
        model.load_state_dict(start)
        model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for i in range(3):
            with dev.autocast(torch.device("cpu"), amp):
                loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        update = torch.cat([(p.detach() - start[k]).flatten()
                            for k, p in model.named_parameters()])
        out[amp] = (losses, update)
    (l32, u32), (l16, u16) = out[None], out[torch.bfloat16]
    torch.testing.assert_close(torch.tensor(l16), torch.tensor(l32), rtol=1e-2, atol=0)
    assert l16 != l32  # bf16 did run
    assert float(torch.nn.functional.cosine_similarity(u16, u32, dim=0)) > 0.9
