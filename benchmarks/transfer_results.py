"""The transfer-learning results: EfficientNet-Lite0's ImageNet features against random ones.

1. lfw (scikit-image's 100 faces and 100 non-faces, a seeded 80/20 split per class): linear
   probes on pretrained and on random features, at the weights' own 224x224 input.
2. Fashion-MNIST with 10 and 100 labels per class: the pretrained probe, partial fine-tuning
   and training from scratch (and the random probe), on the same images, at 96x96 to keep a
   CPU run to minutes, scored on 1,000 test images.

    .venv/bin/python benchmarks/transfer_results.py [lfw|fmnist|all]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from common import environment, write
from convzoo.data.catalog import load_dataset
from convzoo.experiments.transfer import result_table, run_transfer


def lfw() -> dict:
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        r = run_transfer("efficientnet_lite0", load_dataset("lfw", seed=0), [80], Path(tmp),
                         weights="imagenet", methods=("probe_pretrained", "probe_random"),
                         device="cpu", seed=0)
    print(result_table(r).render("table"))
    return {"experiment": "lfw faces vs non-faces, linear probes", **r,
            "wall_s": round(time.perf_counter() - t, 1)}


def fmnist() -> dict:
    t = time.perf_counter()
    out = Path(tempfile.mkdtemp(prefix="transfer-fmnist-"))
    r = run_transfer("efficientnet_lite0", load_dataset("fashion-mnist", seed=0), [10, 100],
                     out, weights="imagenet", epochs=8, lr=0.02, train_last=2,
                     batch_size=32, device="cpu", seed=0, test_limit=1000,
                     input_size=(3, 96, 96))
    print(result_table(r).render("table"))
    return {"experiment": "Fashion-MNIST, 10 and 100 labels per class", **r,
            "wall_s": round(time.perf_counter() - t, 1)}


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which in ("lfw", "all"):
        print(write("transfer_lfw_cpu", {**environment(torch.device("cpu")), **lfw()}))
    if which in ("fmnist", "all"):
        print(write("transfer_fashion_mnist_cpu", {**environment(torch.device("cpu")), **fmnist()}))


if __name__ == "__main__":
    main()
