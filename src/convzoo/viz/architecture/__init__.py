"""The networks drawn as the lectures draw them, from the real modules on the meta device:
`volumes` (LeNet-5, AlexNet), `blocks` (Inception, residual, MBConv, ...), `columns` (ResNet's
Figure 3). Every label comes from the profile `summary` prints, taken in the same pass."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserInputError
from .blocks import draw_blocks
from .canvas import Canvas
from .columns import check_chain, draw_columns
from .graph import Flow, trace_flow
from .units import blocks
from .volumes import draw_volumes

STYLES = ("volumes", "blocks", "columns")
SUFFIXES = (".svg", ".png", ".pdf")


def styles_for(flow: Flow) -> list[str]:
    """The styles that apply to a model: blocks where it has blocks, columns where it is a
    chain with shortcuts."""
    out = ["volumes"]
    if blocks(flow):
        out.append("blocks")
    try:
        check_chain(flow)
        out.append("columns")
    except UserInputError:
        pass
    return out


def check_style(style: str, count: int) -> None:
    """Refuse an unknown style, or several models for a style that draws one, before
    anything is traced."""
    if style not in STYLES:
        raise UserInputError(f"unknown style {style!r}: choose one of {', '.join(STYLES)}")
    if style != "columns" and count != 1:
        raise UserInputError(f"--style {style} draws one model at a time; columns draws "
                             "several side by side")


def draw(flows: list[Flow], style: str, block: str | None = None) -> Canvas:
    """Lay out `flows` in `style`; volumes and blocks draw one model."""
    check_style(style, len(flows))
    if style == "columns":
        return draw_columns(flows)
    if style == "volumes":
        return draw_volumes(flows[0])
    return draw_blocks(flows[0], block)


def draw_architecture(
    models: list[str], style: str, out: str | Path, block: str | None = None,
    input_size: tuple[int, int, int] | None = None,
) -> tuple[list[Flow], tuple[int, int]]:
    """Draw registered models to `out` (.svg, .png or .pdf); returns the traced flows and the
    drawing's size in pixels."""
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise UserInputError(f"--out {out}: give a .svg, .png or .pdf file name")
    check_style(style, len(models))
    flows = [trace_flow(m, input_size) for m in models]
    canvas = draw(flows, style, block)
    size = canvas.save(out, title=f"{', '.join(models)} ({style})")
    return flows, size


__all__ = ["STYLES", "Canvas", "Flow", "check_style", "draw", "draw_architecture", "styles_for",
           "trace_flow"]
