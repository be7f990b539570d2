"""Architecture drawings: every registered model in every style that applies, parsed back and
checked against the profile; ResNet's Figure 3 and GoogLeNet's Inception 3a by count."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import cache

import pytest

from cli_run import run
from convzoo import list_models
from convzoo.analysis.receptive import profile_with_fields
from convzoo.viz.architecture import draw, styles_for, trace_flow
from convzoo.viz.architecture.graph import shape_text

SVG = "{http://www.w3.org/2000/svg}"


@cache
def flow(name: str):
    return trace_flow(name)


def svg_of(flows, style: str, block: str | None = None) -> ET.Element:
    canvas = draw(flows, style, block)
    x0, y0, x1, y1 = canvas.bounds()
    return ET.fromstring(canvas.svg((x0, y0, x1 - x0, y1 - y0)))  # well-formed or raises


def shape_labels(root: ET.Element) -> list[tuple[str, str]]:
    return [(e.get("data-name", ""), e.text or "") for e in root.iter(f"{SVG}text")
            if e.get("class") == "shape"]


# resnet1202 is resnet110's class and builder with 200 blocks a stage instead of 18; its
# trace alone takes longer than every other model together, so resnet110 stands for it
@pytest.mark.parametrize("name", [n for n in list_models() if n != "resnet1202"])
def test_every_model_draws_in_every_style_that_applies(name: str) -> None:
    f = flow(name)
    rows = {r.name: r.output_shape[1:] for r in f.profile.layers if r.output_shape}
    for style in styles_for(f):
        root = svg_of([f], style)
        labels = shape_labels(root)
        assert labels, (name, style)
        for layer, text in labels:
            assert re.fullmatch(r"\d+(x\d+)*", text), (name, style, text)
            if layer in rows:  # a layer: its summary row
                assert text == shape_text(rows[layer]), (name, style, layer)
            elif layer == "input":
                assert text == shape_text(f.profile.input_size)
            else:  # a block or a join: the module's output in the same pass
                assert text == shape_text(f.shapes[layer]), (name, style, layer)
        totals = [e for e in root.iter(f"{SVG}text") if e.get("class") == "total"]
        assert totals and all(int(e.get("data-params")) == f.profile.total_params
                              and f"{f.profile.total_params:,}" in e.text for e in totals)


def test_labels_and_totals_equal_summary_and_the_receptive_trace() -> None:
    # independent of the drawing's own pass: the profile summary() prints and the receptive
    # trace run again (together, in the one pass profile_with_fields makes for `summary`)
    for name, style in (("googlenet", "blocks"), ("resnet50", "volumes"),
                        ("mobilenet_v2", "columns"), ("lenet5", "volumes")):
        prof, trace = profile_with_fields(name)
        rows = {r.name: r.output_shape[1:] for r in prof.layers if r.output_shape}
        rows.update({r.name: r.output_shape[1:] for r in trace.rows})
        root = svg_of([flow(name)], style)
        for layer, text in shape_labels(root):
            if layer != "input":
                assert text == shape_text(rows[layer]), (name, layer)
        total = next(e for e in root.iter(f"{SVG}text") if e.get("class") == "total")
        assert int(total.get("data-params")) == prof.total_params


def test_resnet_figure_3_columns() -> None:
    root = svg_of([flow(n) for n in ("vgg19", "plain34", "resnet34")], "columns")
    counts = [e.text for e in root.iter(f"{SVG}text") if e.get("class") == "count"]
    assert counts == ["19 weight layers", "34 weight layers", "34 weight layers"]
    assert sum(1 for e in root.iter(f"{SVG}rect") if e.get("class") == "layer weight") == 87
    arcs = [e for e in root.iter(f"{SVG}path") if "shortcut" in e.get("class", "")]
    dotted = [e for e in arcs if "dotted" in e.get("class", "")]
    assert len(arcs) == 16 and len(dotted) == 3
    assert all(e.get("stroke-dasharray") for e in dotted)
    # the dotted ones open stages 2, 3 and 4, where the shortcut projects
    assert [e.get("data-to") for e in dotted] == ["stages.1.0", "stages.2.0", "stages.3.0"]


def test_inception_3a_has_four_branches_into_the_concatenation() -> None:
    root = svg_of([flow("googlenet")], "blocks", "stages.0.inception3a")
    nodes = {e.get("data-id"): e for e in root.iter() if e.get("class", "").startswith("node")}
    concat = next(i for i, e in nodes.items() if e.get("data-kind") == "concat")
    assert nodes[concat].get("data-out") == "256x28x28"
    edges = [e for e in root.iter(f"{SVG}polyline") if e.get("class", "").startswith("edge")]
    into = [nodes[e.get("data-from")] for e in edges if e.get("data-to") == concat]
    assert [int(n.get("data-out").split("x")[0]) for n in into] == [64, 128, 32, 32]
    assert [n.get("data-kernel") for n in into] == ["1x1", "3x3", "5x5", "1x1"]
    # the fourth branch projects a 3x3 max pool
    pool = [nodes[e.get("data-from")] for e in edges if e.get("data-to") ==
            into[3].get("data-id")]
    assert [p.get("data-kind") for p in pool] == ["pool"]


def test_residual_blocks_identity_and_projection() -> None:
    root = svg_of([flow("resnet34")], "blocks")
    titles = [e.get("data-name") for e in root.iter(f"{SVG}text") if e.get("class") == "block"]
    assert titles == ["stages.0.0", "stages.1.0"]  # identity, then projection
    joins = [e for e in root.iter(f"{SVG}circle") if "join" in e.get("class", "")]
    assert len(joins) == 2
    around = [e for e in root.iter(f"{SVG}polyline") if "shortcut" in e.get("class", "")]
    assert len(around) == 1  # the identity goes around its lane; the projection has a lane


def test_alexnet_two_towers_and_lenet_volumes() -> None:
    root = svg_of([flow("alexnet")], "volumes")
    towers = [e.get("data-tower") for e in root.iter(f"{SVG}rect") if e.get("class") == "volume"]
    # the input is one volume; 5 convolutions, 3 pools and 2 of the 3 fc layers in two towers
    assert towers.count("1") == towers.count("2") == 10 and towers.count(None) == 2
    root = svg_of([flow("lenet5")], "volumes")
    texts = [e.text for e in root.iter(f"{SVG}text") if e.get("class") == "shape"]
    assert texts == ["1x32x32", "6x28x28", "6x14x14", "16x10x10", "16x5x5", "120x1x1", "84",
                     "10"]


def test_long_nets_collapse_repeated_blocks() -> None:
    root = svg_of([flow("resnet50")], "volumes")
    counts = [e.get("data-count") for e in root.iter(f"{SVG}rect")
              if e.get("class") == "volume" and e.get("data-count")]
    assert counts == ["2", "3", "5", "2"]  # 3, 4, 6, 3 blocks: the first of each differs


def test_cli_writes_svg_png_pdf_and_bad_input_is_one_line(tmp_path, capsys) -> None:
    for suffix in ("svg", "png", "pdf"):
        out = tmp_path / f"lenet.{suffix}"
        rc, text, _ = run(capsys, "viz", "architecture", "lenet5", "--out", str(out))
        assert rc == 0 and out.stat().st_size > 1000 and "60,000 parameters" in text
    assert (tmp_path / "lenet.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "lenet.pdf").read_bytes()[:4] == b"%PDF"
    for bad in (["googlenet", "--style", "columns"], ["vgg16", "--style", "blocks"],
                ["nosuch"], ["lenet5", "--out", str(tmp_path / "x.txt")],
                ["alexnet", "vgg16", "--style", "volumes"]):
        argv = ["viz", "architecture", *bad]
        if "--out" not in bad:
            argv += ["--out", str(tmp_path / "x.svg")]
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and len(err.strip().splitlines()) == 1, bad


def test_a_meta_pass_leaves_the_models_batch_norms_as_they_were() -> None:
    # meta passes run batch norms as a copy of their input (analysis/meta.py): afterwards a
    # model with real weights computes what it did before
    import torch

    from convzoo import create_model

    torch.manual_seed(0)
    model = create_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    before = model(x)
    prof, _ = profile_with_fields(model)
    assert prof.total_params == sum(p.numel() for p in model.parameters())
    assert not any("forward" in vars(m) for m in model.modules())
    torch.testing.assert_close(model(x), before)
