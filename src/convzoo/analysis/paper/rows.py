"""The rows of a profile that belong to a part of the model, by module name."""

from __future__ import annotations

from ..profile import LayerRow, Profile


def rows_under(profile: Profile, *prefixes: str) -> list[LayerRow]:
    """Rows named `p` or `p.<anything>` for any prefix, in profile order.

    Rows of modules that did not run (auxiliary classifiers in eval mode) are left out: no
    paper table counts them in the row of the module they hang from.
    """
    def under(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return [r for r in profile.layers if r.extra.get("ran", True) and under(r.name)]


def last_map(rows: list[LayerRow]) -> tuple[int, ...]:
    """The output shape of the last of `rows` that made a feature map (N, C, H, W)."""
    return next((r.output_shape for r in reversed(rows) if len(r.output_shape) == 4), ())
