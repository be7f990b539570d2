"""One model's page: its drawings, layer table with receptive fields, the paper's (or the
lecture's) table, citation, published accuracy and training defaults."""

from __future__ import annotations

from html import escape
from pathlib import Path

from ..analysis.compare import CompareRow
from ..analysis.meta import build_meta
from ..analysis.paper import paper_table
from ..analysis.receptive import RFTrace, trace_fields
from ..analysis.summary_table import profile_table
from ..viz.architecture import Flow, draw, styles_for, trace_flow
from .html import html_table, page


def flow_with_fields(name: str) -> tuple[Flow, RFTrace]:
    """The model's traced flow (drawings, and the profile `summary` prints) and its receptive
    fields from one meta forward pass: the flow's tracer and the profile's counter run inside
    the fields' tracer, as `profile_with_fields` nests the profile. A pass costs about half a
    second for a large model, and a page needs all three."""
    model, _, size = build_meta(name)
    flows: list[Flow] = []
    trace = trace_fields(model, size, run=lambda m, s: flows.append(trace_flow(m, s)))
    trace.model = name
    return flows[0], trace


def model_page(r: CompareRow, out: Path, traced: tuple[Flow, RFTrace] | None = None) -> str:
    """The page's HTML; its figures are written under out/figures. `traced`: the model's
    `flow_with_fields`, when the caller has it already (the atlas, for its compare row)."""
    flow, trace = traced or flow_with_fields(r.model)
    prof = flow.profile
    figs = []
    for style in styles_for(flow):
        name = f"{r.model}_{style}.svg"
        draw([flow], style).save(out / "figures" / name, title=f"{r.model} ({style})")
        figs.append(f'<h3>{style}</h3><img class="fig" src="../figures/{name}" '
                    f'alt="{escape(r.model)} drawn as {style}">')
    paper = getattr(flow.model, "paper", None)
    cite = escape(getattr(paper, "citation", "") or "")
    url = getattr(paper, "url", "")
    if url:
        cite += f' <a href="{escape(url)}">{escape(url)}</a>'
    acc = ("not published here" if r.top1 is None and r.top5 is None else
           f"top-1 {r.top1 if r.top1 is not None else '-'}%, top-5 "
           f"{r.top5 if r.top5 is not None else '-'}% ({escape(r.source)}: "
           f"{escape(r.evaluation)}; {escape(r.citation)})")
    body = [f"<p>{cite}</p>",
            f"<p>{r.params:,} parameters, {r.macs:,} MACs at {r.input}, depth {r.depth}; "
            f"published ImageNet accuracy: {acc}</p>",
            _defaults(r.model), _filters(r.model, out), "<h2>Drawings</h2>", *figs,
            "<h2>Layers, with receptive fields</h2>",
            html_table(profile_table(prof, trace)),
            "<h2>The paper's table</h2>", html_table(paper_table(flow.model, flow.profile))]
    return page(r.model, "\n".join(b for b in body if b), 1)  # no filters: no empty line


def _filters(name: str, out: Path) -> str:
    """The first layer's filters drawn from the model's ImageNet weights where convzoo has them
    by name (the EfficientNet-Lites, from pip packages), as `convzoo viz filters` draws them;
    where those packages are missing, one line saying how to get them; '' for other models."""
    from ..errors import UserInputError
    from ..registry import create_model, get_entry
    from ..viz.filters import draw_filters

    if "imagenet" not in get_entry(name).pretrained:
        return ""
    head = "<h2>First-layer filters (ImageNet weights)</h2>"
    cmd = (f"<pre>convzoo viz filters {escape(name)} --weights imagenet --out filters.png"
           "</pre>")
    try:
        model = create_model(name, weights="imagenet")
    except UserInputError as e:  # the weights package is not installed: say how to get it
        return f'{head}<p class="note">Not drawn: {escape(str(e))}.</p>{cmd}'
    file = f"{name}_filters.png"
    pic = draw_filters(model, out / "figures" / file)
    return (f'{head}<img class="fig" src="../figures/{file}" alt="the {pic.shown} filters of '
            f'{escape(name)} {escape(pic.layer)}">{cmd}')


def _defaults(name: str) -> str:
    try:
        from ..train.defaults import model_defaults

        d = model_defaults(name)
    except Exception:  # a model without an entry: the page says so rather than failing
        return "<p>Training defaults: none recorded.</p>"
    return (f"<h2>Training defaults</h2><p>recipe <code>{escape(d.recipe)}</code> "
            f"(built for {escape(d.built_for)}): {escape(d.why)}</p>"
            f"<pre>convzoo train {escape(name)}</pre>")
