"""How long the loader alone takes per epoch (no model), for the benchmarks.

    python -m convzoo.data.bench [NAME] [--device cuda] [--batch-size 512] [--augment cifar]

prints one JSON object; `time_loader` returns the same as a dict.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import torch

from .augment import get_augment
from .catalog import load_dataset
from .loader import make_loader


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loader(name: str = "fake:3x32x32:50000:10", *, batch_size: int = 512,
                augment: str | None = "cifar", device: str = "cpu",
                input_size: tuple[int, int, int] | None = None, epochs: int = 3,
                seed: int = 0, data_dir: str | None = None,
                channels_last: bool = False) -> dict[str, Any]:
    """Seconds per training epoch of the loader (gather, augment, adapt, normalise), every
    epoch listed; the first also copies the data set to the device."""
    dev = torch.device(device)
    t = time.perf_counter()
    ds = load_dataset(name, data_dir=data_dir, seed=seed)
    load_s = time.perf_counter() - t
    size = input_size or ds.image_size
    times, n = [], 0
    for epoch in range(epochs):
        _sync(dev)
        t = time.perf_counter()
        batches = make_loader(ds.train, batch_size=batch_size, train=True, device=dev,
                              input_size=size, mean=ds.mean, std=ds.std,
                              augment=get_augment(augment), seed=seed, epoch=epoch,
                              channels_last=channels_last)
        n = 0
        for _, y in batches:
            n += len(y)
        _sync(dev)
        times.append(time.perf_counter() - t)
    best = min(times)
    return {
        "dataset": ds.name, "images_per_epoch": n, "batch_size": batch_size,
        "augment": augment, "input_size": list(size), "device": str(dev),
        "device_name": (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                        else platform.processor() or platform.machine()),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "load_s": round(load_s, 4), "epoch_s": [round(v, 4) for v in times],
        "best_epoch_s": round(best, 4), "images_per_s": round(n / best) if best else None,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m convzoo.data.bench", description=__doc__)
    p.add_argument("name", nargs="?", default="fake:3x32x32:50000:10")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--augment", default="cifar")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(json.dumps(time_loader(a.name, batch_size=a.batch_size, augment=a.augment,
                                 device=a.device, epochs=a.epochs, data_dir=a.data_dir)))


if __name__ == "__main__":
    main()
