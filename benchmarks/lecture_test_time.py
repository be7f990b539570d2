"""AlexNet's ten crops and VGG's multi-scale test against the centre crop, for EfficientNet-Lite0
with its ImageNet features: a linear probe trained on lfw (scikit-image's faces against
non-faces) with `convzoo finetune --mode linear`, then scored with `convzoo eval --tta`.

    .venv/bin/python benchmarks/lecture_test_time.py
    .venv/bin/python benchmarks/lecture_test_time.py --augment crop_flip

Writes benchmarks/results/test_time_lite0_lfw_cpu.json (with --augment P, the probe trained
with that preset: test_time_lite0_lfw_P_cpu.json).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import environment, write

ROOT = Path(__file__).resolve().parent.parent
RUN = "runs/test-time-lite0-lfw"
METHODS = ("flip", "ten-crop", "multiscale:224,256,288", "multiscale:256,320,384")


def convzoo(*args: str) -> str:
    print("$ convzoo " + " ".join(args), flush=True)
    return subprocess.run([sys.executable, "-m", "convzoo", *args], check=True,
                          capture_output=True, text=True, cwd=ROOT).stdout


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--augment", help="the probe's training augmentation (default: none)")
    a = ap.parse_args()
    run = RUN + (f"-{a.augment}" if a.augment else "")
    t0 = time.perf_counter()
    train = ("finetune", "efficientnet_lite0", "--weights", "imagenet", "--data", "lfw",
             "--mode", "linear", "--epochs", "5", "--lr", "0.05", "--batch-size", "32",
             "--device", "cpu", "--seed", "0", "--out", run, "--quiet",
             *(("--augment", a.augment) if a.augment else ()))
    convzoo(*train)
    ev = ["eval", run, "--device", "cpu", "--batch-size", "20"]
    for m in METHODS:
        ev += ["--tta", m]
    res = json.loads(convzoo(*ev, "--format", "json"))
    print(convzoo(*ev))
    write(f"test_time_lite0_lfw{f'_{a.augment}' if a.augment else ''}_cpu", {
        "benchmark": "test-time methods: centre crop, flip, ten-crop, multi-scale",
        **environment(torch.device("cpu")),
        "train_command": "convzoo " + " ".join(train), "eval_command": "convzoo " + " ".join(ev),
        **res, "wall_s": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
