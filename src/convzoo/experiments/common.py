"""What the lectures' training experiments share: one configuration for every arm, the loss
recorded every few steps, the gradient reaching each layer at initialisation, the outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserInputError
from ..train.callbacks import StepEvent


class LossRecorder:
    """A `fit` callback that keeps (epochs done as a fraction, loss) every `every` steps and at
    each epoch's end, and logs each epoch's line."""

    def __init__(self, log=None, every: int = 5) -> None:
        self.points: list[tuple[float, float]] = []
        self.every = max(1, every)
        self._log = log

    def on_step(self, event: StepEvent) -> None:
        if event.batch % self.every == 0 or event.batch == event.batches:
            self.points.append((round(event.epoch_fraction, 4), float(event.loss)))

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        if self._log is not None:
            val = "" if row.get("val_top1") is None else f"  val top-1 {row['val_top1']:.4f}"
            self._log(f"    epoch {row['epoch']}  loss {row['train_loss']:.4f}  train acc "
                      f"{row['train_top1']:.4f}{val}")


def fit_quietly(cfg: Any, data: Any, model: nn.Module, log=None) -> tuple[dict[str, Any],
                                                                         LossRecorder, float]:
    """One arm of an experiment trained quietly from a fresh run directory: (fit's summary,
    the losses it recorded, its seconds)."""
    import time

    from ..runtime.progress import Progress
    from ..train.loop import fit

    fresh(Path(cfg.out))
    recorder = LossRecorder(log, cfg.log_every)
    t = time.perf_counter()
    summary = fit(cfg, data=data, model=model, progress=Progress(enabled=False),
                  callbacks=[recorder])
    return summary, recorder, round(time.perf_counter() - t, 2)


def parse_list(text: str, what: str, kind: type = str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UserInputError(f"{what} is empty; give a comma-separated list")
    try:
        return [kind(t) for t in items]
    except ValueError:
        raise UserInputError(f"{what} takes a comma-separated list of numbers, not {text!r}") \
            from None


def layer_weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The weight matrices and kernels from input to output (biases and norms left out)."""
    return [(n, p) for n, p in model.named_parameters()
            if p.dim() >= 2 and not n.endswith("t.weight")]


def init_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict[str, Any]]:
    """The gradient norm of the loss on one batch for each layer's weights, before training:
    with saturating activations it shrinks layer by layer on the way back to the input."""
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x)
    logits = out if isinstance(out, torch.Tensor) else out.logits
    torch.nn.functional.cross_entropy(logits.float(), y).backward()
    norms = [{"layer": n, "grad_norm": float(p.grad.norm()) if p.grad is not None else 0.0}
             for n, p in layer_weights(model)]
    model.zero_grad(set_to_none=True)
    return norms


def first_batch(data: Any, input_size: tuple[int, int, int], batch_size: int,
                seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data.loader import make_loader
    from ..sizes import fill_channels

    batches = make_loader(data.train, batch_size=batch_size, train=False, device="cpu",
                          input_size=fill_channels(input_size, data.image_size[0]),
                          mean=data.mean, std=data.std, augment=None, seed=seed, epoch=0)
    return next(iter(batches))


def fresh(run_dir: Path) -> None:
    """An arm's training run is the experiment's own output: a rerun replaces it."""
    import shutil

    from ..runs.checkpoint import META

    if (run_dir / "last" / META).exists():
        shutil.rmtree(run_dir)


def write_outputs(out: Path, stem: str, result: dict[str, Any], table: Any) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    paths[0].write_text(json.dumps(result, indent=2) + "\n")
    paths[1].write_text(table.render("markdown") + "\n")
    return paths


def pyplot():
    """matplotlib's pyplot on the file-only backend, or None where it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt
