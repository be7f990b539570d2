"""An experiment's finished parts kept on disk, and its expected duration said before it starts.

A long experiment is a sequence of parts (features, a depth, a net): `Parts` writes each one,
when it finishes, to OUT/parts/NAME.json (tensors to NAME.safetensors) with the settings that
produced it and their digest. Run again with the same settings, a part whose digest matches is
loaded instead of computed, and one line says so; with other settings the part is computed
afresh and its file replaced, so a result never mixes parts made with different settings.

The digest covers every setting that decides a part, and not the list of parts being run:
adding a depth to a finished run computes only the new depth.

`step_seconds` times one training step of a net on a batch of random images; an experiment
multiplies it by the steps each part takes and prints the sum as an estimate before it starts.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn


def digest(settings: dict[str, Any]) -> str:
    """A short fingerprint of JSON-able settings, independent of key order."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_stamp(src: Any) -> dict[str, Any]:
    """What identifies a source model's weights: its description, and for a training run the
    checkpoint's path, size and time, so a run trained again in the same place is not taken
    for the one the saved parts came from."""
    stamp: dict[str, Any] = {"source": src.description}
    ckpt = getattr(src, "checkpoint", None)
    path = getattr(ckpt, "path", None)
    if path is not None:
        path = Path(path)
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
        stamp["checkpoint"] = [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    return stamp


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class Parts:
    """The finished parts of one experiment under `out`/parts (see the module docstring).

    `settings`: what decides every part (JSON-able); `load` and `save` take a part's own
    extra settings, where a part depends on more (a data set's name, a subset's size)."""

    def __init__(self, out: Path, experiment: str, settings: dict[str, Any],
                 log: Callable[[str], Any] = print) -> None:
        self.dir = Path(out) / "parts"
        self.experiment = experiment
        self.settings = settings
        self.log = log
        self.loaded: list[str] = []
        self.computed: list[str] = []

    def _settings(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        return {"experiment": self.experiment, **self.settings, **(extra or {})}

    def path(self, name: str, suffix: str = ".json") -> Path:
        return self.dir / f"{_safe(name)}{suffix}"

    def _matches(self, saved: dict[str, Any], name: str, extra: dict[str, Any] | None) -> bool:
        if saved.get("digest") == digest(self._settings(extra)):
            return True
        self.log(f"{name}: the saved part was made with other settings; computing it afresh")
        return False

    def _loaded(self, name: str, path: Path) -> None:
        self.loaded.append(name)
        self.log(f"{name}: finished in an earlier run with these settings; loaded from {path} "
                 "(delete it to redo)")

    def done(self, name: str, extra: dict[str, Any] | None = None) -> bool:
        """Whether `name` is saved with these settings (quietly: for the estimate)."""
        for suffix in (".json", ".safetensors"):
            saved = self._read_meta(self.path(name, suffix))
            if saved is not None:
                return saved.get("digest") == digest(self._settings(extra))
        return False

    def load(self, name: str, extra: dict[str, Any] | None = None) -> Any | None:
        """The saved result of part `name`, or None when it must be computed."""
        path = self.path(name)
        saved = self._read_meta(path)
        if saved is None or not self._matches(saved, name, extra):
            return None
        self._loaded(name, path)
        return saved["result"]

    def save(self, name: str, result: Any, extra: dict[str, Any] | None = None) -> Path:
        settings = self._settings(extra)
        path = self.path(name)
        self._write(path, (json.dumps({"part": name, "digest": digest(settings),
                                       "settings": settings, "result": result},
                                      indent=1, default=str) + "\n").encode())
        self.computed.append(name)
        return path

    def load_tensors(self, name: str, extra: dict[str, Any] | None = None
                     ) -> dict[str, torch.Tensor] | None:
        """Saved tensors of part `name` (safetensors: nothing is unpickled), or None."""
        from safetensors.torch import load_file

        path = self.path(name, ".safetensors")
        saved = self._read_meta(path)
        if saved is None or not self._matches(saved, name, extra):
            return None
        try:
            tensors = load_file(str(path))
        except (OSError, ValueError, RuntimeError):
            return None
        self._loaded(name, path)
        return tensors

    def save_tensors(self, name: str, tensors: dict[str, torch.Tensor],
                     extra: dict[str, Any] | None = None) -> Path:
        from safetensors.torch import save

        settings = self._settings(extra)
        meta = {"part": name, "digest": digest(settings),
                "settings": json.dumps(settings, sort_keys=True, default=str)}
        path = self.path(name, ".safetensors")
        self._write(path, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                               metadata=meta))
        self.computed.append(name)
        return path

    @staticmethod
    def _read_meta(path: Path) -> dict[str, Any] | None:
        """The part's saved header ('digest', 'settings', and for JSON 'result'), or None when
        there is none or it cannot be read (a part cut short is computed again)."""
        if not path.exists():
            return None
        try:
            if path.suffix == ".json":
                saved = json.loads(path.read_text())
                return saved if isinstance(saved, dict) else None
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                return dict(f.metadata() or {})
        except (OSError, ValueError, RuntimeError):
            return None

    def _write(self, path: Path, data: bytes) -> None:
        # a temporary name renamed into place: an interrupted write leaves no half part
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def step_seconds(model: nn.Module, input_size: tuple[int, ...], batch: int,
                 device: Any = "cpu", train: bool = True) -> float:
    """Seconds for one forward and backward pass (`train`) or one forward pass of `batch`
    random images through a copy of `model`, its trainable parameters as they are set, in the
    precision and memory layout a training run would choose on `device`: the model, its
    batch-norm statistics and the global random generators are left untouched."""
    from ..runtime.device import cpu_auto_amp

    device = torch.device(device)
    model = copy.deepcopy(model).to(device)
    model.train(train)
    amp = torch.bfloat16 if device.type == "cuda" else cpu_auto_amp(model, input_size)[0]
    layout = torch.channels_last if len(input_size) == 3 else torch.contiguous_format
    model = model.to(memory_format=layout)
    if device.type == "cpu" and len(input_size) == 3:
        from ..runtime.cpu_kernels import apply_cpu_kernels

        apply_cpu_kernels(model, tuple(input_size), train)  # the layers a CPU run swaps in
    # timed with the thread count the run will choose: on a busy CPU, more threads than free
    # cores make every parallel region wait for a descheduled thread, and one step can take
    # ten times as long as it will in the run
    threads = torch.get_num_threads()
    if device.type == "cpu":
        from ..runtime.device import choose_threads

        torch.set_num_threads(choose_threads().threads)
    try:
        times = _timed_passes(model, input_size, batch, device, train, amp, layout)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times[1:])


