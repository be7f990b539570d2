"""`convzoo compare`: every registered model in one table, published accuracies as cited data."""

from __future__ import annotations

import json

import pytest

from cli_run import run
from convzoo import list_models, summary
from convzoo.analysis.compare import published
from convzoo.cli import main


def test_compare_json_has_every_registered_model(capsys) -> None:
    rc, out, _ = run(capsys, "compare", "--format", "json")
    assert rc == 0
    rows = {r["model"]: r for r in json.loads(out)["rows"]}
    assert sorted(rows) == list_models()
    pub = published()
    for name, row in rows.items():
        assert row["params"] > 0 and row["macs"] > 0 and row["depth"] > 0, name
        if name in pub:
            assert row["top1"] == pub[name].top1 and row["source"] == pub[name].source
        else:
            assert row["top1"] is None and row["source"] == ""
    # the counts are the profile's
    prof = summary("resnet50")
    assert rows["resnet50"]["params"] == prof.total_params
    assert rows["resnet50"]["macs"] == prof.total_macs
    assert rows["resnet50"]["top1"] == 76.130 and rows["resnet50"]["top5"] == 92.862
    assert rows["vgg16"]["depth"] == 16 and rows["resnet50"]["depth"] == 50


def test_published_rows_are_cited_and_name_registered_models() -> None:
    names = set(list_models())
    for name, p in published().items():
        assert name in names, name
        assert p.source in ("paper", "torchvision", "release"), name
        assert p.citation and p.evaluation, name
        assert p.top1 is not None or p.top5 is not None, name
        for acc in (p.top1, p.top5):
            assert acc is None or 0 < acc < 100, name
        if p.top1 is not None and p.top5 is not None:
            assert p.top5 > p.top1, name


def test_sort_and_formats(capsys) -> None:
    rc, out, _ = run(capsys, "compare", "alexnet_owt", "resnet18", "lenet5", "vgg11",
                     "--sort", "top1", "--reverse", "--format", "csv")
    assert rc == 0
    models = [line.split(",")[0] for line in out.strip().splitlines()[1:]]
    assert models == ["resnet18", "vgg11", "alexnet_owt", "lenet5"]  # no accuracy: last
    rc, out, _ = run(capsys, "compare", "vgg1[13]*", "--sort", "params", "--format", "json")
    params = [r["params"] for r in json.loads(out)["rows"]]
    assert params == sorted(params) and len(params) == len(list_models("vgg1[13]*")) == 5
    rc, out, _ = run(capsys, "compare", "vgg16", "--format", "markdown")
    assert rc == 0 and "| vgg16 |" in out


@pytest.mark.parametrize("argv", [["nosuchnet"], ["zzz*"], ["vgg16", "--sort", "colour"]])
def test_bad_input(capsys, argv) -> None:
    try:
        rc = main(["compare", *argv])
    except SystemExit as e:  # argparse's own check of --sort's choices
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_plot(capsys, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    out = tmp_path / "evolution.png"
    rc, text, _ = run(capsys, "compare", "alexnet_owt", "resnet18", "lenet5", "--plot",
                      str(out), "--format", "csv")
    assert rc == 0 and "2 of 3 models" in text
    w, h = Image.open(out).size
    assert w > 500 and h > 400
    rc, _, err = run(capsys, "compare", "lenet5", "--plot", str(tmp_path / "none.png"))
    assert rc == 2 and "published top-1" in err


def test_training_only_heads_are_counted_apart(capsys) -> None:
    # GoogLeNet holds 13,378,280 parameters with its two auxiliary classifiers; MACs and depth
    # are those of inference, and so is `params`: the aux heads are named in a note
    rc, out, _ = run(capsys, "compare", "googlenet", "resnet18", "--format", "json")
    data = json.loads(out)
    rows = {r["model"]: r for r in data["rows"]}
    g = rows["googlenet"]
    assert rc == 0 and summary("googlenet").total_params == 13_378_280
    assert g["params"] + g["train_only_params"] == 13_378_280 and g["train_only_params"] > 0
    assert g["params"] == summary("googlenet", aux_logits=False).total_params
    assert rows["resnet18"]["train_only_params"] == 0
    assert any("googlenet 13,378,280 with them" in n for n in data["notes"])
    rc, out, _ = run(capsys, "compare", "googlenet", "--format", "markdown")
    assert f"{g['params']:,}" in out and "training-only heads" in out
