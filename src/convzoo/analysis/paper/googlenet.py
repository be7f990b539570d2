"""GoogLeNet's Table 1, row by row, with the real figures beside the printed ones."""

from __future__ import annotations

from torch import nn

from ...models.googlenet import PAPER_FIGURES, STAGES, GoogLeNet
from ...tables import Table
from ..profile import Profile
from .rows import rows_under


def _group(profile: Profile, prefixes: tuple[str, ...]) -> tuple[int, int, tuple[int, ...]]:
    """Weights, MACs and the last output shape of the rows under `prefixes`."""
    rows = rows_under(profile, *prefixes)
    shape = next((r.output_shape for r in reversed(rows) if r.output_shape), ())
    return sum(r.weights for r in rows), sum(r.macs for r in rows), shape


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[2]}x{shape[3]}x{shape[1]}" if len(shape) == 4 else f"1x1x{shape[-1]}"


def _k(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def googlenet_table(model: GoogLeNet, profile: Profile) -> Table:
    """Table 1 row by row from the real profile: weights / 1024 and MACs / 10^6 per row."""
    b = profile.batch_size
    # Table 1's columns, named shorter so the table fits a 100-column terminal (see the notes)
    cols = ["type", "patch", "output", "depth", "1x1", "3x3r", "3x3", "5x5r", "5x5", "pool",
            "params", "ops", "paper params/ops"]
    rows: list[list] = []

    def add(kind: str, patch: str, prefixes: tuple[str, ...], depth: int, filters: tuple,
            key: str | None, channels: int | None = None) -> None:
        w, macs, shape = _group(profile, prefixes)
        if channels is not None:  # a module's output is its branches' concatenation
            shape = (*shape[:1], channels, *shape[2:])
        fig = PAPER_FIGURES.get(key) if key else None
        ours = [f"{_k(w / 1024)}K", f"{macs / b / 1e6:.0f}M"] if depth else ["", ""]
        paper = [f"{fig.params_k:g}K/{fig.ops_m:g}M"] if fig else [""]
        cells = [("" if f is None else f) for f in filters]
        rows.append([kind, patch, _size(shape), depth, *cells, *ours, *paper])

    none6 = (None,) * 6
    aux = sum(r.params for r in profile.layers if r.name.startswith("aux."))
    k5, pool4 = model.variant.k5, model.variant.pool4
    add("convolution", "7x7/2", ("stem.conv1",), 1, none6, "conv1")
    add("max pool", "3x3/2", ("stem.pool1",), 0, none6, None)
    add("convolution", "3x3/1", ("stem.conv2_reduce", "stem.conv2"), 2,
        (None, 64, 192, None, None, None), "conv2")
    add("max pool", "3x3/2", ("stem.pool2",), 0, none6, None)
    for i, names in enumerate(STAGES):
        if i:
            pool = ("stages.1.pool3", "3x3/2") if i == 1 else ("stages.2.pool4",
                                                              f"{pool4}x{pool4}/2")
            add("max pool", pool[1], (pool[0],), 0, none6, None)
        for n in names:
            r = getattr(model.stages[i], f"inception{n}").row
            add(f"inception ({n})", "", (f"stages.{i}.inception{n}",), 2, r[1:], n,
                r.out_channels)
    _, _, last = _group(profile, (f"stages.{len(STAGES) - 1}",))
    patch = f"{last[2]}x{last[3]}/1" if len(last) == 4 else ""
    add("avg pool", patch, ("head.pre",), 0, none6, None)
    add(f"dropout ({model.head.drop.p:.0%})" if isinstance(model.head.drop, nn.Dropout)
        else "dropout (none)", "", ("head.drop", "head.pre"), 0, none6, None)
    if model.num_classes > 0:
        add("linear", "", ("head.fc",), 1, none6, "linear")
        rows.append(["softmax", "", f"1x1x{model.num_classes}", 0, *[""] * 9])
    notes = [
        "Table 1's columns: patch size/stride, output size, depth, #1x1, #3x3 reduce (3x3r), "
        "#3x3, #5x5 reduce (5x5r), #5x5, pool proj (pool)",
        "params: weights without biases in units of 1024 (1K = 1024 fits the paper's column "
        "best); ops: multiply-accumulates in millions, per image",
        "paper params/ops: Table 1 as printed. Its conv 7x7/2 row (2.7K / 34M) "
        "disagrees with 7*7*3*64 = 9,408 weights and 118M MACs at 112x112; its params for "
        "4a, 4c, 4d, 4e, 5b and its 5a row (1072K / 54M, which fit 928 input channels, not "
        "832) disagree with its own filter columns: the real numbers are shown",
        f"LRN layers and the auxiliary classifiers are not rows of Table 1; the 5x5 branch "
        f"here is {k5}x{k5}",
        f"total parameters {profile.total_params:,} with biases "
        f"({profile.total_weights:,} without); without the auxiliary classifiers "
        f"{profile.total_params - aux:,}; MACs {profile.total_macs / b / 1e6:,.0f}M (the "
        "auxiliary classifiers work in training only and are not run here)",
    ]
    size = "x".join(map(str, profile.input_size))
    return Table(f"{profile.model} at {size}: Table 1 of Szegedy et al. 2014 (paper's "
                 "convention)", cols, rows, notes, align_right=set(range(3, 13)), compact=True)
