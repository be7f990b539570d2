"""How deep to fine-tune, far from ImageNet, with the retrained batch norms re-estimated: the
digits half of docs/transfer_depth.md's run (EfficientNet-Lite0, ImageNet weights, 3x96x96,
20 labels per class, 200 test images, 4 epochs per depth, cosine from lr 0.02), through
`convzoo experiment transfer-depth`, which now re-estimates by default and keeps both scores.

    .venv/bin/python benchmarks/lecture_transfer_depth_bn.py [--depths 0,1,3,8]

Writes benchmarks/results/transfer_depth_lite0_digits_bn_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import environment, write
from convzoo.cli import main as convzoo

OUT = "runs/transfer-depth-digits-bn"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depths", default="0,1,3,8")
    a = ap.parse_args()
    torch.set_num_threads(2)
    argv = ["experiment", "transfer-depth", "efficientnet_lite0", "--weights", "imagenet",
            "--data", "digits", "--labels-per-class", "20", "--test-limit", "200", "--input",
            "3x96x96", "--depths", a.depths, "--epochs", "4", "--lr", "0.02", "--batch-size",
            "32", "--device", "cpu", "--seed", "0", "--out", OUT]
    t = time.perf_counter()
    assert convzoo(argv) == 0
    res = json.loads((Path(OUT) / "transfer_depth.json").read_text())
    write("transfer_depth_lite0_digits_bn_cpu", {
        "benchmark": "transfer depth on digits with batch-norm re-estimation",
        **environment(torch.device("cpu")), "cli": "convzoo " + " ".join(argv), **res,
        "wall_s": round(time.perf_counter() - t, 1)})


if __name__ == "__main__":
    main()
