"""The layer table `convzoo summary` prints: one row per layer of a profile, with totals and
the conventions its numbers follow."""

from __future__ import annotations

import torch

from ..tables import Table, human
from .profile import CONVENTIONS, Profile


def profile_table(prof: Profile) -> Table:
    """Shapes, parameters (with and without biases), MACs and activations per layer."""
    rows = [[r.name, r.type, "x".join(map(str, r.output_shape[1:])), f"{r.params:,}",
             f"{r.weights:,}", f"{r.macs:,}", f"{r.activations:,}"] for r in prof.layers]
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
    size = "x".join(map(str, prof.input_size))
    return Table(f"{prof.model} at {size}, batch {prof.batch_size}",
                 ["layer", "type", "output", "params", "weights", "MACs", "activations"],
                 rows, notes, totals=["total", "", "", f"{prof.total_params:,}",
                                      f"{prof.total_weights:,}", f"{prof.total_macs:,}",
                                      f"{prof.activation_elements:,}"],
                 align_right={3, 4, 5, 6})
