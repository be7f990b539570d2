"""The lecture's layer table (seed 003's VGG-16 walk-through), for any model.

One row per convolution, pooling and fully connected layer: its output as HxWxC, its
activation count ("memory") and its weights without biases.
"""

from __future__ import annotations

from ...tables import Table, human
from ..profile import LayerRow, Profile


def _kind(row: LayerRow) -> str:
    # LeNet-5's trainable subsampling is a pooling layer in the paper's accounting
    return "pool" if row.type == "Subsampling" else row.extra.get("kind", "")


def _hwc(shape: tuple[int, ...]) -> str:
    if len(shape) == 4:
        return f"{shape[2]}x{shape[3]}x{shape[1]}"
    return f"1x1x{shape[-1]}"


def _label(row: LayerRow) -> str:
    e = row.extra
    if _kind(row) == "conv":
        k = e["kernel_size"][0]
        return f"CONV{k}-{e['out_channels']}"
    if _kind(row) == "pool":
        k = e.get("kernel_size", 2)
        return f"POOL{k if isinstance(k, int) else k[0]}"
    return "FC"


def _formula(row: LayerRow, prev: tuple[int, ...]) -> str:
    e = row.extra
    if _kind(row) == "conv":
        k, cin = e["kernel_size"][0], e["in_channels"] // e.get("groups", 1)
        return f"({k}*{k}*{cin})*{e['out_channels']} = {row.weights:,}"
    if _kind(row) == "fc":
        n_in = e["in_features"]
        if len(prev) == 4 and prev[1] * prev[2] * prev[3] == n_in and prev[2] > 1:
            n_in = f"{prev[2]}*{prev[3]}*{prev[1]}"  # the flattened map, as the lecture writes
        return f"{n_in}*{e['out_features']} = {row.weights:,}"
    return f"{row.weights:,}"


def layer_table(profile: Profile) -> Table:
    """The lecture's per-layer walk-through: memory and weights of every counted layer."""
    c, h, w = profile.input_size
    rows = [["INPUT", f"{h}x{w}x{c}", f"{h * w * c:,}", "0"]]
    mem, weights = h * w * c, 0
    prev: tuple[int, ...] = (1, c, h, w)
    for r in profile.layers:
        if not _kind(r):
            continue
        per_image = r.activations // profile.batch_size
        rows.append([_label(r), _hwc(r.output_shape), f"{per_image:,}", _formula(r, prev)])
        prev = r.output_shape
        mem += per_image
        weights += r.weights
    notes = [
        "memory: values in each layer's output for one image (ReLU is in place, so it adds "
        "none); weights: without biases",
        f"these rows add up to {mem:,} activations = {human(mem * 4, 'B')} at fp32 "
        f"({human(mem * 2, 'B')} at bf16), forward pass only",
        f"weights: {weights:,}; parameters with biases: {profile.total_params:,}",
    ]
    return Table(f"{profile.model}: layer table (lecture convention)",
                 ["layer", "output", "memory", "weights"], rows, notes,
                 totals=["TOTAL", "", f"{mem:,}", f"{weights:,}"], align_right={2, 3})
