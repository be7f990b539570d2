"""Every GPU figure convzoo claims, in one command sized for one device session of about 8
minutes; `--smoke` runs every part in seconds on the CPU (the test suite does).

    python benchmarks/gpu_suite.py            # on a GPU -> results/gpu_suite.json
    python benchmarks/gpu_suite.py --smoke    # CPU, tiny sizes -> results/gpu_suite_smoke.json
    python benchmarks/gpu_suite.py --only resnet50 packed_loader

Parts (each in its own process, with its own time limit, so one failure leaves the others'
figures):
- fashion_mnist: time to 94% against the typical pipeline (benchmarks/gpu_fashion_mnist.py);
- cifar_epoch: resnet20 CIFAR-shaped epoch at batch 128 and 512 against a DataLoader
  pipeline (benchmarks/gpu_cifar_epoch.py);
- resnet50: training and inference images/s and MFU, convzoo's resnet50 against torchvision's,
  eager and compiled (bf16 autocast, channels_last, SGD with momentum, synthetic 224x224);
- packed_loader: a generated photo set packed as JPEG, its loader feeding resnet50 with uint8
  batches normalised on the GPU (loader alone and loader + training, images/s);
- torchrun: a two-process NCCL all-reduce through torchrun (gloo on the CPU).
Written for torch 2.11 / torchvision 0.26 and later: nothing newer than those is used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import environment, sync, write  # noqa: E402

PARTS = ("fashion_mnist", "cifar_epoch", "resnet50", "packed_loader", "torchrun")
#: Dense bf16 tensor-core peaks (FLOP/s) for MFU, from the vendors' data sheets.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}
RESNET50_MACS = 4.09e9  # torchvision's v1.5 at 224x224 (reference/numbers.md)


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


# ---------------------------------------------------------------- parts run in this process


def _time_model(m: torch.nn.Module, compiled: bool, bs: int, size: int, steps: int,
                warm: int, device: torch.device, peak: float | None) -> dict:
    """Training and inference images/s (and MFU where the GPU's peak is known)."""
    bf16 = device.type == "cuda"
    if bf16:
        m = m.to(memory_format=torch.channels_last)
    net = torch.compile(m) if compiled else m
    x = torch.randn(bs, 3, size, size, device=device)
    if bf16:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (bs,), device=device)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    def train_step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer_step() -> None:
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            net(x)

    row = {}
    for kind, fn, flops in (("train", train_step, 6 * RESNET50_MACS),
                            ("inference", infer_step, 2 * RESNET50_MACS)):
        m.train(kind == "train")
        for _ in range(warm):  # kernels chosen, compile done
            fn()
        sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        sync(device)
        img_s = bs * steps / (time.perf_counter() - t)
        row[f"{kind}_img_s"] = round(img_s, 1)
        flops_img = flops * (size / 224) ** 2
        row[f"{kind}_mfu"] = round(img_s * flops_img / peak, 3) if peak else None
    return row


def part_resnet50(smoke: bool, device: torch.device) -> dict:
    import torchvision

    from convzoo import create_model

    bs, size, steps = (4, 64, 2) if smoke else (256, 224, 30)
    out: dict = {"batch_size": bs, "input": size, "steps": steps,
                 "flops": "MFU counts 3 x 2 x 4.09 GMACs per training image, 2 x 4.09 G per "
                          "inference image (scaled by the input's area)"}
    peak = peak_flops(device)
    for name, build in (("convzoo", lambda: create_model("resnet50", num_classes=1000)),
                        ("torchvision", lambda: torchvision.models.resnet50())):
        for compiled in ((False,) if smoke else (False, True)):
            torch.manual_seed(0)
            out[f"{name}{'_compiled' if compiled else ''}"] = _time_model(
                build().to(device), compiled, bs, size, steps, 1 if smoke else 5, device, peak)
    out["convzoo_over_torchvision_train"] = round(
        out["convzoo"]["train_img_s"] / out["torchvision"]["train_img_s"], 2)
    return out


