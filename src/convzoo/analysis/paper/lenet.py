"""LeNet-5's accounting in section II.B: trainable parameters and connections per layer."""

from __future__ import annotations

from ...models.lenet import PAPER_LAYERS, LeNet5
from ...tables import Table
from ..profile import Profile
from .rows import rows_under

# The paper's layer names and the modules that make them.
_MODULES = {"C1": "stem.c1", "S2": "stem.s2", "C3": "stages.0.c3", "S4": "stages.0.s4",
            "C5": "stages.1.c5", "F6": "head.pre.f6"}


def lenet_table(model: LeNet5, profile: Profile) -> Table:
    """Parameters and connections of C1 ... F6, beside the paper's where the model is faithful.

    A connection is one multiply-add into a unit, its bias included, so connections are
    MACs plus one per output of a layer with biases; weight sharing is why C1 has 156
    parameters but 122,304 connections.
    """
    paper = {name: (p, c) for name, p, c in PAPER_LAYERS} if model.faithful else {}
    rows = []
    for name, prefix in _MODULES.items():
        parts = rows_under(profile, prefix)
        params = sum(r.params for r in parts)
        outputs = sum(r.activations for r in parts) // profile.batch_size
        macs = sum(r.macs for r in parts) // profile.batch_size
        has_bias = params > sum(r.weights for r in parts)
        shape = parts[-1].output_shape
        if len(shape) == 4:  # C3's three grouped convolutions together make its 16 maps
            maps = f"{outputs // (shape[2] * shape[3])}@{shape[2]}x{shape[3]}"
        else:
            maps = f"{shape[-1]}"
        p_paper, c_paper = paper.get(name, ("", ""))
        rows.append([name, maps, f"{params:,}", f"{p_paper:,}" if p_paper else "-",
                     f"{macs + (outputs if has_bias else 0):,}",
                     f"{c_paper:,}" if c_paper else "-"])
    notes = [
        "connections = multiply-adds into each unit, the bias included (MACs + outputs)",
        "the output layer's RBF centres are fixed, so it has no trainable parameters"
        if model.faithful else "modern variant: the paper's columns do not apply",
    ]
    return Table(f"{profile.model}: LeNet-5 layers (paper, section II.B)",
                 ["layer", "maps", "params", "paper params", "connections",
                  "paper connections"], rows, notes,
                 totals=["total", "", f"{profile.trainable_params:,}",
                         "60,000" if model.faithful else "-", "", ""],
                 align_right={2, 3, 4, 5})
