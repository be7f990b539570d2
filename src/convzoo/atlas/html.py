"""The atlas's HTML: one page frame (style, navigation, the inline script) and tables."""

from __future__ import annotations

from html import escape

from ..tables import Table, cell

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


def page(title: str, body: str, depth: int) -> str:
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
