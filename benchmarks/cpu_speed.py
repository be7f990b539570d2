"""CPU speed: convzoo's `fit` against a plain PyTorch loop and a torchvision DataLoader pipeline,
inference, sustained GFLOP/s against the core's measured matmul peak, and CLI start-up.

    python benchmarks/cpu_speed.py            # writes results/cpu_speed.json (~10 min)
    python benchmarks/cpu_speed.py --smoke    # seconds, on tiny generated data

Training, for lenet5 and lenet5_modern on Fashion-MNIST (Debian's dataset-fashion-mnist; a
subset of the training set, the whole test set) and resnet20 on CIFAR-shaped generated data
(`fake:3x32x32`, learnable: each class has its own pattern), three ways with the same model
and initial weights, batch, optimiser, schedule and epochs, in rounds whose order alternates
(A B C, C B A, ...) so that other load on the machine falls on all alike:

- convzoo: `fit` with its defaults (the CPU fast path: thread choice, channels_last, fused
  optimiser step, bf16 autocast where the CPU has AMX and the model is convolution-bound,
  the CPU kernels for 2x2 max-pooling and full-extent convolutions; plots and TensorBoard off);
- plain: a hand-written loop over in-memory float tensors (normalised and padded once),
  torch's default optimiser step and layout, evaluation under no_grad;
- dataloader: the usual torchvision pipeline, a Dataset of PIL images with ToTensor, Pad and
  Normalize transforms through a DataLoader (shuffle, workers 0), otherwise as plain.

All three run at the thread count convzoo chooses (`train.device.choose_threads`), so the
ratios are per-step work; the plain loop at torch's default thread count is timed apart for a
few steps. No augmentation, so that all three see the same images. Images/s counts training
steps only; CPU seconds are the process's over the whole call (setup and evaluation too).
Each round takes its own seed (the three ways' initial weights, and their data orders);
each speed is the median over the rounds and accuracy is compared by the mean over them, with
its spread: over a few epochs the same net from other weights or in another order, or with
sums rounded in another order, ends a point or so apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, matmul_peak, write  # noqa: E402
from convzoo import create_model  # noqa: E402
from convzoo.data.catalog import ArraySplit, DataSet, load_dataset  # noqa: E402
from convzoo.runtime.cpu_kernels import prepare_cpu_inference  # noqa: E402
from convzoo.runtime.device import autocast, choose_threads, load_average  # noqa: E402
from convzoo.train import fit, load_recipe  # noqa: E402
from convzoo.train.config import TrainConfig, replace  # noqa: E402
from convzoo.train.schedules import Schedule  # noqa: E402

# (model, recipe, data, overrides): the recipes' own settings, shortened to a few epochs
CASES = {
    "lenet5": ("lenet5_mnist", "fashion-mnist", {"batch_size": 64, "lr": 0.001}),
    "lenet5_modern": ("lenet5_modern_mnist", "fashion-mnist", {}),
    "resnet20": ("resnet_cifar", "fake:3x32x32:{n}:10", {"augment": "none"}),
}
CLI = {
    "import torch": ["-c", "import torch"],
    "convzoo --help": ["-m", "convzoo", "--help"],
    "convzoo list": ["-m", "convzoo", "list"],
    "convzoo calc conv": ["-m", "convzoo", "calc", "conv", "--input", "32", "--filter", "5",
                          "--pad", "2", "--in-channels", "3", "--out-channels", "10"],
    "convzoo summary vgg16": ["-m", "convzoo", "summary", "vgg16"],
}


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# ---- data ----------------------------------------------------------------------------------

def dataset(model: str, data: str, train_images: int) -> DataSet:
    ds = load_dataset(data.format(n=train_images))
    if isinstance(ds.train, ArraySplit) and len(ds.train) > train_images:
        tr = ds.train
        ds = dataclasses.replace(ds, train=ArraySplit(tr.images[:train_images],
                                                      tr.labels[:train_images]))
    return ds


def input_hw(model: str) -> int:
    return int(create_model(model).default_input_size[-1])


def tensors(split: ArraySplit, ds: DataSet, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The split as normalised float tensors at the model's side (zero-padded), done once."""
    x = split.images.float().div_(255)
    pad = (side - x.shape[-1]) // 2
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad))
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.std).view(1, -1, 1, 1)
    return (x - mean) / std, split.labels


class PILImages(torch.utils.data.Dataset):
    """What torchvision's MNIST/CIFAR datasets do: a PIL image per item, then transforms."""

    def __init__(self, split: ArraySplit, transform: Any) -> None:
        self.images, self.labels, self.transform = split.images, split.labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        a = self.images[i].permute(1, 2, 0).numpy()
        img = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        return self.transform(img), int(self.labels[i])


def pil_loader(split: ArraySplit, ds: DataSet, side: int, batch: int, train: bool) -> Any:
    from torchvision import transforms as T

    pad = (side - split.images.shape[-1]) // 2
    tf = T.Compose([T.ToTensor(), *([T.Pad(pad)] if pad > 0 else []),
                    T.Normalize(ds.mean, ds.std)])
    return torch.utils.data.DataLoader(PILImages(split, tf), batch_size=batch, shuffle=train,
                                       drop_last=train, num_workers=0)


# ---- the three ways to train ---------------------------------------------------------------

def run_convzoo(cfg: TrainConfig, ds: DataSet, out: Path) -> dict[str, Any]:
    t, c = time.perf_counter(), time.process_time()
    s = fit(dataclasses.replace(cfg, out=str(out)), data=ds)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"train_s": s["train_s"], "images_per_s": s["images_per_s"], "wall_s": wall,
            "cpu_s": cpu, "test_top1": s["test"]["top1"],
            "epoch_s": s["train_s"] / max(1, s["epochs"]), "channels_last": s["channels_last"],
            "amp": s.get("amp"), "cpu_kernels": s.get("cpu_kernels", [])}


def _plain_eval(model: torch.nn.Module, batches: Any) -> float:
    model.eval()
    correct = n = 0
    with torch.no_grad():
        for x, y in batches:
            correct += int((model(x).argmax(1) == y).sum())
            n += len(y)
    model.train()
    return correct / max(n, 1)


def run_peer(kind: str, cfg: TrainConfig, ds: DataSet, side: int) -> dict[str, Any]:
    t, c = time.perf_counter(), time.process_time()
    torch.manual_seed(cfg.seed)  # convzoo's fit seeds the same way before building the model
    model = create_model(cfg.model, num_classes=len(ds.classes), in_channels=ds.image_size[0])
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    bs = cfg.batch_size
    if kind == "plain":
        xs, ys = tensors(ds.train, ds, side)
        xt, yt = tensors(ds.test, ds, side)
        steps = len(ys) // bs
        test = [(xt[i:i + 256], yt[i:i + 256]) for i in range(0, len(yt), 256)]
    else:
        train_loader = pil_loader(ds.train, ds, side, bs, True)
        test = pil_loader(ds.test, ds, side, 256, False)
        steps = len(train_loader)
    # the same schedule as convzoo's (torch's own schedulers, stepped per optimiser step)
    schedule = Schedule(opt, cfg, steps, cfg.epochs * steps)
    train_s, images = 0.0, 0
    model.train()
    for _ in range(cfg.epochs):
        t0 = time.perf_counter()
        if kind == "plain":
            perm = torch.randperm(len(ys))
            batches = ((xs[perm[i * bs:(i + 1) * bs]], ys[perm[i * bs:(i + 1) * bs]])
                       for i in range(steps))
        else:
            batches = iter(train_loader)
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.after_step()
            images += len(y)
        train_s += time.perf_counter() - t0
    top1 = _plain_eval(model, test)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"train_s": train_s, "images_per_s": images / train_s, "wall_s": wall, "cpu_s": cpu,
            "test_top1": top1, "epoch_s": train_s / cfg.epochs}


def plain_default_threads(cfg: TrainConfig, ds: DataSet, side: int, steps: int,
                          threads: int) -> float:
    """Images/s of the plain loop's steps at torch's default thread count (a student's)."""
    default = os.cpu_count() or 1
    torch.set_num_threads(default)
    try:
        model = create_model(cfg.model, num_classes=len(ds.classes),
                             in_channels=ds.image_size[0])
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        xs, ys = tensors(ArraySplit(ds.train.images[:cfg.batch_size * (steps + 1)],
                                    ds.train.labels[:cfg.batch_size * (steps + 1)]), ds, side)
        bs = cfg.batch_size
        t0 = 0.0
        for i in range(steps + 1):
            if i == 1:
                t0 = time.perf_counter()  # the first step warms up
            loss = F.cross_entropy(model(xs[i * bs:(i + 1) * bs]), ys[i * bs:(i + 1) * bs])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return steps * bs / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)


def train_case(model: str, epochs: int, train_images: int, rounds: int, tmp: Path,
               threads: int, default_steps: int) -> dict[str, Any]:
    recipe, data, overrides = CASES[model]
    ds = dataset(model, data, train_images)
    side = input_hw(model)
    cfg = replace(load_recipe(recipe), {
        "model": model, "data": ds.name, "epochs": epochs, "max_steps": None,
        "device": "cpu", "plots": False, "tensorboard": False, "save_minutes": 0,
        **overrides}, "benchmark")
    runs: dict[str, list[dict[str, Any]]] = {"convzoo": [], "plain": [], "dataloader": []}
    order = list(runs)
    load = [load_average()]
    for r in range(rounds):
        # a seed per round (the initial weights, the same for the three ways; each draws its
        # own data order): a few epochs' accuracy varies by a point or so with either
        seeded = dataclasses.replace(cfg, seed=r)
        for kind in order if r % 2 == 0 else order[::-1]:
            if kind == "convzoo":
                runs[kind].append(run_convzoo(seeded, ds, tmp / f"{model}-{r}"))
            else:
                runs[kind].append(run_peer(kind, seeded, ds, side))
            print(f"  {model} round {r + 1} {kind}: "
                  f"{runs[kind][-1]['images_per_s']:,.0f} img/s, "
                  f"top-1 {runs[kind][-1]['test_top1']:.4f}", flush=True)
        load.append(load_average())
    out: dict[str, Any] = {
        "data": ds.name, "train_images": len(ds.train), "test_images": len(ds.test),
        "epochs": epochs, "batch_size": cfg.batch_size, "optimizer": cfg.optimizer,
        "lr": cfg.lr, "schedule": cfg.schedule, "rounds": rounds, "load_average": load}
    for kind, rs in runs.items():
        out[kind] = {k: median([r[k] for r in rs]) for k in
                     ("images_per_s", "epoch_s", "train_s", "wall_s", "cpu_s", "test_top1")}
        each = [r["test_top1"] for r in rs]
        out[kind].update({"test_top1_each": each, "test_top1_mean": statistics.fmean(each),
                          "test_top1_spread": max(each) - min(each)})
    out["convzoo"].update({k: runs["convzoo"][0][k] for k in ("amp", "cpu_kernels")})
    cz = out["convzoo"]
    for peer in ("plain", "dataloader"):
        p = out[peer]
        out[f"vs_{peer}"] = {
            "images_per_s": cz["images_per_s"] / p["images_per_s"],
            "cpu_time": p["cpu_s"] / cz["cpu_s"],
            "test_top1_difference": cz["test_top1_mean"] - p["test_top1_mean"]}
    if default_steps:
        ips = plain_default_threads(cfg, ds, side, default_steps, threads)
        out["plain_default_threads"] = {"threads": os.cpu_count(), "steps": default_steps,
                                        "images_per_s": ips,
                                        "convzoo_ratio": cz["images_per_s"] / ips}
    return out


