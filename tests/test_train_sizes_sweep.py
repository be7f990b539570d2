"""Every registered model trains at the input sizes its summary accepts, auxiliary heads too.

`summary` runs a model in eval mode, where GoogLeNet's auxiliary classifiers do not run, so a
size could pass `summary` and crash the first training step (it did, at 239-270 px). Here each
model takes a training step -- forward and backward in training mode -- at its smallest input,
its default and a larger, odd size (scaled siblings of a family at the smallest only, see
SCALED), and `summary` must agree with training on which of those sizes work. Shapes need no
numbers, so the sweep runs on the meta device; the heads are checked once more on real tensors
at the smallest size, where a map reaches 1x1 or 2x2.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convzoo
from convzoo.analysis.profile import profile_model

ALL = convzoo.list_models()

# The smallest square side each architecture takes: `summary` accepts it and refuses one pixel
# less. A model not named here takes any side down to 1 (padded strided convolutions, then an
# adaptive pool). The reasons: AlexNet's unpadded 11x11/4 conv1 and three 3x3/2 pools with a
# fixed 6x6 map before the first FC layer; VGG's five 2x2 pools; GoogLeNet's ceil-mode pools
# before 5a; LeNet-5 and the fully connected highway nets take one size only.
SMALLEST = {
    "alexnet": 227, "alexnet_owt": 63, "googlenet": 31, "googlenet_tv": 15,
    "highway_conv": 4, "plain_conv": 4, "highway_fc": 28, "plain_fc": 28,
    "inception_resnet_v2": 75, "inception_resnet_v2_paper": 75,
    "lenet5": 32, "lenet5_modern": 32, "xception": 7,
    **{n: 32 for n in ALL if n.startswith("vgg")},
}

# Scaled siblings: the strides and pools of a registered model of their family, with more
# blocks or narrower layers (the CIFAR ResNets beyond 20 layers, the ImageNet ResNets beyond
# 50, EfficientNet B1-B7 and Lite1-4 against B0 and Lite0, MobileNet v1 below width 1). Their
# sizes behave as that model's do, so they take one training step, at the smallest size
# (every map 1x1): test_models_registry trains them for real at their default input or
# near it, and runs summary there. ResNet-1202 is ResNet-20 with 200 blocks a stage, whose
# meta pass alone costs seconds; its real training step at 32x32 is test_models_registry's.
SCALED = {
    *(f"{kind}{d}" for kind in ("resnet", "plain") for d in (32, 44, 56, 110)),
    "resnet101", "resnet152", "resnet101_v1", "resnet152_v1", "se_resnet101", "se_resnet152",
    "plain34", *(f"efficientnet_b{v}" for v in range(1, 8)),
    *(f"efficientnet_lite{v}" for v in range(1, 5)),
    "mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025",
}
SWEPT = [n for n in ALL if n != "resnet1202"]

# Real tensors for the heads, at the smallest size and batch 2 (batch norm needs two values
# a channel): the models with auxiliary classifiers, and two small ones with a plain head.
REAL = ("googlenet", "googlenet_tv", "lenet5", "resnet20")

BATCH, CLASSES = 2, 3


def _build(name: str, device: str) -> nn.Module:
    kwargs = {"num_classes": CLASSES}
    if name == "googlenet_tv":
        kwargs["aux_logits"] = True  # torchvision's auxiliary heads, off by default
    with torch.device(device):
        return convzoo.create_model(name, **kwargs)


def _sizes(name: str, default: int) -> list[int]:
    """The smallest side and, unless SCALED, the default and a larger, odd one."""
    small = SMALLEST.get(name, 1)
    if name in SCALED:
        return [small]
    # default + 1/8, made odd: 253 for 224, in the range where GoogLeNet's aux heads once broke
    return sorted({small, default, (default + default // 8) | 1})


def _train_step(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Forward and backward in training mode; the logits and any auxiliary logits."""
    model.train()
    out = model(x)
    outs = (out.logits, *out.aux_logits) if hasattr(out, "aux_logits") else (out,)
    sum(o.float().sum() for o in outs).backward()
    return outs


def _aux_heads(model: nn.Module) -> int:
    return len(getattr(model, "aux", None) or ())


def _accepts(model: nn.Module, size: tuple[int, int, int], training: bool) -> bool:
    try:
        profile_model(model, size, BATCH, training=training)
    except convzoo.UserInputError:
        return False
    return True


@pytest.mark.parametrize("name", SWEPT)
def test_training_step_where_summary_accepts(name: str) -> None:
    model = _build(name, "meta")
    c, default, _ = model.default_input_size
    aux = _aux_heads(model)
    small = SMALLEST.get(name, 1)
    if small > 1 and name not in SCALED:
        assert not _accepts(model, (c, small - 1, small - 1), training=False)
    for side in _sizes(name, default):
        size = (c, side, side)
        # summary's verdict at the default is test_models_registry's; SCALED: see above
        known = side == default or name in SCALED
        accepted = known or _accepts(model, size, training=False)
        if side == small:
            assert accepted, f"summary refuses {name} at {side}x{side}"
        if not accepted:  # training must refuse it too, not train on a wrong shape
            with pytest.raises((RuntimeError, ValueError)):
                _train_step(model, torch.empty(BATCH, *size, device="meta"))
            continue
        model.zero_grad(set_to_none=True)
        outs = _train_step(model, torch.empty(BATCH, *size, device="meta"))
        assert [tuple(o.shape) for o in outs] == [(BATCH, CLASSES)] * (1 + aux), side
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, f"{name} at {side}: no gradient for {missing[:3]}"
        if aux:  # modules that run in training only: summary must run them as well
            assert _accepts(model, size, training=True)


@pytest.mark.parametrize("name", [n for n in ALL if n in ("googlenet", "googlenet_tv")])
def test_training_summary_counts_the_auxiliary_heads(name: str) -> None:
    model = _build(name, "meta").eval()
    size = tuple(model.default_input_size)
    ev = profile_model(model, size, BATCH)
    tr = profile_model(model, size, BATCH, training=True)
    idle = [r.name for r in ev.layers if r.extra.get("ran") is False]
    assert idle and all(r.startswith("aux.") for r in idle)
    assert not [r for r in tr.layers if r.extra.get("ran") is False]
    aux_macs = sum(r.macs for r in tr.layers if r.name.startswith("aux."))
    assert aux_macs > 0 and tr.total_macs == ev.total_macs + aux_macs
    assert tr.total_params == ev.total_params
    assert not model.training  # profiling leaves the mode as it found it


@pytest.mark.parametrize("name", REAL)
def test_real_heads_at_the_smallest_size(name: str) -> None:
    torch.manual_seed(0)
    model = _build(name, "cpu")
    c, _, _ = model.default_input_size
    side = SMALLEST.get(name, 1)
    outs = _train_step(model, torch.randn(BATCH, c, side, side))
    assert [tuple(o.shape) for o in outs] == [(BATCH, CLASSES)] * (1 + _aux_heads(model))
    assert all(torch.isfinite(o).all() for o in outs)
    assert all(p.grad is not None for p in model.parameters())
