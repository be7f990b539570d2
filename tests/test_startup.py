"""Start-up: `convzoo list` from the shipped table (kept true here), no weight initialisation
on the meta device, and the light commands import only what they use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from convzoo.analysis.catalog_cache import CatalogRow, compute_row, read_catalog, render
from convzoo.cli import main
from convzoo.registry import create_model, get_entry, list_models


def _meta_row(name: str) -> tuple[int, str, str]:
    with torch.device("meta"):
        model = create_model(name)
    params = sum(p.numel() for p in model.parameters())
    return params, "x".join(map(str, model.default_input_size)), model.paper.short


def test_catalog_holds_every_model_with_its_parameters_input_and_paper() -> None:
    cached = read_catalog()
    assert sorted(cached) == list_models(), \
        "analysis/catalog.toml is stale: run python -m convzoo.analysis.catalog_cache"
    for name, row in cached.items():
        assert (row.params, row.input, row.paper) == _meta_row(name), name


def test_catalog_macs_match_a_fresh_profile_of_each_family() -> None:
    cached = read_catalog()
    families: dict[str, CatalogRow] = {}
    for name, row in cached.items():
        family = get_entry(name).builder.__module__
        if family not in families or row.macs < families[family].macs:
            families[family] = row  # the cheapest model of each family file
    assert len(families) >= 8
    for row in families.values():
        assert compute_row(row.name) == row, row.name


def test_catalog_file_round_trips(tmp_path: Path) -> None:
    import tomllib

    rows = [CatalogRow("a", 1, 2, "1x2x2", 'Doe "et al." 1999')]
    table = tomllib.loads(render(rows))
    assert [CatalogRow.from_dict(d) for d in table["model"]] == rows


def test_list_prints_the_cached_rows(capsys) -> None:
    assert main(["list", "resnet20", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    row = read_catalog()["resnet20"]
    assert "resnet20" in out and str(row.params) in out.replace(",", "")


def _imports_after(code: str) -> set[str]:
    probe = ("import sys, contextlib, io\n" + code +
             "\nprint(' '.join(sorted(m for m in sys.modules if '.' not in m)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    return set(out.split())


def test_meta_models_need_no_init_and_light_commands_no_heavy_imports() -> None:
    code = """
import torch
from convzoo.registry import create_model, list_models
with torch.device("meta"):
    for n in list_models():
        create_model(n)
assert "torch._dynamo" not in sys.modules, "a model initialised its meta weights"
from convzoo.cli import main
for argv in (["list"], ["calc", "conv", "--input", "32", "--filter", "5"]):
    with contextlib.redirect_stdout(io.StringIO()):
        main(argv)
try:
    with contextlib.redirect_stdout(io.StringIO()):
        main(["--help"])
except SystemExit:
    pass
"""
    loaded = _imports_after(code)
    heavy = {"matplotlib", "torchvision", "safetensors", "tensorboard", "PIL"}
    assert not loaded & heavy, loaded & heavy
