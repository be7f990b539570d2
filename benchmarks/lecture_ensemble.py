"""AlexNet's ensemble on a CPU: three `lenet5_modern` runs on Fashion-MNIST that differ only in
their seed (initial weights and data order), each scored alone and the three averaged
(`convzoo eval RUN_A RUN_B RUN_C`).

    .venv/bin/python benchmarks/lecture_ensemble.py [--epochs 3] [--seeds 0,1,2]

Each run trains with one torch thread (the machine's other core stays free); the members'
results and the ensemble's go to benchmarks/results/ensemble_lenet5_fmnist_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import environment, write

ROOT = Path(__file__).resolve().parent.parent


def convzoo(*args: str) -> str:
    cmd = [sys.executable, "-m", "convzoo", *args]
    print("$ convzoo " + " ".join(args), flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="runs/ensemble-lenet5-fmnist")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    t0 = time.perf_counter()
    runs, train_s = [], []
    for s in seeds:
        run = f"{a.out}/seed{s}"
        t = time.perf_counter()
        convzoo("train", "lenet5_modern", "--recipe", "lenet5_modern_mnist", "--data",
                "fashion-mnist", "--epochs", str(a.epochs), "--seed", str(s), "--device", "cpu",
                "--threads", "1", "--out", run, "--quiet")
        train_s.append(round(time.perf_counter() - t, 1))
        runs.append(run)
    res = json.loads(convzoo("eval", *runs, "--format", "json", "--device", "cpu"))
    print(convzoo("eval", *runs, "--device", "cpu"))
    members = [{"run": r, "seed": s, "train_s": ts, "top1": m["top1"], "top5": m["top5"],
                "loss": m["loss"]} for r, s, ts, m in zip(runs, seeds, train_s, res["members"])]
    e = res["ensemble"]
    best = max(m["top1"] for m in members)
    mean = sum(m["top1"] for m in members) / len(members)
    write("ensemble_lenet5_fmnist_cpu", {
        "benchmark": "ensemble of lenet5_modern runs on Fashion-MNIST",
        **environment(torch.device("cpu")),
        "recipe": "lenet5_modern_mnist", "epochs": a.epochs, "seeds": seeds,
        "eval_command": "convzoo eval " + " ".join(runs),
        "test_images": e["n"], "members": members,
        "ensemble": {"top1": e["top1"], "top5": e["top5"], "loss": e["loss"]},
        "ensemble_minus_best_member_top1": e["top1"] - best,
        "ensemble_minus_mean_member_top1": e["top1"] - mean,
        "wall_s": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
