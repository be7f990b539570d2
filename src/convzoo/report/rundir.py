"""What a run directory holds, read for the report: its config and where each value came
from, its summary, its per-epoch history and its last checkpoint.

A run directory (written by `convzoo train` / `finetune`) has config.json (the TrainConfig),
summary.json (status, test result, throughput, device, versions), metrics.csv (one row per
epoch), last/ and best/ (checkpoints whose checkpoint.json repeats the config and holds the
history). `config_sources` (see `convzoo.train.defaults`) is read from whichever of
config.json, summary.json and checkpoint.json has it; a run without it shows every value as
"recorded".
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from ..runs.checkpoint import Checkpoint, load_checkpoint


@dataclass
class RunDir:
    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    checkpoint: Checkpoint | None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        return self.checkpoint.meta if self.checkpoint is not None else {}

    @property
    def model(self) -> str:
        return self.summary.get("model") or self.meta.get("model") or self.config.get("model", "")

    @property
    def data(self) -> str:
        return self.summary.get("data") or self.meta.get("data") or self.config.get("data", "")

    @property
    def title(self) -> str:
        return f"{self.model} on {self.data}"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path} is not valid JSON ({e}); is the run directory "
                             "damaged?") from None
    return doc if isinstance(doc, dict) else {}


def _number(text: str) -> float | int | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def read_metrics_csv(path: Path) -> list[dict[str, Any]]:
    """metrics.csv's rows as numbers (empty cells None)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _number(v or "") for k, v in row.items()} for row in csv.DictReader(f)]


def read_run(path: str | Path) -> RunDir:
    """Everything the report shows that the run wrote down (nothing is recomputed here)."""
    p = Path(path)
    if not p.is_dir():
        raise UserInputError(f"{path} is not a directory: give a run directory "
                             "(e.g. runs/lenet5-fashion-mnist-20250101-120000)")
    config = _read_json(p / "config.json")
    summary = _read_json(p / "summary.json")
    ckpt = None
    if any((p / d / "checkpoint.json").is_file() for d in ("last", "best", ".last.old")) \
            or (p / "checkpoint.json").is_file():
        ckpt = load_checkpoint(p, prefer="last")
    if not config and not summary and ckpt is None:
        raise UserInputError(f"{path} holds no convzoo run (no config.json, summary.json or "
                             "checkpoint)")
    meta = ckpt.meta if ckpt is not None else {}
    config = dict(config or meta.get("config", {}))
    sources = config.pop("config_sources", None) or summary.get("config_sources") \
        or meta.get("config_sources") or {}
    history = list(meta.get("history") or []) or read_metrics_csv(p / "metrics.csv")
    return RunDir(p, config, summary, history, ckpt, dict(sources))
