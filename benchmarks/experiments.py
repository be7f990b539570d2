"""The lectures' experiments at their command-line defaults, with the machine they ran on.

Runs `convzoo experiment activations` and `convzoo experiment degradation` with no options
(only --out), and writes each one's JSON with device, versions and date to
results/experiment_<kind>_cpu.json; the figures go to docs/figures/.

    .venv/bin/python benchmarks/experiments.py [activations|degradation|all]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import environment, write
from convzoo.cli import main

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"


def run(kind: str) -> None:
    out = Path(tempfile.mkdtemp(prefix=f"experiment-{kind}-"))
    t = time.perf_counter()
    argv = ["experiment", kind, "--out", str(out)]
    if main(argv) != 0:
        raise SystemExit(f"convzoo {' '.join(argv)} failed")
    result = json.loads((out / f"{kind}.json").read_text())
    env = environment(torch.device("cpu"))
    env["command"] = f"convzoo experiment {kind}"
    write(f"experiment_{kind}_cpu", {**env, "wall_s": round(time.perf_counter() - t, 1),
                                     **result})
    FIGURES.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / f"{kind}.png", FIGURES / f"experiment_{kind}.png")


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    for kind in ("activations", "degradation"):
        if which in (kind, "all"):
            run(kind)
