"""The faster CPU layers (train/cpu_kernels.py) compute what the layers they replace compute.

Tolerance: a max-pool from strided views is exact (the same bits); a full-extent
convolution as `F.linear` sums the same products in another order,
so outputs and gradients agree to float32 rounding: rtol 1e-4 / atol 1e-5, the bound the
other CPU fast-path tests use (the first layer's weight gradient, a sum over every position
of the batch, differs most: 6e-6 at most, measured).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from convzoo import create_model
from convzoo.layers import SqueezeExcite
from convzoo.models.resnet import PadShortcut
from convzoo.registry import list_models
from convzoo.runtime.cpu_kernels import (
    EvalMaxPool2d,
    FullExtentConv2d,
    LayoutAdaptiveAvgPool2d,
    LayoutPadShortcut,
    LayoutSqueezeExcite,
    apply_cpu_kernels,
    remove_cpu_kernels,
)
from convzoo.train.config import TrainConfig
from convzoo.train.loop import fit

RTOL, ATOL = 1e-4, 1e-5


@pytest.mark.parametrize("name", list_models())
def test_swap_keeps_the_state_and_is_undone(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name)
    keys = list(model.state_dict())
    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, PadShortcut, SqueezeExcite)
    before = [sum(type(m) is k for m in model.modules()) for k in kinds]
    said = apply_cpu_kernels(model, model.default_input_size)
    convs, pools, layout = (sum(type(m) in k for m in model.modules()) for k in (
        {FullExtentConv2d}, {EvalMaxPool2d},
        {LayoutAdaptiveAvgPool2d, LayoutPadShortcut, LayoutSqueezeExcite}))
    assert list(model.state_dict()) == keys
    assert layout == sum(before[2:])  # every such layer, whatever the model
    s = lambda n: "s" if n > 1 else ""  # noqa: E731
    expected = ([f"{convs} full-extent conv{s(convs)} as linear"] if convs else []) \
        + ([f"{pools} 2x2 max-pool{s(pools)} as strided maxima in evaluation"] if pools else []) \
        + ([f"{layout} layer{s(layout)} giving gradients channels_last"] if layout else [])
    assert said == expected
    remove_cpu_kernels(model)
    assert [sum(type(m) is k for m in model.modules()) for k in kinds] == before


@pytest.mark.parametrize("name,size", [("lenet5_modern", (1, 32, 32)), ("lenet5", (1, 32, 32))])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_swapped_model_gives_the_same_outputs_and_gradients(name: str, size: tuple[int, ...],
                                                           layout: torch.memory_format) -> None:
    torch.manual_seed(0)
    plain = create_model(name).to(memory_format=layout)
    fast = create_model(name).to(memory_format=layout)
    fast.load_state_dict(plain.state_dict())
    assert apply_cpu_kernels(fast, size)[0] == "1 full-extent conv as linear"
    x = torch.randn(8, *size).contiguous(memory_format=layout)
    labels = torch.randint(0, 10, (8,))
    with torch.inference_mode():  # where the max-pools take their strided form
        torch.testing.assert_close(fast.eval()(x), plain.eval()(x), rtol=RTOL, atol=ATOL)
    plain.train(), fast.train()
    outs = []
    for m in (plain, fast):
        y = m(x)
        nn.functional.cross_entropy(y, labels).backward()
        outs.append((y, [p.grad for p in m.parameters()]))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=RTOL, atol=ATOL)
    for g_fast, g_plain in zip(outs[1][1], outs[0][1]):
        torch.testing.assert_close(g_fast, g_plain, rtol=RTOL, atol=ATOL)


def test_other_input_sizes_fall_back_to_the_convolution() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 120, 5)
    fast = nn.Conv2d(16, 120, 5)
    fast.load_state_dict(conv.state_dict())
    fast.__class__ = FullExtentConv2d
    for side in (5, 7):  # 5: the matrix product; 7: a 3x3 output, the convolution itself
        x = torch.randn(4, 16, side, side)
        torch.testing.assert_close(fast(x), conv(x), rtol=RTOL, atol=ATOL)
    assert fast(torch.randn(2, 16, 7, 7)).shape == (2, 120, 3, 3)


@pytest.mark.parametrize("side", [28, 10, 7])
def test_strided_max_pool_is_exact_and_leaves_training_to_torch(side: int) -> None:
    pool = nn.MaxPool2d(2)
    pool.__class__ = EvalMaxPool2d
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(3, 4, side, side + 1).contiguous(memory_format=layout)
        x[0, 0, 0, 0] = float("nan")  # propagated as max_pool2d propagates it
        with torch.no_grad():
            y = pool(x)
        ref = nn.functional.max_pool2d(x, 2)
        assert y.shape == ref.shape and torch.equal(y.nan_to_num(), ref.nan_to_num())
        assert y.isnan().sum() == ref.isnan().sum() == 1
        assert y.is_contiguous(memory_format=layout)
    x.requires_grad_()
    assert pool(x).grad_fn.name() == nn.functional.max_pool2d(x, 2).grad_fn.name()


def test_resnet20_gradients_stay_channels_last_with_the_same_values() -> None:
    """Option A's shortcuts and the global pool hand their input's gradient back in the
    input's layout; the gradients are the plain model's (a copy, not a computation)."""
    torch.manual_seed(0)
    plain = create_model("resnet20").to(memory_format=torch.channels_last)
    fast = create_model("resnet20").to(memory_format=torch.channels_last)
    fast.load_state_dict(plain.state_dict())
    assert apply_cpu_kernels(fast, (3, 32, 32)) == ["3 layers giving gradients channels_last"]
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.tensor([0, 1, 2, 3])
    layouts: dict[str, list[bool]] = {"plain": [], "fast": []}
    grads = []

    def watch(name: str) -> object:
        def record(g: torch.Tensor) -> None:
            cl = g.is_contiguous(memory_format=torch.channels_last) and not g.is_contiguous()
            layouts[name].append(cl)

        def pre_hook(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            args[0].register_hook(record)  # the gradient of the layer's input

        return pre_hook

    for name, m in (("plain", plain), ("fast", fast)):
        for mod in m.modules():
            if isinstance(mod, PadShortcut | nn.AdaptiveAvgPool2d):
                mod.register_forward_pre_hook(watch(name))
        nn.functional.cross_entropy(m(x), labels).backward()
        grads.append([p.grad for p in m.parameters()])
    # torch 2.14 gives the plain model's three contiguous; only convzoo's are asserted
    assert layouts["fast"] == [True] * 3 and len(layouts["plain"]) == 3
    for g_fast, g_plain in zip(*grads[::-1]):
        torch.testing.assert_close(g_fast, g_plain, rtol=RTOL, atol=ATOL)
    remove_cpu_kernels(fast)
    assert not any(type(m) in (LayoutAdaptiveAvgPool2d, LayoutPadShortcut)
                   for m in fast.modules())


def test_squeeze_excite_pools_with_its_gradient_channels_last() -> None:
    torch.manual_seed(0)
    plain = SqueezeExcite(8, 2)
    fast = SqueezeExcite(8, 2)
    fast.load_state_dict(plain.state_dict())
    fast.__class__ = LayoutSqueezeExcite
    x = torch.randn(2, 8, 6, 6).contiguous(memory_format=torch.channels_last)
    grads = []
    for m in (plain, fast):
        xi = x.clone().requires_grad_()
        m(xi).square().sum().backward()
        grads.append(xi.grad)
    assert grads[1].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(grads[1], grads[0], rtol=RTOL, atol=ATOL)


def test_a_run_gives_back_the_model_it_was_given(tmp_path: Path) -> None:
    model = create_model("lenet5_modern", num_classes=2)
    cfg = TrainConfig(model="lenet5_modern", data="fake:1x28x28:32:2", epochs=1, batch_size=16,
                      device="cpu", out=str(tmp_path / "r"), plots=False, tensorboard=False)
    summary = fit(cfg, model=model)
    assert summary["cpu_kernels"] == ["1 full-extent conv as linear",
                                      "2 2x2 max-pools as strided maxima in evaluation"]
    assert type(model.stages[1].c5) is nn.Conv2d
    assert not any(type(m) is EvalMaxPool2d for m in model.modules())
