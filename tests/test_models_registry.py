"""Tests every registered model: a new model is tested by being registered."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convzoo
from convzoo.registry import register_model

ALL = convzoo.list_models()

# Models whose default input is so large that a CPU backward pass dominates the suite: the
# gradient check runs them at the smallest size their architecture accepts instead.
GRAD_INPUT = {}
# EfficientNet B1-B7 and Lite1-4 are B0 and Lite0 made wider and deeper (B7: 600x600 input);
# B0 and Lite0 are checked at full size, the others at 64x64.
GRAD_INPUT.update({f"efficientnet_{v}": (3, 64, 64)
                   for v in ("b1", "b2", "b3", "b4", "b5", "b6", "b7",
                             "lite1", "lite2", "lite3", "lite4")})

# Xception and Inception-ResNet-v2 take 299x299: checked at 71x71 (the least Keras accepts for
# Xception) and 75x75 (the least both Inception-ResNet-v2 layouts accept).
GRAD_INPUT.update({"xception": (3, 71, 71), "inception_resnet_v2": (3, 75, 75),
                   "inception_resnet_v2_paper": (3, 75, 75)})

# ResNet-18 is checked at 224x224, the deeper ImageNet ResNets at 64x64 (a 2x2 map at the
# end). The 1202-layer CIFAR ResNet stays at its own 32x32: its layers are narrow.
GRAD_INPUT.update({n: (3, 64, 64) for n in (
    "resnet34", "resnet50", "resnet101", "resnet152", "resnet50_v1", "resnet101_v1",
    "resnet152_v1", "se_resnet50", "se_resnet101", "se_resnet152", "plain34")})


def _out(y):
    return y.logits if hasattr(y, "logits") else y


@pytest.mark.parametrize("name", ALL)
def test_forward_default_input_and_gradients(name: str) -> None:
    model = convzoo.create_model(name, num_classes=7)
    size = GRAD_INPUT.get(name, tuple(model.default_input_size))
    model.train()
    x = torch.randn(2, *size)
    y = _out(model(x))
    assert y.shape == (2, 7)
    loss = y.float().pow(2).mean()
    out = model(x)
    if hasattr(out, "aux_logits"):
        loss = loss + sum(a.pow(2).mean() for a in out.aux_logits)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"


@pytest.mark.parametrize("name", ALL)
def test_meta_counts_equal_real_counts(name: str) -> None:
    real = convzoo.create_model(name)
    prof = convzoo.summary(name)
    n_real = sum(p.numel() for p in real.parameters())
    assert prof.total_params == n_real
    assert sum(r.params for r in prof.layers) == n_real
    # the profile of the real module (meta stand-ins for its weights) agrees too
    prof_real = convzoo.summary(real)
    assert prof_real.total_macs == prof.total_macs
    assert prof_real.activation_elements == prof.activation_elements
    assert all(not p.is_meta for p in real.parameters())


@pytest.mark.parametrize("name", ALL)
def test_uniform_interface(name: str) -> None:
    with torch.device("meta"):
        model = convzoo.create_model(name, num_classes=5)
    assert isinstance(model, convzoo.models.ConvNet)
    for part in ("stem", "stages", "head"):
        assert isinstance(getattr(model, part), nn.Module)
    assert model.paper.citation and model.paper.short
    c, h, w = model.default_input_size
    x = torch.empty(2, c, h, w, device="meta")
    feats = model.forward_features(x)
    pre = model.forward_head(feats, pre_logits=True)
    assert pre.shape == (2, model.num_features)
    assert _out(model.forward_head(feats)).shape == (2, 5)
    model.reset_head(3)
    assert model.num_classes == 3
    assert _out(model.forward_head(feats)).shape == (2, 3)
    # parameter groups cover every parameter exactly once, from stem to head
    groups = model.parameter_groups()
    assert list(groups)[0] == "stem" and "head" in groups
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("name", ALL)
def test_activation_by_name(name: str) -> None:
    with torch.device("meta"):
        model = convzoo.create_model(name, act="elu")
    assert any(isinstance(m, nn.ELU) for m in model.modules())


def test_duplicate_name_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        register_model(lambda **kw: None, name=ALL[0])


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(convzoo.UserInputError, match="did you mean.*vgg16"):
        convzoo.create_model("vgg61")


def test_list_models_pattern() -> None:
    assert convzoo.list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert "lenet5_modern" in convzoo.list_models("modern")
    assert convzoo.list_models("no-such-net*") == []


def test_foreign_names_come_from_the_registry() -> None:
    import timm
    import torchvision

    from convzoo.registry import get_entry

    tv_names, seen = set(torchvision.models.list_models()), {"torchvision": 0, "timm": 0}
    for name in ALL:
        entry = get_entry(name)
        with torch.device("meta"):
            model = convzoo.create_model(name)
        for source, foreign, attr in (("torchvision", entry.torchvision, "torchvision_name"),
                                      ("timm", entry.timm, "timm_name")):
            # a registered foreign name is one its key map serves, and one that exists there
            assert getattr(model, attr) == foreign
            if foreign:
                seen[source] += 1
                assert source in model.weight_sources, name
                assert foreign in tv_names if source == "torchvision" else timm.list_models(
                    foreign), (name, foreign)
    assert seen["torchvision"] >= 20 and seen["timm"] >= 5
    with torch.device("meta"):
        # another layout under the same name is no longer torchvision's network
        v1 = convzoo.create_model("resnet50", stride_in="1x1")
    assert v1.weight_sources == () and v1.torchvision_name is None and v1.timm_name is None


def test_models_do_not_import_the_analysis() -> None:
    # analysis reads models (their paper tables live there); the other way round made a
    # circle models -> analysis.profile -> registry -> models
    import ast
    from pathlib import Path

    root = Path(convzoo.__file__).parent
    files = [*root.glob("models/*.py"), *root.glob("layers/*.py"), *root.glob("weights/*.py"),
             root / "registry.py"]
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any("analysis" in n.split(".") for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert len(files) > 15 and not offenders