def part_packed_loader(smoke: bool, device: torch.device) -> dict:
    sys.path.insert(0, str(HERE))
    from convzoo import create_model
    from convzoo.data import load_dataset, make_loader
    from convzoo.data.pack import write_pack
    from convzoo.data.workers import choose_workers
    from imagefolder_speed import make_photos

    n, size, bs = (16, 64, 8) if smoke else (2048, 224, 256)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        make_photos(root, n, (300, 501), seed=0)
        r = write_pack(str(root), Path(tmp) / "p.pack", max_side=256, progress=False)
        ds = load_dataset(f"packed:{r.path}")
        workers = choose_workers(os.cpu_count() or 1)[0]
        bf16 = device.type == "cuda"
        m = create_model("resnet50", num_classes=ds.num_classes).to(device)
        if bf16:
            m = m.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

        def epoch(e: int, train_model: bool) -> float:
            b = make_loader(ds.train, batch_size=bs, train=True, device=device,
                            input_size=(3, size, size), mean=ds.mean, std=ds.std,
                            augment="imagenet", seed=0, epoch=e, workers=workers,
                            channels_last=bf16)
            sync(device)
            t, k = time.perf_counter(), 0
            for x, y in b:  # uint8 from the workers; flip and normalisation on the device
                k += len(y)
                if train_model:
                    with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                        loss = torch.nn.functional.cross_entropy(m(x), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            sync(device)
            return k / (time.perf_counter() - t)

        epoch(0, False)  # page cache and record checksums
        return {"images": r.images, "pack_mb": round(r.bytes / 1e6, 1), "workers": workers,
                "batch_size": bs, "input": size,
                "loader_alone_img_s": round(epoch(1, False), 1),
                "loader_and_resnet50_img_s": round(epoch(2, True), 1)}


TORCHRUN_SCRIPT = textwrap.dedent("""
    import os, torch, torch.distributed as dist
    cuda = torch.cuda.is_available() and os.environ.get("SMOKE") != "1"
    dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    dev = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}" if cuda else "cpu")
    t = torch.ones(1 << 20, device=dev) * (rank + 1)
    dist.all_reduce(t)
    w = dist.get_world_size()
    assert float(t[0]) == w * (w + 1) / 2, float(t[0])
    if rank == 0:
        print("all_reduce ok", dist.get_backend(), w)
    dist.destroy_process_group()
""")


def part_torchrun(smoke: bool, device: torch.device) -> dict:
    n = 2 if smoke or device.type != "cuda" else min(2, torch.cuda.device_count())
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "allreduce.py"
        script.write_text(TORCHRUN_SCRIPT)
        env = {**os.environ, "SMOKE": "1" if smoke else "0", "OMP_NUM_THREADS": "1"}
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            f"--nproc_per_node={n}", str(script)], capture_output=True,
                           text=True, env=env, timeout=120)
    ok = p.returncode == 0 and "all_reduce ok" in p.stdout
    return {"processes": n, "ok": ok, "seconds": round(time.perf_counter() - t, 1),
            "output": (p.stdout + p.stderr)[-600:] if not ok else p.stdout.strip()}


def part_script(name: str, smoke: bool, results: Path) -> dict:
    """One of the existing GPU benchmarks, run as its own command; its JSON is kept."""
    script = {"fashion_mnist": "gpu_fashion_mnist.py", "cifar_epoch": "gpu_cifar_epoch.py"}[name]
    args = [sys.executable, str(HERE / script)]
    if smoke:  # no loader processes: starting them is most of a smoke run's time
        args += ["--smoke", "--workers", "0"]
    elif name == "cifar_epoch":
        args += ["--epochs", "1"]  # fits the session: one timed epoch per batch size
    env = {**os.environ, "CONVZOO_BENCH_RESULTS": str(results)}
    if smoke:
        env["OMP_NUM_THREADS"] = "1"
    p = subprocess.run(args, capture_output=True, text=True, env=env,
                       timeout=120 if smoke else 300)
    if p.returncode != 0:
        raise RuntimeError((p.stdout + p.stderr)[-800:])
    stem = Path(script).stem + ("_smoke" if smoke else "")
    return json.loads((results / f"{stem}.json").read_text())


def run_part(name: str, smoke: bool, device: torch.device, results: Path) -> dict:
    t = time.perf_counter()
    try:
        if name in ("fashion_mnist", "cifar_epoch"):
            got = part_script(name, smoke, results)
        else:
            got = globals()[f"part_{name}"](smoke, device)
        status = "ok" if got.get("ok", True) else "failed"
    except Exception as e:  # noqa: BLE001 - one part's failure is reported, the rest run
        got, status = {"error": f"{type(e).__name__}: {e}"[-800:]}, "failed"
    return {"status": status, "seconds": round(time.perf_counter() - t, 1), **got}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="every part in seconds on the CPU")
    p.add_argument("--only", nargs="+", choices=PARTS, help="run these parts only")
    a = p.parse_args()
    device = torch.device("cpu" if a.smoke or not torch.cuda.is_available() else "cuda")
    if device.type != "cuda" and not a.smoke:
        print("no GPU: run with --smoke for a CPU check", file=sys.stderr)
        return 2
    if a.smoke:
        torch.set_num_threads(1)
    result = {"benchmark": "gpu_suite", **environment(device), "smoke": a.smoke, "parts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only or PARTS:
            r = run_part(name, a.smoke, device, Path(tmp))
            result["parts"][name] = r
            print(f"{name}: {r['status']} ({r['seconds']} s)", flush=True)
    write("gpu_suite_smoke" if a.smoke else "gpu_suite", result)
    return 0 if all(r["status"] == "ok" for r in result["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
