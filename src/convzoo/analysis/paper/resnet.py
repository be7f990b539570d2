"""ResNet's Table 1 (ImageNet) or section 4.2 (CIFAR-10) layout, stage by stage."""

from __future__ import annotations

from ...models.resnet import ResNet
from ...tables import Table, human
from ..profile import Profile
from .rows import last_map, rows_under


def resnet_table(model: ResNet, profile: Profile) -> Table:
    """Table 1's stage layout with the real output sizes, parameters and MACs per stage."""
    b = profile.batch_size

    def cells(prefixes: tuple[str, ...]) -> tuple[str, str, str]:
        rows = rows_under(profile, *prefixes)
        shape = last_map(rows)
        size = f"{shape[2]}x{shape[3]}" if shape else "1x1"
        return size, f"{sum(r.params for r in rows):,}", human(sum(r.macs for r in rows) / b)

    arch = model.arch
    stem = model.stem.conv
    k, s = stem.kernel_size[0], stem.stride[0]
    first = f"{k}x{k}, {stem.out_channels}" + (f", stride {s}" if s > 1 else "")
    table_rows = [["conv1", *cells(("stem.conv", "stem.bn", "stem.act")), ]]
    table_rows[0].insert(2, first)
    for i, stage in enumerate(model.stages):
        block = stage[0]
        inner = "; ".join(f"{kk}x{kk}, {f}" for kk, f in block.layout())
        what = f"[{inner}] x{len(stage)}"
        if i == 0 and hasattr(model.stem, "pool"):
            what = f"3x3 max pool, stride 2; {what}"
        size, params, macs = cells((f"stages.{i}",))
        table_rows.append([f"conv{i + 2}_x", size, what, params, macs])
    fc = "" if model.num_classes <= 0 else f", {model.num_classes}-d fc, softmax"
    table_rows.append(["", "1x1", f"average pool{fc}", *cells(("head",))[1:]])
    kind = f"shortcut option {model.shortcut}" if model.residual else "plain (no shortcuts)"
    if arch.block == "bottleneck":
        v = "v1, the paper" if model.stride_in == "1x1" else "v1.5, torchvision"
        kind += f", stride in the {model.stride_in} ({v})"
    if model.se_reduction:
        kind += f", squeeze-and-excitation with reduction {model.se_reduction}"
    macs = profile.total_macs / b
    if arch.paper_gflops:
        paper = f"{arch.paper_gflops}x10^9"
        flops = (f"FLOPs (Table 1's are multiply-adds, i.e. MACs, of v1): {macs / 1e9:.2f}x10^9 "
                 f"here, {paper} in the paper")
    else:
        paper = "-"
        flops = f"MACs {human(macs)}; the paper gives no FLOPs for this network"
    notes = [
        f"{arch.depth}-layer {arch.stem} network, {kind}",
        flops,
        f"parameters {profile.total_params:,}; MACs of convolutions and fully connected "
        "layers, per image; batch norm, ReLU and additions are not counted",
    ]
    size = "x".join(map(str, profile.input_size))
    where = "Table 1" if arch.stem == "imagenet" else "section 4.2"
    return Table(
        f"{profile.model} at {size}: the layout of He et al. 2015, {where}",
        ["layer name", "output size", f"{arch.depth}-layer", "params", "MACs"], table_rows,
        notes, totals=["total", "", f"paper FLOPs: {paper}", f"{profile.total_params:,}",
                       human(macs)], align_right={3, 4})
