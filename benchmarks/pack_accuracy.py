"""Does training from a pack reach the accuracy of training from its folder? The same model,
recipe and seeds on a folder of photo patches, on its JPEG pack and on its raw pack.

    python benchmarks/pack_accuracy.py        # -> results/pack_accuracy_cpu.json

Data, generated: 8 classes of 32x32 grey patches cut at random places and scales (40..96 px,
resized) from scikit-image's photos and textures (brick, grass, gravel, camera, coins, moon,
page, text), 150 per class (120 in train/, 30 in val/, so every seed and every source has the
same split: a pack keeps the split it was made with, while a folder without val/ is split by
the run's seed), JPEG quality 90. Model: lenet5_modern, SGD, one-cycle, 10 epochs, batch 32,
seeds 0, 1, 2. A raw pack stores the folder's decoded pixels, so it must match the folder exactly;
a JPEG pack re-encodes them (a second JPEG generation), so it may differ within the seeds'
spread.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write  # noqa: E402
from convzoo.data.pack import write_pack  # noqa: E402
from convzoo.train import TrainConfig, fit  # noqa: E402

NAMES = ["brick", "grass", "gravel", "camera", "coins", "moon", "page", "text"]


def make_patches(root: Path, per_class: int = 150, seed: int = 0) -> None:
    import skimage.data as d
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in NAMES:
        a = getattr(d, name)()
        im = Image.fromarray(a if a.ndim == 2 else a[..., 0])
        for part in ("train", "val"):
            (root / part / name).mkdir(parents=True)
        for i in range(per_class):
            s = int(rng.integers(40, 97))
            x = int(rng.integers(0, im.width - s + 1))
            y = int(rng.integers(0, im.height - s + 1))
            patch = im.resize((32, 32), Image.Resampling.BILINEAR, box=(x, y, x + s, y + s))
            part = "val" if i % 5 == 0 else "train"
            patch.save(root / part / name / f"{i:04d}.jpg", quality=90)


def train(data: str, seed: int, out: Path) -> float:
    cfg = TrainConfig(model="lenet5_modern", data=data, epochs=10, batch_size=32, lr=0.05,
                      schedule="onecycle", seed=seed, device="cpu", out=str(out),
                      plots=False, tensorboard=False, log_every=10**9)
    return float(fit(cfg)["test"]["top1"])


def main() -> None:
    torch.set_num_threads(1)
    result = {**environment(torch.device("cpu")), "model": "lenet5_modern", "epochs": 10,
              "seeds": [0, 1, 2], "top1": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "patches"
        make_patches(root)
        sources = {"folder": f"imagefolder:{root}"}
        for kind, q in (("packed_jpeg", 90), ("packed_raw", None)):
            f = Path(tmp) / f"{kind}.pack"
            write_pack(str(root), f, max_side=256, quality=q, progress=False)
            sources[kind] = f"packed:{f}"
        t = time.perf_counter()
        for kind, src in sources.items():
            accs = [train(src, s, Path(tmp) / f"run-{kind}-{s}") for s in result["seeds"]]
            result["top1"][kind] = {"per_seed": [round(a, 4) for a in accs],
                                    "mean": round(float(np.mean(accs)), 4),
                                    "spread": round(float(np.max(accs) - np.min(accs)), 4)}
            print(kind, result["top1"][kind], flush=True)
        result["seconds"] = round(time.perf_counter() - t, 1)
    write("pack_accuracy_cpu", result)


if __name__ == "__main__":
    main()