def _timed_passes(model: nn.Module, input_size: tuple[int, ...], batch: int,
                  device: torch.device, train: bool, amp: Any, layout: Any) -> list[float]:
    with torch.random.fork_rng(devices=[]):
        x = torch.randn(batch, *input_size, device=device).contiguous(memory_format=layout)
        times: list[float] = []
        # the first pass pays for one-off set-up and is not counted; then passes until a
        # quarter of a second is spent (at most 5), their median: one pass of a small net
        # takes milliseconds, and a single one can catch a busy CPU's pause
        while len(times) < 2 or (sum(times[1:]) < 0.25 and len(times) < 6):
            t = time.perf_counter()
            with torch.set_grad_enabled(train), torch.autocast(
                    device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                out = model(x)
                logits = out if isinstance(out, torch.Tensor) else out.logits
                loss = logits.float().logsumexp(1).mean()
            if train and loss.requires_grad:
                loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    return times


START_SECONDS = 1.5  # a run's set-up and files: its directory, checkpoints, summary


def train_seconds(step: float, forward: float, train_images: int, test_images: int,
                  epochs: int, batch: int, val_split: float = 0.1) -> float:
    """A training run's seconds from one step's and one forward pass's time: every epoch's
    steps and its validation pass, and the test set scored once."""
    held = int(train_images * val_split)
    steps = math.ceil(max(train_images - held, 1) / batch)
    return START_SECONDS + epochs * (steps * step + math.ceil(held / batch) * forward) \
        + math.ceil(test_images / batch) * forward


def say_estimate(log: Callable[[str], Any], seconds: float, parts: int, finished: int) -> None:
    """One line: the expected duration of what is left, and that it is an estimate."""
    if seconds < 90:
        when = f"{max(5, round(seconds / 5) * 5):.0f} s"
    else:
        when = f"{seconds / 60:.1f} min"
    done = f"; {finished} of {parts} parts already finished" if finished else ""
    log(f"expected duration: about {when} for {parts - finished} part"
        f"{'s' if parts - finished != 1 else ''}{done} (an estimate from one timed step per "
        "net on this machine; a busy CPU takes longer)")


__all__ = ["Parts", "digest", "source_stamp", "say_estimate", "step_seconds", "train_seconds"]
