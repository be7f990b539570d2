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

from ..errors import UserInputError
from ..tables import Table, cell
from .lectures import LECTURES, figures_dir

CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;
padding:16px 24px;color:#222;line-height:1.4}
nav a{margin-right:14px} h1{margin:.2em 0} h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right} th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left} th[data-k]{cursor:pointer}
.fig{max-width:100%;border:1px solid #ddd;margin:6px 0} code,pre{background:#f5f5f5}
pre{padding:8px;overflow-x:auto} .note{color:#555;font-size:13px}
"""

# Sorts a table by a clicked header, and marks the page when every image has loaded, so a
# headless browser's dump shows whether one failed.
SCRIPT = """
document.querySelectorAll('th[data-k]').forEach(function(th){th.onclick=function(){
var t=th.closest('table'),b=t.tBodies[0],i=th.cellIndex,up=th.dataset.up!=='1';
var rows=Array.from(b.rows);rows.sort(function(x,y){
var a=x.cells[i].dataset.v||x.cells[i].textContent,c=y.cells[i].dataset.v||y.cells[i].textContent;
var na=parseFloat(a),nc=parseFloat(c);
var r=(isNaN(na)||isNaN(nc))?a.localeCompare(c):na-nc;return up?r:-r;});
rows.forEach(function(r){b.appendChild(r)});th.dataset.up=up?'1':'0';};});
window.addEventListener('load',function(){var bad=Array.from(document.images).filter(
function(im){return !(im.complete&&im.naturalWidth>0)});
document.body.setAttribute('data-images',bad.length?'broken:'+bad.length:'ok');});
"""


def _page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    nav = (f'<nav><a href="{up}index.html">index</a><a href="{up}index.html#models">models</a>'
           f'<a href="{up}lectures/index.html">lectures</a></nav>')
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{nav}<h1>{escape(title)}</h1>\n{body}\n<script>{SCRIPT}</script>"
            "</body></html>\n")


def html_table(t: Table, sortable: bool = False) -> str:
    head = "".join(f'<th{" data-k" if sortable else ""}>{escape(c)}</th>' for c in t.columns)
    rows = []
    for r in t.rows:
        rows.append("<tr>" + "".join(
            f'<td data-v="{escape(str(v))}">{escape(cell(v))}</td>' if isinstance(v, (int, float))
            else f"<td>{v if str(v).startswith('<a ') else escape(cell(v))}</td>"
            for v in r) + "</tr>")
    if t.totals is not None:
        rows.append("<tr>" + "".join(f"<th>{escape(cell(v))}</th>" for v in t.totals) + "</tr>")
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in t.notes)
    return (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{notes}")


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
    from ..analysis.compare import compare_models, train_only_note
    from ..registry import list_models
    from .model_page import model_page

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} is a file; give a directory")
    names = models or list_models()
    for sub in ("models", "figures", "lectures"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows = compare_models(names)
    for r in rows:
        (out / "models" / f"{r.model}.html").write_text(model_page(r, out), encoding="utf-8")
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
    index.write_text(_page("convzoo atlas", body, 0), encoding="utf-8")
    _lectures(out)
    return index


def _lectures(out: Path) -> None:
    src = figures_dir()
    items = []
    for lec in LECTURES:
        figs = ""
        for f in lec.figures:
            if src is not None and (src / f).is_file():
                shutil.copyfile(src / f, out / "figures" / f)
                figs += f'<img class="fig" src="../figures/{f}" alt="{escape(lec.title)}">'
        if not figs:
            figs = ('<p class="note">The figure is made by the command below (it trains, so '
                    "the atlas does not run it).</p>")
        body = (f"<p>{escape(lec.text)}</p>{figs}<h2>Make it</h2><pre>"
                + "\n".join(escape(c) for c in lec.commands) + "</pre>"
                + (f'<p>Lesson: <code>lessons/{lec.lesson}.py</code></p>' if lec.lesson else ""))
        (out / "lectures" / f"{lec.slug}.html").write_text(_page(lec.title, body, 1),
                                                           encoding="utf-8")
        items.append(f'<li><a href="{lec.slug}.html">{escape(lec.title)}</a></li>')
    (out / "lectures" / "index.html").write_text(
        _page("Lectures", "<ul>" + "".join(items) + "</ul>", 1), encoding="utf-8")
