"""The config of a resumed run, rebuilt from its checkpoint: its own settings, then what the
caller changes (`RESUMABLE` settings only; `Run` refuses the others in one line).

`fit(resume=DIR)` calls this when it is given no config, so the command line never opens a
checkpoint itself, and `convzoo train --resume` and `convzoo finetune --resume` rebuild a run
the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from ..runs import checkpoint as ck
from .config import TrainConfig
from .defaults import ResolvedConfig, resolve_config


def resumed_config(resume: str | Path, changes: Mapping[str, Any] | None = None,
                   overrides: Mapping[str, Any] | None = None, *, model: str | None = None,
                   finetune: bool | None = None) -> ResolvedConfig:
    """The config `resume` (a run directory or checkpoint) trained with, `changes` (flags) and
    `overrides` (`--set` pairs) applied, and where each value came from.

    `model`: the model the caller names (refused if the run is of another). `finetune`: True
    refuses a run that is not a fine-tuning run, False one that is (None: either)."""
    ckpt = ck.load_checkpoint(resume, prefer="last", need=())  # checkpoint.json only
    saved = ckpt.meta.get("config")
    if not isinstance(saved, dict):
        raise UserInputError(f"{ckpt.path} records no config to resume with")
    base = TrainConfig.from_dict(saved)  # fills in what older versions did not record
    if model and model != base.model:
        raise UserInputError(f"{resume} is a run of {base.model}, not {model}")
    if finetune is True and not base.finetune:
        raise UserInputError(f"{resume} is not a fine-tuning run; use convzoo train --resume")
    if finetune is False and base.finetune:
        raise UserInputError(f"{resume} is a fine-tuning run; use convzoo finetune --resume")
    changes = dict(changes or {})
    out = changes.pop("out", None)
    run_dir = ckpt.path.parent
    if out is not None and Path(out).resolve() != run_dir.resolve():
        raise UserInputError(f"--resume {resume} continues in {run_dir}; leave out --out {out} "
                             "(or copy the run there first)")
    base.stop_after = None  # the stop of the last invocation, not of this one
    return resolve_config(None, None, changes, dict(overrides or {}), base=base)


__all__ = ["resumed_config"]
