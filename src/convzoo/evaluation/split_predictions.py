"""Per-image predictions over a labelled split (`convzoo predict SOURCE --data NAME`): the same
plan, loader and test-time method as `convzoo eval`, kept image by image instead of tallied.

Each row names its image (the file of an image folder, ``packed:FILE#i`` for record i of a
pack, ``NAME:split#i`` for a data set held in memory), its true class and the top-k classes
with their probabilities. An unreadable image of a folder gets a row with its error, as the
file mode of `convzoo predict` gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import UserInputError
from .score import plan_for, score_batches


def _name(key: Any, data: str, split: str, i: int) -> str:
    from ..data.pack import PackRecord

    if isinstance(key, PackRecord):
        return f"packed:{key}"
    if key is None:
        return f"{data}:{split}#{i}"
    return str(key)


def predict_split(src: Any, data: str, *, split: str = "test", topk: int = 5,
                  batch_size: int = 64, device: torch.device,
                  data_dir: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows, notes): per image of `split` of the data set `data`, in the split's order,
    {path, label, top5: [{class, prob}]} (the `topk` best) or {path, label, error}; the notes
    say how the source was scored (classes matched by name, its own flip)."""
    from ..data.dataset import FolderSplit
    from .checkpoint_eval import load_data_for
    from .score import restrict

    if topk < 1:
        raise UserInputError(f"--topk must be at least 1, got {topk}")
    if batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, got {batch_size}")
    ds, own = load_data_for(src, data, data_dir)
    the_split = ds.test if split == "test" else ds.train
    plan = plan_for(src, ds, device=device, data_is_own=own)
    folder = isinstance(the_split, FolderSplit)
    keys = ([k for k, _ in the_split.samples] if folder else [None] * len(the_split))
    labels = ([y for _, y in the_split.samples] if folder else the_split.labels.tolist())
    order = list(range(len(keys)))
    data_classes = list(ds.classes)
    if plan.classes.keep is not None:  # only the classes the model knows, as eval scores them
        kept = set(plan.classes.keep)
        order = [i for i in order if labels[i] in kept]
        the_split = restrict(the_split, plan.classes.keep)
    if not order:
        raise UserInputError(f"the {split} split of {ds.name} has no images to predict")
    batches = plan.loader(the_split, batch_size)
    kept_batches: list[tuple[torch.Tensor, torch.Tensor]] = []
    score_batches(plan.model, batches, len(plan.classes.names), plan.method,
                  crop=tuple(plan.input_size[1:]), device=plan.device, amp=plan.amp,
                  logit_index=plan.classes.index, keep=kept_batches)
    # a folder's unreadable images were skipped by the loader (and logged): they keep a row
    bad = {str(Path(p)): r for p, r in getattr(batches, "skipped", [])}
    logps = iter([row for logp, _ in kept_batches for row in logp])
    names = plan.classes.names
    rows: list[dict[str, Any]] = []
    for i in order:
        path = _name(keys[i], ds.name, split, i)
        row: dict[str, Any] = {"path": path, "label": data_classes[labels[i]]}
        rows.append(row)
        if folder and isinstance(keys[i], str) and str(Path(keys[i])) in bad:
            row["error"] = bad[str(Path(keys[i]))]
            continue
        logp = next(logps, None)
        if logp is None:
            raise RuntimeError("predict: fewer predictions than the split's readable images")
        probs = logp.exp()
        values, index = probs.topk(min(topk, probs.numel()))
        row["top5"] = [{"class": names[c], "prob": round(p, 6)}
                       for p, c in zip(values.tolist(), index.tolist())]
    if next(logps, None) is not None:  # a skipped image not matched by path: never guess
        raise RuntimeError("predict: the loader's images and the split's rows disagree")
    return rows, list(plan.notes)


__all__ = ["predict_split"]
