"""Training defaults per model: every registered model has them, they load as a valid
TrainConfig, and three steps of `fit` run with them (for the cheapest model of each recipe:
running all 69, VGG and EfficientNet-B7 included, would take minutes on two cores)."""

from __future__ import annotations

import json

import pytest
import torch

import convzoo
from convzoo.errors import ConvzooError, UserInputError
from convzoo.registry import create_model
from convzoo.train.config import find_recipe
from convzoo.train.defaults import (
    SOURCES,
    default_recipe,
    defaults_table,
    model_defaults,
    resolve_config,
)
from convzoo.train.loop import fit

# VGG's 4096-wide fully connected layers (120M parameters) would make three steps cost more
# than the rest together; the recipe's settings are what is tested, so they are made narrow
SHRINK = {"vgg11": {"hidden": 64}}
SIZES = (32, 64, 96, 128, 160)  # tried in order with the model's own side: the smallest it takes


def test_every_registered_model_has_defaults_and_nothing_else_does():
    table = defaults_table()
    assert sorted(table) == convzoo.list_models()
    for name, d in table.items():
        assert d.why and d.built_for, name
        find_recipe(d.recipe)  # the recipe exists


@pytest.mark.parametrize("model", convzoo.list_models())
def test_defaults_load_as_a_valid_config(model):
    recipe, why = default_recipe(model)
    r = resolve_config(model, flags={"data": "fake"})
    cfg = r.config
    cfg.validate()
    assert cfg.model == model and cfg.recipe == recipe and cfg.data == "fake"
    assert r.sources["recipe"] == "model default" and r.sources["data"] == "flag"
    assert set(r.sources.values()) <= set(SOURCES) | {"model default"}
    assert recipe in r.note and why in r.note


def test_lenet5_defaults_are_not_the_generic_rate_and_none_gives_the_generic_ones():
    default = resolve_config("lenet5", flags={"data": "mnist5k"})
    bare = resolve_config("lenet5", recipe="none", flags={"data": "mnist5k"})
    assert default.config.lr < 0.01 < bare.config.lr  # the RBF output diverges at lr 0.1
    assert bare.config.recipe is None and bare.sources["lr"] == "default"
    assert default.sources["lr"] == "recipe"
    flagged = resolve_config("lenet5", flags={"lr": 0.001}, overrides={"epochs": 2})
    assert flagged.config.lr == 0.001 and flagged.sources["lr"] == "flag"
    assert flagged.config.epochs == 2 and flagged.sources["epochs"] == "--set"
    assert flagged.config.batch_size == 32 and flagged.sources["batch_size"] == "recipe"


def test_imagenet_nets_say_what_they_assume_on_small_data():
    for name in ("alexnet", "vgg16", "resnet50", "efficientnet_b0", "mobilenet_v2"):
        d = model_defaults(name)
        assert "ImageNet" in d.built_for and d.small_data, name
        assert d.small_data in resolve_config(name).note


def test_unknown_model_is_the_registrys_one_line_error():
    with pytest.raises(UserInputError, match="did you mean lenet5"):
        default_recipe("lenet55")


def _params(name: str) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, num_classes=4).parameters())


def _smallest_input(name: str) -> int:
    """The smallest side of SIZES a training-mode forward pass accepts (on the meta device)."""
    with torch.device("meta"):
        model = create_model(name, num_classes=4).train()
    c, side = model.default_input_size[:2]
    for s in sorted({*SIZES, side}):
        try:
            with torch.device("meta"):
                model(torch.empty(2, c, s, s))
            return s
        except (RuntimeError, ValueError, ConvzooError):
            continue
    raise AssertionError(f"{name} accepts none of {SIZES}")


def _one_per_recipe() -> list[str]:
    by_recipe: dict[str, list[str]] = {}
    for name, d in defaults_table().items():
        by_recipe.setdefault(d.recipe, []).append(name)
    return sorted(min(names, key=_params) for names in by_recipe.values())


@pytest.mark.parametrize("model", _one_per_recipe())
def test_three_steps_with_the_defaults_run(model, tmp_path):
    with torch.device("meta"):
        c = create_model(model).default_input_size[0]
    s = _smallest_input(model)
    r = resolve_config(model, flags={"data": f"fake:{c}x{s}x{s}:10:4", "input_size": (c, s, s),
                                     "batch_size": 2, "model_args": SHRINK.get(model, {}),
                                     "max_steps": 3, "device": "cpu",
                                     "out": str(tmp_path / "run")},
                       overrides={"plots": False, "tensorboard": False})
    summary = fit(r.config, extra_meta={"config_sources": r.sources})
    assert summary["status"] == "completed" and summary["steps"] == 3
    assert summary["recipe"] == default_recipe(model)[0]
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["config_sources"]["recipe"] == "model default"
