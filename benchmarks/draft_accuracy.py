"""Does decoding large photos at a reduced DCT scale (Pillow's draft mode) cost accuracy? The
same model, recipe and seeds on one folder of large photos, decoded with the draft where the
crop allows it (convzoo's default) and always at full scale.

    python benchmarks/draft_accuracy.py        # -> results/draft_accuracy_cpu.json

Data, generated: 8 classes of large grey photos (1600x1200, JPEG quality 90) made from
scikit-image's photos and textures (brick, grass, gravel, camera, coins, moon, page, text):
each source enlarged by a random factor of 1.5-3, mirrored into a tiling, cut at a random place
and given a film grain, so every photo has detail down to the pixel (an enlargement alone would
be smooth, and its reduced decode trivially the same). 40 per class, 32 in train/, 8 in val/.
Model: lenet5_modern at 32x32, the folder's random-resized crop and flip, SGD, one-cycle, 15
epochs, batch 32, seeds 0, 1, 2. Each crop is at least 8% of a photo, so about 340 px or more
against a 32-px input: the draft decodes at 1/8 of the side nearly always, in training and in
evaluation (resize and centre crop).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convzoo.data.decode as decode  # noqa: E402
from common import environment, write  # noqa: E402
from convzoo.train import TrainConfig, fit  # noqa: E402
from pack_accuracy import NAMES  # noqa: E402

SIZE = (1600, 1200)
EPOCHS = 15
SEEDS = [0, 1, 2]


def make_photos(root: Path, per_class: int = 40, seed: int = 0) -> None:
    import skimage.data as d
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = SIZE
    for name in NAMES:
        a = getattr(d, name)()
        src = Image.fromarray(a if a.ndim == 2 else a[..., 0])
        for part in ("train", "val"):
            (root / part / name).mkdir(parents=True)
        for i in range(per_class):
            f = float(rng.uniform(1.5, 3.0))
            big = np.asarray(src.resize((round(src.width * f), round(src.height * f)),
                                        Image.Resampling.BICUBIC), dtype=np.float32)
            tile = np.block([[big, big[:, ::-1]], [big[::-1], big[::-1, ::-1]]])
            reps = (h // tile.shape[0] + 2, w // tile.shape[1] + 2)
            canvas = np.tile(tile, reps)
            y = int(rng.integers(0, canvas.shape[0] - h))
            x = int(rng.integers(0, canvas.shape[1] - w))
            photo = canvas[y:y + h, x:x + w] + rng.normal(0, 8, (h, w))
            part = "val" if i % 5 == 0 else "train"
            Image.fromarray(photo.clip(0, 255).astype(np.uint8)).save(
                root / part / name / f"{i:04d}.jpg", quality=90)


def train(data: str, seed: int, out: Path) -> dict:
    cfg = TrainConfig(model="lenet5_modern", data=data, epochs=EPOCHS, batch_size=32, lr=0.05,
                      schedule="onecycle", seed=seed, device="cpu", out=str(out),
                      plots=False, tensorboard=False, log_every=10**9, workers=0)
    s = fit(cfg)
    return {"top1": float(s["test"]["top1"]), "images_per_s": float(s["images_per_s"])}


def main() -> None:
    torch.set_num_threads(1)
    result = {**environment(torch.device("cpu")), "model": "lenet5_modern", "epochs": EPOCHS,
              "photo_size": list(SIZE), "seeds": SEEDS, "arms": {}}
    full_scale = float("inf")  # no crop shrinks that much: the draft is never used
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        t = time.perf_counter()
        make_photos(root)
        print(f"photos made in {time.perf_counter() - t:.0f} s", flush=True)
        t = time.perf_counter()
        runs: dict[str, list[dict]] = {"draft": [], "full_decode": []}
        for seed in SEEDS:  # the arms interleaved, so a change of load falls on both
            for arm, threshold in (("draft", decode.DRAFT_MIN_REDUCTION),
                                   ("full_decode", full_scale)):
                saved = decode.DRAFT_MIN_REDUCTION
                decode.DRAFT_MIN_REDUCTION = threshold
                try:
                    runs[arm].append(train(f"imagefolder:{root}", seed,
                                           Path(tmp) / f"run-{arm}-{seed}"))
                finally:
                    decode.DRAFT_MIN_REDUCTION = saved
                print(arm, seed, runs[arm][-1], flush=True)
        for arm, rs in runs.items():
            accs = [r["top1"] for r in rs]
            result["arms"][arm] = {
                "top1_per_seed": [round(a, 4) for a in accs],
                "top1_mean": round(float(np.mean(accs)), 4),
                "top1_spread": round(float(np.max(accs) - np.min(accs)), 4),
                "train_images_per_s": [round(r["images_per_s"], 1) for r in rs]}
        result["seconds"] = round(time.perf_counter() - t, 1)
    write("draft_accuracy_cpu", result)


if __name__ == "__main__":
    main()
