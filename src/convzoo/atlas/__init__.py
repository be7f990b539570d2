"""`convzoo atlas`: a static, offline site of the zoo: an index with the evolution chart and
the compare table, a page per model (its drawings, layer table with receptive fields, the
paper's table, citation, accuracy, training defaults) and a page per lecture topic.

Everything is computed on the meta device (no weights, no training); nothing is fetched: no
CDN, the one script (table sorting, an image check) is inline.
"""

from __future__ import annotations

import math
import shutil
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserInputError
from ..tables import Table
from .html import html_table, page
from .lectures import LECTURES, figures_dir

if TYPE_CHECKING:
    from ..viz.architecture import Flow


def evolution_svg(rows) -> str:
    """Top-1 against GMACs (log), each point a link to its model's page."""
    shown = [r for r in rows if r.top1 is not None and r.macs > 0]
    if not shown:
        return '<p class="note">No model here has a published top-1 accuracy.</p>'
    w, h, m = 1000, 520, 60
    xs = [math.log10(r.gmacs) for r in shown]
    lo, hi = min(xs) - 0.15, max(xs) + 0.15
    ylo, yhi = min(r.top1 for r in shown) - 2, max(r.top1 for r in shown) + 2
    big = max(r.params for r in shown)

    def px(r) -> tuple[float, float]:
        return (m + (math.log10(r.gmacs) - lo) / (hi - lo) * (w - 2 * m),
                h - m - (r.top1 - ylo) / (yhi - ylo) * (h - 2 * m))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="DejaVu Sans,sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="#444"/>',
           f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="#444"/>',
           f'<text x="{w / 2}" y="{h - 18}" text-anchor="middle">GMACs per image '
           "(log scale)</text>",
           f'<text x="16" y="{h / 2}" transform="rotate(-90 16 {h / 2})" '
           'text-anchor="middle">published ImageNet top-1 (%)</text>']
    for e in range(math.ceil(lo), math.floor(hi) + 1):
        x = m + (e - lo) / (hi - lo) * (w - 2 * m)
        out.append(f'<text x="{x:.0f}" y="{h - m + 16}" text-anchor="middle">{10.0 ** e:g}'
                   "</text>")
    for t in range(math.ceil(ylo), math.floor(yhi) + 1, 5):
        y = h - m - (t - ylo) / (yhi - ylo) * (h - 2 * m)
        out.append(f'<text x="{m - 6}" y="{y + 4:.0f}" text-anchor="end">{t}</text>')
    for r in sorted(shown, key=lambda r: -r.params):
        x, y = px(r)
        rad = 3 + 22 * math.sqrt(r.params / big)
        out.append(f'<a href="models/{r.model}.html"><circle cx="{x:.1f}" cy="{y:.1f}" '
                   f'r="{rad:.1f}" fill="#1f77b4" fill-opacity="0.3" stroke="#1f77b4"/>'
                   f'<text x="{x + rad + 3:.1f}" y="{y + 4:.1f}">{escape(r.model)}</text></a>')
    out.append("</svg>")
    return "\n".join(out)


def build_atlas(out: str | Path, models: list[str] | None = None) -> Path:
    """Write the site to `out` (created); returns index.html's path."""
    from ..analysis.compare import compare_row, published, train_only_note
    from ..registry import list_models
    from .model_page import flow_with_fields, model_page

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} is a file; give a directory")
    names = models or list_models()
    for sub in ("models", "figures", "lectures"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    pub = published()
    rows = []
    drawn = {m for lec in LECTURES for d in lec.drawings for m in d.models}
    flows: dict[str, Flow] = {}  # the lectures' models: traced for their pages, drawn again
    for name in names:  # one pass gives the compare row, the drawings and the layer table
        traced = flow_with_fields(name)
        rows.append(compare_row(name, traced[0].profile, traced[1], pub))
        (out / "models" / f"{name}.html").write_text(model_page(rows[-1], out, traced),
                                                     encoding="utf-8")
        if name in drawn:
            flows[name] = traced[0]
    table = Table("models", ["model", "params", "MACs", "activations (MB)", "depth", "top-1",
                             "top-5", "source"],
                  [[f'<a href="models/{r.model}.html">{escape(r.model)}</a>', r.params, r.macs,
                    r.activation_mb, r.depth, r.top1 if r.top1 is not None else "-",
                    r.top5 if r.top5 is not None else "-", r.source or "-"] for r in rows],
                  ["MACs of convolutions and fully connected layers at each model's default "
                   "input; depth: weight layers on the longest path; click a header to sort"]
                  + ([train_only_note(rows)] if train_only_note(rows) else []))
    body = ("<p>Every number here comes from the real modules on the meta device, as "
            "<code>convzoo summary</code> and <code>convzoo compare</code> print them.</p>"
            "<h2>Evolution of architectures</h2>" + evolution_svg(rows)
            + '<h2 id="models">Models</h2>' + html_table(table, sortable=True)
            + '<h2>Lectures</h2><ul>' + "".join(
                f'<li><a href="lectures/{lec.slug}.html">{escape(lec.title)}</a></li>'
                for lec in LECTURES) + "</ul>")
    index = out / "index.html"
    index.write_text(page("convzoo atlas", body, 0), encoding="utf-8")
    _lectures(out, flows)
    return index


def _lectures(out: Path, flows: dict[str, Flow]) -> None:
    from ..viz.architecture import draw, trace_flow

    src = figures_dir()
    drawn: set[str] = set()
    items = []
    for lec in LECTURES:
        figs = ""
        for f in lec.figures:
            if src is not None and (src / f).is_file():
                shutil.copyfile(src / f, out / "figures" / f)
                figs += f'<img class="fig" src="../figures/{f}" alt="{escape(lec.title)}">'
        for d in lec.drawings:  # drawn from the installed package, as the command says
            if d.file not in drawn:
                for m in d.models:
                    if m not in flows:
                        flows[m] = trace_flow(m)
                draw([flows[m] for m in d.models], d.style, d.block).save(
                    out / "figures" / d.file, title=f"{', '.join(d.models)} ({d.style})")
                drawn.add(d.file)
            figs += f'<img class="fig" src="../figures/{d.file}" alt="{escape(d.command)}">'
        if not figs:
            figs = ('<p class="note">The figure is made by the command below (it trains, so '
                    "the atlas does not run it).</p>")
        commands = lec.commands + tuple(d.command for d in lec.drawings)
        body = (f"<p>{escape(lec.text)}</p>{figs}<h2>Make it</h2><pre>"
                + "\n".join(escape(c) for c in commands) + "</pre>"
                + (f'<p>Lesson: <code>lessons/{lec.lesson}.py</code></p>' if lec.lesson else ""))
        (out / "lectures" / f"{lec.slug}.html").write_text(page(lec.title, body, 1),
                                                           encoding="utf-8")
        items.append(f'<li><a href="{lec.slug}.html">{escape(lec.title)}</a></li>')
    (out / "lectures" / "index.html").write_text(
        page("Lectures", "<ul>" + "".join(items) + "</ul>", 1), encoding="utf-8")
