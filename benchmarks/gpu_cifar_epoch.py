"""GPU: seconds per 50,000-image epoch of ResNet-20 with pad-4 crop and flip, convzoo's
device-resident loader against a torchvision DataLoader pipeline, measured in the same run.

    python benchmarks/gpu_cifar_epoch.py            # batch 128 and 512 -> results/*.json
    python benchmarks/gpu_cifar_epoch.py --compile  # convzoo compiled too (compile apart)
    python benchmarks/gpu_cifar_epoch.py --smoke    # seconds, on the CPU

Data: fake:3x32x32:50000:10 (CIFAR-10's shape and size). Both pipelines feed the same model
(convzoo's resnet20, the paper's option-A network), bf16 autocast, channels_last, SGD with
momentum. Each pipeline runs one warm-up epoch (workers starting, kernels choosing, compile),
then the timed epochs; the figure is their mean, scaled to 50,000 images.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
from common import environment, sync, write  # noqa: E402
from convzoo import create_model  # noqa: E402
from convzoo.data.catalog import load_dataset  # noqa: E402
from convzoo.train.config import TrainConfig  # noqa: E402
from convzoo.train.loop import RunState, loader, train_one_epoch  # noqa: E402
from convzoo.train.schedules import Schedule, make_optimizer  # noqa: E402


def convzoo_epochs(ds, bs: int, device: torch.device, epochs: int, compile_: bool) -> dict:
    bf16 = device.type == "cuda"
    cfg = TrainConfig(model="resnet20", batch_size=bs, lr=0.1, momentum=0.9,
                      weight_decay=1e-4, augment="crop_flip", device=str(device),
                      log_every=10**9)
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10).to(device)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_ else model
    opt = make_optimizer(model, cfg)
    times, state = [], RunState()
    for epoch in range(1 + epochs):
        batches = loader(ds.train, ds, cfg, train=True, device=device, input_size=(3, 32, 32),
                         epoch=epoch, channels_last=bf16)
        if epoch == 0:
            sched = Schedule(opt, cfg, len(batches), len(batches) * (1 + epochs))
        sync(device)
        t0 = time.perf_counter()
        train_one_epoch(net, batches, opt, sched, cfg, state, device=device,
                        amp=torch.bfloat16 if bf16 else None, epoch=epoch)
        sync(device)
        times.append(time.perf_counter() - t0)
    n = len(batches) * bs
    return {"warmup_epoch_s": round(times[0], 3), "epoch_s": times[1:],
            "s_per_50k": round(sum(times[1:]) / epochs * 50000 / n, 3)}


def peer_epochs(ds, bs: int, device: torch.device, epochs: int, workers: int) -> dict:
    bf16 = device.type == "cuda"
    dl = peers.loader(ds.train.images, ds.train.labels, train=True, batch_size=bs,
                      workers=workers, size=32, pad=4, mean=ds.mean, std=ds.std, device=device)
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10).to(device)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    times = [peers.train_epoch(model, dl, opt, None, device, bf16, channels_last=bf16)
             for _ in range(1 + epochs)]
    n = len(dl) * bs
    return {"warmup_epoch_s": round(times[0], 3), "epoch_s": times[1:],
            "s_per_50k": round(sum(times[1:]) / epochs * 50000 / n, 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="128 generated images on the CPU")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up one")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device.type != "cuda" and not args.smoke:
        print("no GPU: run with --smoke for a CPU check", file=sys.stderr)
        return 2
    data = "fake:3x32x32:128:10" if args.smoke else "fake:3x32x32:50000:10"
    epochs = 1 if args.smoke else args.epochs
    workers = min(args.workers, 2) if args.smoke else args.workers
    sizes = sorted({min(b, 128) for b in args.batch_sizes}) if args.smoke else args.batch_sizes
    ds = load_dataset(data)
    result = {"benchmark": "gpu_cifar_epoch", **environment(device), "data": data,
              "model": "resnet20", "augment": "pad-4 random crop, horizontal flip",
              "smoke": args.smoke, "runs": []}
    for bs in sizes:
        row = {"batch_size": bs,
               "convzoo": convzoo_epochs(ds, bs, device, epochs, False),
               "typical": {"pipeline": f"torchvision DataLoader ({workers} workers), PIL "
                           "RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + "
                           "Normalize", **peer_epochs(ds, bs, device, epochs, workers)}}
        if args.compile:
            row["convzoo_compiled"] = convzoo_epochs(ds, bs, device, epochs, True)
        row["typical_over_convzoo"] = round(row["typical"]["s_per_50k"] /
                                            row["convzoo"]["s_per_50k"], 2)
        result["runs"].append(row)
        print(f"batch {bs}: convzoo {row['convzoo']['s_per_50k']:.2f} s/epoch, typical "
              f"{row['typical']['s_per_50k']:.2f} s/epoch (x{row['typical_over_convzoo']})"
              + (f", convzoo compiled {row['convzoo_compiled']['s_per_50k']:.2f} s/epoch "
                 f"(first epoch with compile {row['convzoo_compiled']['warmup_epoch_s']:.1f} s)"
                 if args.compile else ""))
    write("gpu_cifar_epoch_smoke" if args.smoke else "gpu_cifar_epoch", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