# ---- inference, peak, start-up -------------------------------------------------------------

def inference(model_name: str, batch: int, iters: int, rounds: int) -> dict[str, Any]:
    """convzoo's CPU scoring path (`prepare_cpu_inference`: channels_last, its faster layers,
    bf16 where that pays, inference_mode) against the plain model under no_grad."""
    torch.manual_seed(0)
    plain = create_model(model_name).eval()
    size = plain.default_input_size
    fast = create_model(model_name)
    fast.load_state_dict(plain.state_dict())
    dtype, how = prepare_cpu_inference(fast, size)
    x = torch.randn(batch, *size)
    ways = {
        "convzoo": (fast, x.contiguous(memory_format=torch.channels_last), torch.inference_mode,
                    dtype),
        "plain": (plain, x, torch.no_grad, None),
    }
    best: dict[str, list[float]] = {k: [] for k in ways}
    logits = {}
    for r in range(rounds):
        for kind in ways if r % 2 == 0 else list(ways)[::-1]:
            m, xi, mode, amp = ways[kind]
            with mode(), autocast(torch.device("cpu"), amp):
                logits[kind] = m(xi).float()
                t = time.perf_counter()
                for _ in range(iters):
                    m(xi)
                best[kind].append(batch * iters / (time.perf_counter() - t))
    out = {"batch": batch, "input": list(size), "convzoo_path": how,
           **{k: {"images_per_s": median(v)} for k, v in best.items()}}
    out["ratio"] = out["convzoo"]["images_per_s"] / out["plain"]["images_per_s"]
    # the same answers: the top class of each image, and the largest logit difference
    out["same_top1_fraction"] = float((logits["convzoo"].argmax(1) == logits["plain"].argmax(1))
                                      .float().mean())
    out["max_logit_difference"] = float((logits["convzoo"] - logits["plain"]).abs().max())
    return out


def model_macs(name: str) -> int:
    from convzoo.analysis.catalog_cache import rows_for

    return rows_for([name])[0].macs


def cli_times(names: list[str], repeats: int, threads: int) -> dict[str, Any]:
    env = {**os.environ, "CONVZOO_THREADS": str(threads)}
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            t = time.perf_counter()
            subprocess.run([sys.executable, *CLI[k]], check=True, stdout=subprocess.DEVNULL,
                           env=env)
            times[k].append(time.perf_counter() - t)
    base = median(times["import torch"])
    return {k: {"wall_s": median(v), "each_s": v, "vs_import_torch": median(v) / base}
            for k, v in times.items()}


