"""Scoring a trained run on a data set (`convzoo eval`): its classes matched to the data's.

A run is scored on the data set it trained on by default, or on another one whose classes it
shares: the classes are matched by name (case, spaces and underscores aside), the images of
other classes are left out and only the matched logits compete (see `score.class_map`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserInputError


def load_data_for(src: Any, data: str | None, data_dir: str | None) -> tuple[Any, bool]:
    """(the data set to score `src` on, whether it is the one the run trained on): `data`, else
    the run's own, read with the run's data directory and seed (a held-out split such as
    digits' depends on the seed, so the run's test set is its own)."""
    from ..data.catalog import load_dataset

    info = src.info
    name = data or info.data
    if not name:
        raise UserInputError(f"which data set? {src.description} does not say what it was "
                             "trained on: add --data NAME")
    own = not data or data == info.data
    ds = load_dataset(name, data_dir or (info.setting("data_dir") if own else None),
                      seed=info.setting("seed", 0))
    return ds, own


def evaluate_checkpoint(source: str, *, data: str | None = None, data_dir: str | None = None,
                        split: str = "test", which: str = "best", device: str = "auto",
                        batch_size: int = 256, tta_flip: bool = False, ema: bool = True,
                        out: str | None = None, plot: bool = True) -> dict[str, Any]:
    """Top-1/top-5, per-class accuracy and (with `plot`) a confusion-matrix PNG of a run on
    `data` (default: the data set it trained on), scored as the run evaluated (`score.plan_for`:
    its normalisation, precision and test-time flip)."""
    from ..runs.metrics import plot_confusion
    from ..runs.source import checkpoint_line, load_source
    from ..runtime.device import resolve_device
    from .score import plan_for, score

    dev = resolve_device(device)
    src = load_source(source, runs_only=True, prefer=which, ema=ema, device=dev)
    ds, own = load_data_for(src, data, data_dir)
    name = data or src.info.data
    plan = plan_for(src, ds, device=dev, method="flip" if tta_flip else None, data_is_own=own)
    the_split = ds.test if split == "test" else ds.train
    res = score(plan, the_split, batch_size=batch_size)
    names = plan.classes.names
    note = "; ".join(plan.notes) or None
    ckpt_path = src.checkpoint.path if src.checkpoint is not None else Path(source)
    out_dir = Path(out) if out else ckpt_path.parent / "eval"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    try:
        png = None if not plot else plot_confusion(
            res.confusion, names, out_dir / f"confusion-{safe}-{split}.png",
            f"{src.info.model} on {name} ({split}): top-1 {res.top1:.4f}")
    except OSError as e:  # a read-only run directory: the scores still come out
        png = None
        skipped = (f"confusion matrix not written: {out_dir} is not writable ({e.strerror}); "
                   "give --out DIR for it")
        note = f"{note}; {skipped}" if note else skipped
    used = checkpoint_line(src.checkpoint, which) if src.checkpoint is not None else str(source)
    result = {"model": src.info.model, "checkpoint": str(ckpt_path), "checkpoint_used": used,
              "data": name,
              "split": split, **res.to_dict(names),
              "per_class_n": dict(zip(names, res.confusion.sum(1).tolist())),
              "confusion_png": str(png) if png else None}
    if note:
        result["note"] = note
    return result
