"""Scoring a trained run on a data set (`convzoo eval`): its classes matched to the data's.

A run is scored on the data set it trained on by default, or on another one whose classes it
shares: the classes are matched by name (case, spaces and underscores aside), the images of
other classes are left out and only the matched logits compete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.catalog import ArraySplit, FolderSplit
from ..errors import UserInputError


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


def match_classes(model_names: list[str], data_names: list[str]) -> tuple[list[int], list[int]]:
    """(data labels kept, the model's class index for each): classes are matched by name."""
    index = {_norm(n): i for i, n in enumerate(model_names)}
    keep, to_model = [], []
    for label, n in enumerate(data_names):
        if _norm(n) in index:
            keep.append(label)
            to_model.append(index[_norm(n)])
    if not keep:
        raise UserInputError(
            f"none of the data's classes ({', '.join(data_names[:5])}, ...) is one the model "
            f"knows ({', '.join(model_names[:5])}, ...); evaluate on data with the same classes")
    return keep, to_model


def restrict(split: ArraySplit | FolderSplit, keep: list[int]) -> ArraySplit | FolderSplit:
    """The split with only the labels in `keep`, relabelled 0..len(keep)-1 in that order."""
    new = {old: i for i, old in enumerate(keep)}
    if isinstance(split, ArraySplit):
        lut = torch.full((int(split.labels.max()) + 1,), -1, dtype=torch.long)
        for old, i in new.items():
            if old < lut.numel():
                lut[old] = i
        mapped = lut[split.labels]
        sel = mapped >= 0
        return ArraySplit(split.images[sel].contiguous(), mapped[sel])
    return FolderSplit([(p, new[y]) for p, y in split.samples if y in new])


def evaluate_checkpoint(source: str, *, data: str | None = None, data_dir: str | None = None,
                        split: str = "test", which: str = "best", device: str = "auto",
                        batch_size: int = 256, tta_flip: bool = False, ema: bool = True,
                        out: str | None = None, plot: bool = True) -> dict[str, Any]:
    """Top-1/top-5, per-class accuracy and (with `plot`) a confusion-matrix PNG of a run on
    `data` (default: the data set it trained on), in the precision the run evaluated in."""
    from ..data.catalog import load_dataset
    from ..data.loader import make_loader
    from ..runs.metrics import plot_confusion
    from ..runs.source import load_source
    from ..runtime.device import resolve_device, run_amp
    from .evaluate import evaluate

    dev = resolve_device(device)
    src = load_source(source, runs_only=True, prefer=which, ema=ema, device=dev)
    meta, model = src.meta, src.model
    name = data or meta.get("data")
    if not name:
        raise UserInputError("which data set? add --data NAME")
    cfg = meta.get("config", {})
    ds = load_dataset(name, data_dir or (cfg.get("data_dir") if not data else None),
                      seed=cfg.get("seed", 0))
    model_names = src.class_names or [str(i) for i in range(len(ds.classes))]
    the_split = ds.test if split == "test" else ds.train
    if [_norm(n) for n in model_names] == [_norm(n) for n in ds.classes]:
        names, index, note = list(ds.classes), None, None
    else:
        keep, to_model = match_classes(model_names, list(ds.classes))
        the_split = restrict(the_split, keep)
        names = [ds.classes[k] for k in keep]
        index = torch.tensor(to_model)
        note = (f"classes matched by name: {len(keep)} of the data's {len(ds.classes)} and "
                f"the model's {len(model_names)}")
    input_size = tuple(meta.get("input_size") or model.default_input_size)
    amp = run_amp(meta, dev, model, input_size)
    # the statistics the run normalised with; the data's own (read from its training split)
    # only for a checkpoint that does not say
    mean, std = meta.get("mean") or ds.mean, meta.get("std") or ds.std
    # channels_last on the CPU, as a run evaluates; not the swapped layers of cpu_kernels.py,
    # whose meta pass costs more start-up (0.3 s) than they save on a LeNet test set
    cpu = dev.type == "cpu"
    if cpu:
        model.to(memory_format=torch.channels_last)
    batches = make_loader(the_split, batch_size=batch_size, train=False, device=dev,
                          input_size=input_size, mean=mean, std=std, augment=None, seed=0,
                          epoch=0, channels_last=cpu)
    res = evaluate(model, batches, len(names), device=dev, amp=amp,
                   tta_flip=tta_flip or bool(cfg.get("tta_flip")), logit_index=index)
    ckpt_path = src.checkpoint.path if src.checkpoint is not None else Path(source)
    out_dir = Path(out) if out else ckpt_path.parent / "eval"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    try:
        png = None if not plot else plot_confusion(
            res.confusion, names, out_dir / f"confusion-{safe}-{split}.png",
            f"{meta.get('model')} on {name} ({split}): top-1 {res.top1:.4f}")
    except OSError as e:  # a read-only run directory: the scores still come out
        png = None
        skipped = (f"confusion matrix not written: {out_dir} is not writable ({e.strerror}); "
                   "give --out DIR for it")
        note = f"{note}; {skipped}" if note else skipped
    result = {"model": meta.get("model"), "checkpoint": str(ckpt_path), "data": name,
              "split": split, **res.to_dict(names),
              "per_class_n": dict(zip(names, res.confusion.sum(1).tolist())),
              "confusion_png": str(png) if png else None}
    if note:
        result["note"] = note
    return result