# ---- the run -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="seconds: tiny data, one of each")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, help="the JSON file (default results/cpu_speed.json)")
    p.add_argument("--no-startup", action="store_true", help="skip the CLI start-up timings")
    a = p.parse_args(argv)
    choice = choose_threads()
    # kept: every convzoo run (which reads CONVZOO_THREADS) and every peer use this count
    os.environ["CONVZOO_THREADS"] = str(choice.threads)
    torch.set_num_threads(choice.threads)
    result: dict[str, Any] = {"benchmark": "cpu_speed", **environment(torch.device("cpu")),
                              "smoke": a.smoke, "threads": str(choice),
                              "load_average_start": load_average()}
    smoke = a.smoke
    # (epochs, training images) per case; the smoke run takes generated data
    plan = {"lenet5": (1, 256 if smoke else 20_000),
            "lenet5_modern": (1 if smoke else 2, 256 if smoke else 20_000),
            "resnet20": (1 if smoke else 3, 128 if smoke else 5_000)}
    if smoke:
        for k in CASES:
            recipe, _, over = CASES[k]
            CASES[k] = (recipe, "fake:{n}:10".replace("{n}", "3x32x32:{n}" if k == "resnet20"
                                                      else "1x28x28:{n}"), over)
    rounds = 1 if smoke else a.rounds
    result["training"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model, (epochs, n) in plan.items():
            print(f"training {model}: {epochs} epochs of {n} images, {rounds} rounds",
                  flush=True)
            result["training"][model] = train_case(model, epochs, n, rounds, Path(tmp),
                                                   choice.threads, 2 if smoke else 10)
    n_mm = 256 if smoke else 2048
    peaks = {"float32": matmul_peak(n_mm, 3 if smoke else 10),
             "bfloat16": matmul_peak(n_mm, 3 if smoke else 10, torch.bfloat16)}
    macs = model_macs("resnet20")
    r20_run = result["training"]["resnet20"]["convzoo"]
    sustained = 6 * macs * r20_run["images_per_s"] / 1e9  # forward, input and weight grads
    ran = "bfloat16" if r20_run.get("amp") == "bfloat16" else "float32"
    result["gflops"] = {
        "matmul_peak_gflop_s": peaks[ran], "matmul_peaks_gflop_s": peaks, "matmul_n": n_mm,
        "threads": choice.threads, "resnet20_precision": ran,
        "resnet20_train_gflop_s": sustained, "resnet20_macs_per_image": macs,
        "fraction_of_peak": sustained / peaks[ran],
        "fraction_of_fp32_peak": sustained / peaks["float32"],
        "rule": "training FLOPs per image = 6 x forward MACs (forward, input gradient, weight "
                "gradient); resnet20's MACs are its convolutions' but for 640 of the head; "
                "the peak is a matmul's in the precision resnet20 trained in"}
    result["inference"] = {
        "resnet18_224": inference("resnet18", 2 if smoke else 16, 1 if smoke else 5,
                                  1 if smoke else 3),
        "lenet5": inference("lenet5", 256, 2 if smoke else 40, 1 if smoke else 3),
        "lenet5_modern": inference("lenet5_modern", 256, 2 if smoke else 40, 1 if smoke else 3)}
    names = ["import torch", "convzoo calc conv"] if smoke else list(CLI)
    result["startup"] = {} if a.no_startup else cli_times(names, 1 if smoke else 3,
                                                          choice.threads)
    result["load_average_end"] = load_average()
    for model, r in result["training"].items():
        print(f"{model}: convzoo {r['convzoo']['images_per_s']:,.0f} img/s, "
              f"{r['vs_plain']['images_per_s']:.2f}x plain, "
              f"{r['vs_dataloader']['images_per_s']:.2f}x dataloader; mean top-1 over "
              f"{len(r['convzoo']['test_top1_each'])} seeds " + " / ".join(
                  f"{r[k]['test_top1_mean']:.4f} (spread {r[k]['test_top1_spread']:.4f})"
                  for k in ("convzoo", "plain", "dataloader")))
    g = result["gflops"]
    print(f"resnet20 training {g['resnet20_train_gflop_s']:.1f} GFLOP/s = "
          f"{100 * g['fraction_of_peak']:.0f}% of the {g['matmul_peak_gflop_s']:.1f} GFLOP/s "
          f"{g['resnet20_precision']} matmul peak ({100 * g['fraction_of_fp32_peak']:.0f}% of "
          "fp32's)")
    for k, v in result["inference"].items():
        print(f"inference {k}: convzoo {v['convzoo']['images_per_s']:,.0f} img/s, "
              f"{v['ratio']:.2f}x plain; same top-1 {v['same_top1_fraction']:.3f}")
    for k, v in result["startup"].items():
        print(f"{k}: {v['wall_s']:.2f} s ({v['vs_import_torch']:.2f}x import torch)")
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(__import__("json").dumps(result, indent=2) + "\n")
    elif not smoke:  # a smoke run checks the script; its figures are not worth keeping
        write("cpu_speed", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
