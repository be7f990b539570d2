"""Do better ImageNet models transfer better? (Kornblith, Shlens and Le 2019.) Linear probes on
the ImageNet features of EfficientNet-Lite0, Lite1 and Lite2, each at its own input size (224,
240, 260), against each model's published ImageNet top-1 (analysis/published.toml).

Data: lfw (scikit-image's faces against non-faces, every training image: near ImageNet's
photos) and Fashion-MNIST (100 labels per class, 1,000 test images: far from them).

    .venv/bin/python benchmarks/lecture_lite_transfer.py
    .venv/bin/python benchmarks/lecture_lite_transfer.py --data fashion-mnist --input 224

Writes benchmarks/results/transfer_lite012_cpu.json (with --input S: every model at S x S,
to tell the model from its input size, in transfer_lite012_at{S}_cpu.json).
"""

from __future__ import annotations

import tempfile
import time
import tomllib
from pathlib import Path

import torch

from common import environment, write
from convzoo.data.catalog import load_dataset
from convzoo.experiments.transfer import run_transfer

MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
DATA = (("lfw", None, None), ("fashion-mnist", 100, 1000))


def published_top1() -> dict[str, float]:
    import convzoo.analysis as analysis

    table = tomllib.loads((Path(analysis.__file__).parent / "published.toml").read_text())
    return {m: table[m]["top1"] for m in MODELS}


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="only this data set of the two")
    ap.add_argument("--input", type=int, help="every model at this side (default: its own)")
    a = ap.parse_args()
    size = (3, a.input, a.input) if a.input else None
    t0 = time.perf_counter()
    top1 = published_top1()
    rows = []
    for name, per_class, test_limit in DATA:
        if a.data and name != a.data:
            continue
        data = load_dataset(name, seed=0)
        counts = [per_class or min(int((data.train.labels == c).sum())
                                   for c in range(data.num_classes))]
        for m in MODELS:
            t = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                r = run_transfer(m, data, counts, Path(tmp), weights="imagenet",
                                 methods=("probe_pretrained",), device="cpu", seed=0,
                                 test_limit=test_limit, input_size=size, log=lambda s: None)
            acc = r["rows"][0]["probe_pretrained"]
            rows.append({"data": name, "model": m, "imagenet_top1": top1[m],
                         "labels_per_class": counts[0],
                         "train_images": r["rows"][0]["train_images"],
                         "test_images": r["test_images"], "input_size": r["input_size"],
                         "probe_top1": acc, "seconds": round(time.perf_counter() - t, 1)})
            print(rows[-1], flush=True)
    write(f"transfer_lite012{f'_at{a.input}' if a.input else ''}_cpu", {
        "benchmark": "linear probes on EfficientNet-Lite0/1/2 ImageNet features",
        **environment(torch.device("cpu")), "rows": rows,
        "wall_s": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
