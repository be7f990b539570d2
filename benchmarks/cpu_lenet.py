"""CPU: what `make run` reaches, and lenet5_modern for 10 epochs, on Fashion-MNIST.

    python benchmarks/cpu_lenet.py            # both runs; writes results/cpu_lenet.json
    python benchmarks/cpu_lenet.py --smoke    # a few seconds on generated data

Targets: `make run`'s LeNet-5 at least 85% test accuracy; lenet5_modern after 10 epochs at
least 90%. Without Fashion-MNIST (Debian's dataset-fashion-mnist) both run on mnist5k and
the JSON says so.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write  # noqa: E402
from convzoo.demo import DEFAULT_EPOCHS, DEMO, pick_data  # noqa: E402
from convzoo.train import fit, load_recipe  # noqa: E402
from convzoo.train.config import replace  # noqa: E402

# lenet5_modern (ReLU, max-pooling, a linear output) takes a usual rate, not the RBF net's
MODERN = {"batch_size": 64, "lr": 0.05, "weight_decay": 5e-4, "schedule": "cosine"}


def run(model: str, data: str, epochs: int, out: Path, **overrides) -> dict:
    cfg = replace(load_recipe("lenet5_mnist"), {"model": model, "data": data, "epochs": epochs,
                                                "device": "cpu", "out": str(out), **overrides},
                  "benchmark")
    s = fit(cfg)
    return {"model": model, "data": data, "epochs": epochs, "recipe": cfg.recipe,
            "overrides": overrides,
            "test_top1": s["test"]["top1"], "test_top5": s["test"]["top5"],
            "wall_s": round(s["wall_s"], 2), "train_s": round(s["train_s"], 2),
            "images_per_s": round(s["images_per_s"], 1),
            "per_epoch_test_top1": [round(r["val_top1"], 4) for r in
                                    _history(out)]}


def _history(out: Path) -> list[dict]:
    from convzoo.train import load_checkpoint

    return load_checkpoint(out, prefer="last").meta["history"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny generated data, 1 epoch")
    p.add_argument("--threads", type=int)
    p.add_argument("--demo-epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--modern-epochs", type=int, default=10)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = "fake:1x28x28:256:10" if args.smoke else pick_data(None, None)
    demo_epochs, modern_epochs = (1, 1) if args.smoke else (args.demo_epochs, args.modern_epochs)
    result = {"benchmark": "cpu_lenet", **environment(torch.device("cpu")), "data": data,
              "smoke": args.smoke}
    with tempfile.TemporaryDirectory() as tmp:
        demo = run("lenet5", data, demo_epochs, Path(tmp) / "demo", **DEMO)
        modern = run("lenet5_modern", data, modern_epochs, Path(tmp) / "modern", **MODERN)
    result["make_run_lenet5"] = {**demo, "target_top1": 0.85,
                                 "met": demo["test_top1"] >= 0.85}
    result["lenet5_modern_10_epochs"] = {**modern, "target_top1": 0.90,
                                         "met": modern["test_top1"] >= 0.90}
    for key in ("make_run_lenet5", "lenet5_modern_10_epochs"):
        r = result[key]
        print(f"{key}: {r['model']} on {data}, {r['epochs']} epochs: test top-1 "
              f"{100 * r['test_top1']:.2f}% (target {100 * r['target_top1']:.0f}%), "
              f"{r['wall_s']:.1f} s")
    write("cpu_lenet_smoke" if args.smoke else "cpu_lenet", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
