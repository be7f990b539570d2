"""Training defaults per model, and where each setting of a run came from.

`convzoo train MODEL` with no `--recipe` takes the recipe the model's group names in
`defaults.toml` (data, not code: one table per group of models with the recipe, the data the
models are built for, why that recipe, and what it assumes on a small data set).
`--recipe none` takes TrainConfig's own generic defaults; `--recipe NAME|FILE` that recipe.

Precedence, lowest first: TrainConfig's defaults (or a resumed run's config), the recipe,
flags, `--set`. `resolve_config` applies them and records, for every TrainConfig field, where
its value came from. That record is a run's `config_sources`: a JSON object from field name to
one of

  "default"     TrainConfig's own default
  "recipe"      the recipe the run names in its `recipe` field
  "flag"        a command-line flag (or the positional model name)
  "--set"       a `--set KEY=VALUE`
  "checkpoint"  the config of the run being resumed

and, for the `recipe` field itself, how the recipe was chosen: "flag" (`--recipe NAME`),
"model default" (this table) or "default" (none: `--recipe none`). The report reads it from
config.json, summary.json or checkpoint.json, whichever has it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import UserInputError
from .config import FIELDS, TrainConfig, find_recipe, read_recipe, replace

NO_RECIPE = "none"  # `--recipe none`: the generic defaults, no recipe
SOURCES = ("default", "recipe", "flag", "--set", "checkpoint")
TABLE = "defaults.toml"


@dataclass(frozen=True)
class ModelDefaults:
    model: str
    group: str  # the table's name in defaults.toml
    recipe: str
    built_for: str  # the data the model is built for
    why: str
    small_data: str | None = None  # what the recipe assumes when the data set is small


@cache
def _table() -> dict[str, ModelDefaults]:
    text = (resources.files(__package__) / TABLE).read_text(encoding="utf-8")
    table = tomllib.loads(text)
    out: dict[str, ModelDefaults] = {}
    for group, entry in table.items():
        for model in entry["models"]:
            if model in out:  # a model in two groups would have two defaults
                raise ValueError(f"{TABLE}: {model} is in both {out[model].group} and {group}")
            out[model] = ModelDefaults(model, group, entry["recipe"], entry["built_for"],
                                       entry["why"], entry.get("small_data"))
    return out


def defaults_table() -> dict[str, ModelDefaults]:
    """Every model the table names, with its defaults."""
    return dict(_table())


def model_defaults(model: str) -> ModelDefaults:
    """The defaults of a registered model; an unknown name is the registry's error."""
    from ..registry import get_entry

    get_entry(model)
    try:
        return _table()[model]
    except KeyError:
        raise UserInputError(f"{model} has no training defaults yet: give a recipe "
                             f"(--recipe NAME) or --recipe {NO_RECIPE}") from None


def default_recipe(model: str) -> tuple[str, str]:
    """(recipe name, why) of the settings `convzoo train MODEL` uses when given no recipe."""
    d = model_defaults(model)
    return d.recipe, d.why


@dataclass
class ResolvedConfig:
    config: TrainConfig
    sources: dict[str, str]  # field -> one of SOURCES ("recipe" field: how it was chosen)
    defaults: ModelDefaults | None  # set when the recipe came from the model's defaults
    note: str  # one line for the log: which settings, from where

    def changed(self) -> dict[str, str]:
        """The fields not at TrainConfig's default, with their sources."""
        return {k: v for k, v in self.sources.items() if v != "default"}


def _keys(updates: dict[str, Any]) -> list[str]:
    return [k.replace("-", "_") for k in updates]


def resolve_config(model: str | None = None, recipe: str | None = None,
                   flags: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
                   base: TrainConfig | None = None) -> ResolvedConfig:
    """The run's config and where each value came from.

    `recipe`: None picks the model's default recipe (unless `base`, a resumed run's config, is
    given: it keeps its own); 'none' no recipe; else a recipe name or TOML file. `flags` are
    the command line's field flags (only those given), `overrides` the `--set` pairs."""
    flags, overrides = dict(flags or {}), dict(overrides or {})
    cfg = base if base is not None else TrainConfig()
    origin = "checkpoint" if base is not None else "default"
    sources = dict.fromkeys(FIELDS, origin)
    defaults = None
    how = None
    if base is None and recipe is None and model:
        defaults = model_defaults(model)
        recipe, how = defaults.recipe, "model default"
    elif recipe is not None and recipe.lower() != NO_RECIPE:
        how = "flag"
    if how is not None:
        table = read_recipe(recipe)
        if how == "model default":  # a model's defaults say how to train, not on what
            table = {k: v for k, v in table.items() if k != "data"}
        cfg = replace(cfg, table, f"recipe {recipe}")
        sources.update(dict.fromkeys(_keys(table), "recipe"))
        sources["recipe"] = how
    elif recipe is not None:  # --recipe none
        cfg = replace(cfg, {"recipe": None, "source": None}, "--recipe none")
        sources["recipe"] = sources["source"] = "flag"
    if model:
        cfg.model = model
        sources["model"] = "flag"
    cfg = replace(cfg, flags, "flags")
    sources.update(dict.fromkeys(_keys(flags), "flag"))
    cfg = replace(cfg, overrides, "--set")
    sources.update(dict.fromkeys(_keys(overrides), "--set"))
    return ResolvedConfig(cfg, sources, defaults, _note(cfg, how, defaults, recipe))


def _note(cfg: TrainConfig, how: str | None, defaults: ModelDefaults | None,
          recipe: str | None) -> str:
    if how == "model default" and defaults is not None:
        where = find_recipe(defaults.recipe)
        line = (f"{cfg.model}: no --recipe given, so its defaults: recipe {defaults.recipe} "
                f"({where}), built for {defaults.built_for}: {defaults.why}")
        if defaults.small_data:
            line += f". On other data: {defaults.small_data}"
        return line + f" (--recipe {NO_RECIPE} for the generic defaults)"
    if how == "flag":
        return f"settings: recipe {cfg.recipe} ({find_recipe(recipe or '')}), then flags"
    if recipe is not None:
        return "settings: the generic defaults (--recipe none), then flags"
    return "settings: the resumed run's config, then flags"


__all__ = ["NO_RECIPE", "SOURCES", "ModelDefaults", "ResolvedConfig", "default_recipe",
           "defaults_table", "model_defaults", "resolve_config"]
