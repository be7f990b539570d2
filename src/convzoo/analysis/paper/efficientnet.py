"""EfficientNet's Table 1 layout for any variant: stages with their real counts."""

from __future__ import annotations

from ...models.efficientnet import EfficientNet
from ...tables import Table, human
from ..profile import Profile
from .rows import last_map, rows_under


def efficientnet_table(model: EfficientNet, profile: Profile) -> Table:
    """Table 1's layout for this variant: operator, input resolution, channels and layers of
    each stage, with the real parameters and MACs per stage."""
    b = profile.batch_size
    size = f"{profile.input_size[1]}x{profile.input_size[2]}"
    table_rows = []

    def add(i: int, prefix: str, operator: str, channels: int, layers: int) -> None:
        nonlocal size
        rows = rows_under(profile, prefix)
        table_rows.append([i, operator, size, channels, layers,
                           f"{sum(r.params for r in rows):,}",
                           human(sum(r.macs for r in rows) / b)])
        shape = last_map(rows)
        if shape:
            size = f"{shape[2]}x{shape[3]}"

    add(1, "stem", "Conv3x3", model.stem.conv.out_channels, 1)
    for i, stage in enumerate(model.stages):
        first = stage[0]
        k = first.dw.conv.kernel_size[0]
        t = first.dw.conv.out_channels // first.in_channels
        add(i + 2, f"stages.{i}", f"MBConv{t}, k{k}x{k}", first.out_channels, len(stage))
    add(len(model.stages) + 2, "head", "Conv1x1 & Pooling & FC", model.num_features, 1)
    sc = model.scaling
    notes = [
        f"scaling: width {sc.width}, depth {sc.depth}, resolution {sc.resolution}, "
        f"dropout {sc.dropout} (phi = {sc.phi})",
        "Resolution is each stage's input; params include biases and batch norms; "
        f"MACs {human(profile.total_macs / b)} per image in all",
    ]
    return Table(f"{profile.model}: Table 1 layout (Tan & Le 2019)",
                 ["Stage", "Operator", "Resolution", "#Channels", "#Layers", "params", "MACs"],
                 table_rows, notes, align_right={0, 3, 4, 5, 6})
