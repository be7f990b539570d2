"""The layer table `convzoo summary` prints: one row per layer of a profile, with totals and
the conventions its numbers follow."""

from __future__ import annotations

from typing import Any

import torch

from ..tables import Table, human
from .profile import CONVENTIONS, Profile
from .receptive import RFRow, RFTrace


def _side(pair: Any) -> str:
    a, b = (int(v) if float(v).is_integer() else v for v in pair)
    return f"{a}" if a == b else f"{a}x{b}"


def field_cells(row: RFRow | None) -> list[str]:
    """Receptive field, jump and start of a layer's output, in input pixels ('-' if none)."""
    if row is None:
        return ["-", "-", "-"]
    if row.global_field:  # after a global pool or a fully connected layer
        return ["all", "-", "-"]
    rf = _side(row.rf) + ("*" if row.branches else "")
    return [rf, _side(row.jump), _side(row.start)]


def profile_table(prof: Profile, trace: RFTrace | None = None) -> Table:
    """Shapes, parameters (with and without biases), MACs and activations per layer; with
    `trace`, each layer's receptive field, jump (effective stride) and start as well."""
    fields = {r.name: r for r in trace.rows} if trace is not None else None
    rows = []
    for r in prof.layers:
        row = [r.name, r.type, "x".join(map(str, r.output_shape[1:])), r.params, r.weights,
               r.macs, r.activations]
        if fields is not None:
            row += field_cells(fields.get(r.name))
        rows.append(row)
    notes = [
        f"total parameters {prof.total_params:,} (trainable {prof.trainable_params:,}; "
        f"without biases {prof.total_weights:,})",
        f"MACs {prof.total_macs:,} ({human(prof.total_macs)}); FLOPs = 2 x MACs = "
        f"{human(prof.flops)}",
        f"activations {prof.activation_elements:,} elements: "
        f"{human(prof.activation_bytes(torch.float32), 'B')} fp32, "
        f"{human(prof.activation_bytes(torch.bfloat16), 'B')} bf16 (batch {prof.batch_size})",
        f"conventions: MACs are {CONVENTIONS['macs']}; activations are "
        f"{CONVENTIONS['activations']}",
    ]
    columns = ["layer", "type", "output", "params", "weights", "MACs", "activations"]
    totals: list[Any] = ["total", "", "", prof.total_params, prof.total_weights,
                         prof.total_macs, prof.activation_elements]
    if fields is not None:
        columns += ["RF", "jump", "start"]
        totals += ["", "", ""]
        notes.append("RF: the receptive field of a layer's output in input pixels, jump its "
                     "effective stride, start the input coordinate of its first unit's centre; "
                     "* where branches or a shortcut meet: the largest field over them; "
                     "'all' where every output sees the whole input")
    size = "x".join(map(str, prof.input_size))
    return Table(f"{prof.model} at {size}, batch {prof.batch_size}", columns, rows, notes,
                 totals=totals, align_right=set(range(3, len(columns))))


def summary_json(prof: Profile, trace: RFTrace) -> dict[str, Any]:
    """The profile as JSON, each layer with its receptive field, jump and start."""
    d = prof.to_dict()
    fields = {r.name: r for r in trace.rows}
    for layer in d.get("layers", []):
        f = fields.get(layer.get("name"))
        if f is not None:
            layer.update(rf=list(f.rf), jump=list(f.jump), start=list(f.start),
                         rf_branches=f.branches)
    d["receptive_field_notes"] = list(trace.notes)
    return d
