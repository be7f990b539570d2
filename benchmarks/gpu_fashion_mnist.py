"""GPU: time to 94.0% test accuracy on Fashion-MNIST, convzoo's fastest recipe against the
typical pipeline, measured in the same run.

    python benchmarks/gpu_fashion_mnist.py            # on a GPU -> results/*.json
    python benchmarks/gpu_fashion_mnist.py --compile  # convzoo compiled (compile apart)
    python benchmarks/gpu_fashion_mnist.py --smoke    # seconds, on the CPU, generated data

convzoo: the `fashion_mnist` recipe (resnet_fmnist, data held on the GPU as uint8, batch 512,
one-cycle SGD + Nesterov, label smoothing 0.1, shift+flip on the GPU, flip TTA, bf16,
channels_last), timed from reading the files on disk to the final evaluation.
Typical: torchvision DataLoader with 8 workers and PIL transforms (2-pixel pad + crop, flip),
torchvision's ResNet-18 adapted to 28x28, SGD + one-cycle, bf16, channels_last, 10 epochs,
timed the same way. Each run's per-epoch test accuracy is recorded, so the epoch (and the
elapsed time) at which it first reached the target is reported too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
from common import environment, sync, write  # noqa: E402
from convzoo.data.catalog import load_dataset  # noqa: E402
from convzoo.train import fit, load_checkpoint, load_recipe  # noqa: E402
from convzoo.train.config import replace  # noqa: E402


def first_reaching(accs: list[float], seconds: list[float], target: float) -> dict:
    for i, a in enumerate(accs):
        if a >= target:
            return {"epoch": i + 1, "elapsed_s": round(seconds[i], 2)}
    return {"epoch": None, "elapsed_s": None}


def run_convzoo(args, device: torch.device, data: str, tmp: Path) -> dict:
    over = {"data": data, "device": str(device), "out": str(tmp / "convzoo"),
            "compile": args.compile, "tensorboard": False, "plots": False, "seed": args.seed}
    if args.epochs:
        over["epochs"] = args.epochs
    if args.smoke:
        over.update(model="resnet_fmnist_s", epochs=1, batch_size=16)
    cfg = replace(load_recipe("fashion_mnist"), over, "benchmark")
    t0 = time.perf_counter()
    s = fit(cfg)
    wall = time.perf_counter() - t0
    hist = load_checkpoint(tmp / "convzoo", prefer="last").meta["history"]
    accs = [r["val_top1"] for r in hist]
    # elapsed at the end of each epoch's evaluation, measured from the start, compile excluded
    overhead = wall - s["compile_s"] - sum(r["epoch_s"] for r in hist)
    per_epoch_overhead = overhead / len(hist)
    elapsed, acc_t = [], 0.0
    for r in hist:
        acc_t += r["epoch_s"] + per_epoch_overhead
        elapsed.append(acc_t)
    return {"recipe": cfg.recipe, "model": cfg.model, "epochs": cfg.epochs,
            "batch_size": cfg.batch_size, "compile": cfg.compile,
            "wall_s": round(wall, 2), "compile_s": round(s["compile_s"], 2),
            "wall_s_without_compile": round(wall - s["compile_s"], 2),
            "train_s": round(s["train_s"], 2), "test_top1": s["test"]["top1"],
            "per_epoch_test_top1": [round(a, 4) for a in accs],
            "first_reaching_target": first_reaching(accs, elapsed, args.target)}


def run_peer(args, device: torch.device, data: str) -> dict:
    bf16 = device.type == "cuda"
    t0 = time.perf_counter()
    ds = load_dataset(data)  # reads the same IDX files
    epochs = 1 if args.smoke else args.peer_epochs
    bs = 16 if args.smoke else args.peer_batch
    workers = min(args.workers, 2) if args.smoke else args.workers
    common = dict(workers=workers, size=28, pad=2, mean=ds.mean, std=ds.std, device=device)
    train = peers.loader(ds.train.images, ds.train.labels, train=True, batch_size=bs, **common)
    test = peers.loader(ds.test.images, ds.test.labels, train=False, batch_size=1024, **common)
    torch.manual_seed(args.seed)
    model = peers.resnet18_28(len(ds.classes)).to(device)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=args.peer_lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.peer_lr,
                                                total_steps=epochs * len(train))
    accs, elapsed = [], []
    for _ in range(epochs):
        peers.train_epoch(model, train, opt, sched, device, bf16, channels_last=bf16)
        accs.append(peers.accuracy(model, test, device, bf16, channels_last=bf16))
        sync(device)
        elapsed.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t0
    return {"pipeline": f"torchvision DataLoader ({workers} workers), PIL transforms "
                        "(pad-2 crop, flip), torchvision resnet18 adapted to 28x28, SGD + "
                        f"nesterov + one-cycle (max lr {args.peer_lr}), "
                        f"{'bf16, channels_last' if bf16 else 'fp32'}",
            "epochs": epochs, "batch_size": bs, "wall_s": round(wall, 2),
            "test_top1": accs[-1], "per_epoch_test_top1": [round(a, 4) for a in accs],
            "first_reaching_target": first_reaching(accs, elapsed, args.target)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny generated data, CPU, 1 epoch")
    p.add_argument("--compile", action="store_true", help="torch.compile convzoo's model")
    p.add_argument("--epochs", type=int, help="convzoo epochs (default: the recipe's)")
    p.add_argument("--target", type=float, default=0.94)
    p.add_argument("--peer-epochs", type=int, default=10)
    p.add_argument("--peer-batch", type=int, default=256)
    p.add_argument("--peer-lr", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device.type != "cuda" and not args.smoke:
        print("no GPU: run with --smoke for a CPU check", file=sys.stderr)
        return 2
    data = "fake:1x28x28:128:10" if args.smoke else "fashion-mnist"
    result = {"benchmark": "gpu_fashion_mnist", **environment(device), "data": data,
              "target_top1": args.target, "smoke": args.smoke}
    with tempfile.TemporaryDirectory() as tmp:
        result["convzoo"] = run_convzoo(args, device, data, Path(tmp))
    if not args.skip_peer:
        result["typical"] = run_peer(args, device, data)
        result["typical_wall_over_convzoo_wall_without_compile"] = round(
            result["typical"]["wall_s"] / result["convzoo"]["wall_s_without_compile"], 2)
    for key in ("convzoo", "typical"):
        if key in result:
            r = result[key]
            print(f"{key}: {r['epochs']} epochs, test top-1 {100 * r['test_top1']:.2f}%, "
                  f"{r['wall_s']:.1f} s (first >= {100 * args.target:.1f}%: "
                  f"{r['first_reaching_target']})")
    write("gpu_fashion_mnist_smoke" if args.smoke else "gpu_fashion_mnist", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
