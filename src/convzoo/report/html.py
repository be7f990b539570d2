"""The run report: one HTML file with its images inlined (base64 PNG), its style inline and
no script, so it opens from disk, offline, in any browser, and prints.

Sections, each a <section id=...>: summary (top-1/top-5 error, status), config (every value
and where it came from), model (parameters, MACs, the per-layer table, and a chart of
activation memory and parameters per layer), curves (loss, accuracy and learning rate per
epoch), confusion, per-class, mistakes (the most confidently wrong test images), run
(throughput, device, versions).
"""

from __future__ import annotations

import base64
import errno
import html
import os
import time
from pathlib import Path
from typing import Any

from ..errors import ConvzooError, UserInputError
from ..tables import human
from . import plots
from .predictions import Predictions, predict_run
from .rundir import RunDir, read_run

SECTIONS = ("summary", "config", "model", "curves", "confusion", "per-class", "mistakes",
            "run")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1150px; margin: 0 auto; padding: 1.5em 2em 3em; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; overflow-wrap: anywhere; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.big { font-size: 1.5em; font-weight: 600; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 9em; }
.card .label { color: #666; font-size: 0.85em; }
.src-recipe { color: #1f5fa8; } .src-flag { color: #a83a1f; } .src---set { color: #a81f7a; }
.src-default { color: #777; } .src-checkpoint { color: #2e7d32; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; }
details summary { cursor: pointer; color: #1f5fa8; margin: 0.4em 0; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _img(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'


def _table(columns: list[str], rows: list[list[Any]], numeric: set[int] = frozenset(),
           raw: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            cls = ' class="num"' if i in numeric else ""
            cells.append(f"<td{cls}>{c if i in raw else _e(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_e(title)}</h2>{body}</section>'


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "-"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


# ---- sections ------------------------------------------------------------------------------

def _summary(run: RunDir, pred: Predictions | None) -> str:
    s = run.summary
    test = s.get("test") or {}
    top1 = pred.top1 if pred is not None else test.get("top1")
    top5 = pred.top5 if pred is not None else test.get("top5")
    k = pred.k if pred is not None else test.get("top5_k", 5)
    cards = [("top-1 error", _pct(None if top1 is None else 1 - top1)),
             (f"top-{k} error", _pct(None if top5 is None else 1 - top5)),
             ("top-1 accuracy", _pct(top1)),
             ("status", s.get("status", "-")),
             ("epochs", s.get("epochs", run.meta.get("epoch", "-"))),
             ("steps", s.get("steps", run.meta.get("step", "-")))]
    html_cards = "".join(f'<div class="card"><div class="label">{_e(a)}</div>'
                         f'<div class="big">{_e(b)}</div></div>' for a, b in cards)
    n = f"{len(pred.labels)} test images" if pred is not None else \
        f"{test.get('n', '?')} test images"
    note = f'<p class="note">On {_e(n)} of {_e(run.data)}'
    if pred is not None:
        note += ", scored again from the last checkpoint for this page"
    note += ". Error = 1 - accuracy.</p>"
    if s.get("message"):
        note += f'<p class="note">{_e(s["message"])}</p>'
    return _section("summary", "Result", f'<div class="cards">{html_cards}</div>{note}')


def _config(run: RunDir) -> str:
    from ..train.config import TrainConfig

    defaults = TrainConfig().to_dict()
    cfg = run.config
    if not cfg:
        return _section("config", "Configuration", "<p>This run recorded no config.</p>")
    have = bool(run.sources)

    def source(k: str) -> str:
        src = run.sources.get(k, "recorded")
        if k == "recipe" and src == "model default":
            return '<span class="src-recipe">the model\'s default</span>'
        if src == "recipe" and cfg.get("recipe"):
            return f'<span class="src-recipe">recipe {_e(cfg["recipe"])}</span>'
        return f'<span class="src-{_e(src)}">{_e(src)}</span>'

    shown = [k for k in cfg if k != "source"]  # the source is quoted above the table
    changed = [k for k in shown if (run.sources.get(k, "default") != "default" if have
                                  else cfg[k] != defaults.get(k))]
    rest = [k for k in shown if k not in changed]
    rows = [[k, _value(cfg[k]), source(k)] for k in changed]
    body = (f"<p>Recipe: <b>{_e(cfg.get('recipe') or 'none')}</b>"
            + (f" &mdash; {_e(cfg['source'])}" if cfg.get("source") else "") + "</p>")
    body += _table(["setting", "value", "from"], rows, raw={2})
    others = _table(["setting", "value", "from"], [[k, _value(cfg[k]), source(k)] for k in rest],
                    raw={2})
    body += (f"<details><summary>the other {len(rest)} settings (at their defaults)"
             f"</summary>{others}</details>")
    if not have:
        body += ('<p class="note">This run did not record where its settings came from '
                 "(no config_sources): the table lists those that differ from the "
                 "defaults.</p>")
    return _section("config", "Configuration", body)


def _model(run: RunDir) -> str:
    from ..analysis.profile import summary

    meta = run.meta
    args = dict(meta.get("model_args") or run.config.get("model_args") or {})
    args.pop("weights", None)
    size = tuple(meta.get("input_size") or run.config.get("input_size") or ()) or None
    try:
        prof = summary(run.model, size, **args)
    except Exception as e:  # noqa: BLE001 - a model the profiler cannot trace still gets a page
        return _section("model", "Model", f"<p>The profile could not be computed: {_e(e)}</p>")
    import torch

    cards = [("parameters", f"{prof.total_params:,}"), ("MACs", human(prof.total_macs)),
             ("FLOPs (2 x MACs)", human(prof.flops)),
             ("activations, one image", human(prof.activation_bytes(torch.float32), "B") +
              " fp32"),
             ("input", "x".join(map(str, prof.input_size)))]
    body = '<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{_e(a)}</div><div class="big">{_e(b)}</div>'
        f"</div>" for a, b in cards) + "</div>"
    body += ('<p class="note">MACs are multiply-accumulates of convolutions and fully connected '
             "layers; activation memory is every layer's output, for one image in fp32. "
             "The chart shows the lecture's point: the memory is in the first convolutions, "
             "the parameters in the last layers.</p>")
    body += _img(plots.layer_chart(prof.layers, f"{run.model} at "
                                   f"{'x'.join(map(str, prof.input_size))}"),
                 "activation memory and parameters per layer")
    rows = [[r.name, r.type, "x".join(map(str, r.output_shape[1:])), f"{r.params:,}",
             f"{r.macs:,}", f"{r.activations:,}"] for r in prof.layers]
    body += (f"<details><summary>the per-layer table ({len(rows)} layers)</summary>"
             + _table(["layer", "type", "output", "params", "MACs", "activations"], rows,
                      numeric={3, 4, 5}) + "</details>")
    return _section("model", f"Model: {run.model}", body)


def _curves(run: RunDir) -> str:
    if not run.history:
        return _section("curves", "Training curves", "<p>No epoch was recorded.</p>")
    body = _img(plots.curves(run.history), "loss, accuracy and learning rate per epoch")
    rows = [[r.get("epoch"), r.get("step"), _value(r.get("lr")), _fmt(r.get("train_loss")),
             _pct(r.get("train_top1")), _fmt(r.get("val_loss")), _pct(r.get("val_top1")),
             _pct(r.get("val_top5")), _fmt(r.get("epoch_s"), 1),
             _fmt(r.get("images_per_s"), 0)] for r in run.history]
    body += ("<details><summary>per epoch</summary>" + _table(
        ["epoch", "step", "lr", "train loss", "train top-1", "eval loss", "eval top-1",
         "eval top-5", "seconds", "images/s"], rows, numeric=set(range(10))) + "</details>")
    return _section("curves", "Training curves", body)


def _fmt(v: Any, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _confusion(pred: Predictions | None, why: str) -> str:
    if pred is None:
        return _section("confusion", "Confusion matrix", f"<p>{_e(why)}</p>")
    return _section("confusion", "Confusion matrix",
                    _img(plots.confusion(pred.confusion(), pred.classes), "confusion matrix")
                    + '<p class="note">Rows: the true class; columns: the predicted one; each '
                      "cell the fraction of the row's images (and their count).</p>")


def _per_class(pred: Predictions | None, why: str) -> str:
    if pred is None:
        return _section("per-class", "Per-class accuracy", f"<p>{_e(why)}</p>")
    rows = pred.per_class()
    body = _img(plots.per_class(rows), "accuracy per class")
    body += _table(["class", "test images", "accuracy", "error"],
                   [[c, n, _pct(a), _pct(1 - a)] for c, n, a in rows], numeric={1, 2, 3})
    return _section("per-class", "Per-class accuracy", body)


def _mistakes(pred: Predictions | None, why: str) -> str:
    title = "Most confidently wrong test images"
    if pred is None:
        return _section("mistakes", title, f"<p>{_e(why)}</p>")
    if not pred.wrong:
        return _section("mistakes", title, "<p>The model got every test image right.</p>")
    captions = []
    for i in pred.wrong:
        p = pred.probs[i]
        captions.append(f"true: {pred.classes[int(pred.labels[i])]}\n"
                        f"pred: {pred.classes[int(p.argmax())]} ({float(p.max()):.2f})")
    body = _img(plots.mistakes(pred.images, captions), title)
    body += (f'<p class="note">The {len(pred.wrong)} wrong answers given with the highest '
             "probability (in brackets), most confident first.</p>")
    return _section("mistakes", title, body)


def _run(run: RunDir) -> str:
    s, meta = run.summary, run.meta
    ips = s.get("images_per_s")
    rows = [["throughput", f"{ips:.0f} images/s (training)" if ips else "-"],
            ["training time", f"{s['train_s']:.1f} s" if s.get("train_s") else "-"],
            ["wall time", f"{s['wall_s']:.1f} s" if s.get("wall_s") else "-"]]
    if s.get("compile_s"):
        rows.append(["compile time", f"{s['compile_s']:.1f} s (not counted as training)"])
    rows += [["device", s.get("device", "-")], ["precision", s.get("amp", "-")],
             ["channels_last", s.get("channels_last", "-")],
             ["torch.compile", s.get("compile", "-")]]
    if s.get("processes"):
        rows.append(["processes (DDP)", s["processes"]])
    source = meta.get("data_source")
    rows += [["data", f"{run.data} ({source})" if source else run.data],
             ["run directory", str(run.path)]]
    versions = s.get("versions") or meta.get("versions") or {}
    rows += [[f"{k} version", v] for k, v in versions.items()]
    return _section("run", "Run: throughput, device and versions", _table(["what", "value"], rows))


# ---- the page ------------------------------------------------------------------------------

def render_report(run: RunDir, pred: Predictions | None, why_no_predictions: str = "") -> str:
    """The page's HTML for a read run and (when they could be made) its test predictions."""
    nav = "".join(f'<a href="#{s}">{s.replace("-", " ")}</a>' for s in SECTIONS)
    parts = [_summary(run, pred), _config(run), _model(run), _curves(run),
             _confusion(pred, why_no_predictions), _per_class(pred, why_no_predictions),
             _mistakes(pred, why_no_predictions), _run(run)]
    made = time.strftime("%Y-%m-%d %H:%M")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(run.title)} - convzoo run report</title><style>{STYLE}</style>"
            f"</head><body><main><h1>{_e(run.title)}</h1>"
            f'<p class="note">convzoo run report, made {made} from {_e(run.path)}</p>'
            f"<nav>{nav}</nav>{''.join(parts)}</main></body></html>\n")


def build_report(run_dir: str | Path, out: str | Path | None = None, *, device: str = "cpu",
                 limit: int | None = None, predictions: bool = True) -> Path:
    """Write the report of `run_dir` to `out` (default: RUN_DIR/report.html); return its path.

    `predictions=False` (or a run without a checkpoint or data) leaves out the confusion
    matrix, per-class accuracy and mistakes, saying why; `limit` scores only the first
    `limit` test images."""
    run = read_run(run_dir)
    path = Path(out) if out is not None else run.path / "report.html"
    _check_writable(path)  # before the scoring, which takes a while
    pred, why = None, ""
    if predictions:
        try:
            pred = predict_run(run, device=device, limit=limit)
        except UserInputError as e:
            why = f"Not drawn: {e}"
    else:
        why = "Not drawn: the report was made without scoring the test set."
    page = render_report(run, pred, why)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(page.encode("utf-8"))
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)  # nothing half-written left behind
        raise ConvzooError(f"cannot write the report {path}: {_why(e)}") from None
    return path


def _why(e: OSError) -> str:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"the disk is full ({e.strerror}); free some space or give --out elsewhere"
    return f"{e.strerror or e}; give --out elsewhere"


def _check_writable(path: Path) -> None:
    """A one-line error now if the report cannot be written at `path`."""
    if path.is_dir():
        raise UserInputError(f"{path} is a directory; give the report a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvzooError(f"cannot create {path.parent} for the report: {_why(e)}") from None
    if not os.access(path.parent, os.W_OK):  # also says so for a read-only mount
        raise ConvzooError(f"cannot write the report {path}: {path.parent} is not writable "
                           "(a read-only file system or no permission); give --out elsewhere")
