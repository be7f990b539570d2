"""CPU: images per second of photo loaders, convzoo's against the typical torchvision pipeline,
measured in one run, interleaved (each round times every pipeline once; the best round counts),
so load from other work hits all of them alike.

    python benchmarks/imagefolder_speed.py                 # -> results/imagefolder_speed.json
    python benchmarks/imagefolder_speed.py --images 96 --large 16 --rounds 2   # shorter
    python benchmarks/imagefolder_speed.py --only packed_raw --scope per_core --sets imagenet \
        --out imagefolder_speed_raw_resize     # one path beside torchvision, one core

Data, generated: "imagenet" holds JPEGs (quality 90) with the shorter side drawn from
300..500 px (ImageNet's typical photos), "large" holds ~2000 px photos; their content is
scikit-image's photos, rescaled and cropped, 8 classes. Pipelines, each at batch 64:
- torchvision: ImageFolder + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor +
  Normalize in a DataLoader (evaluation: Resize(256) + CenterCrop(224) + ToTensor + Normalize);
- convzoo folder: `imagefolder:` through make_loader (augment "imagenet");
- convzoo packed JPEG / packed raw: the same set packed by `convzoo pack --max-side 256`.
convzoo's batches are timed twice: normalised float on the CPU (what torchvision's give) and as
uint8 (what a GPU run gets from the CPU: normalisation then happens on the GPU; laid out
channel-last, as a GPU run computes).
"Per core": one torch thread and no worker process. "All cores": a worker process per core
for both (a training run would give convzoo's loader the free cores less one, keeping one for
the model).
Where a goal is missed, the loader doctor's per-stage rates say where the time goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)  # torchvision.io's notice
warnings.filterwarnings("ignore", message="The given buffer is not writable")

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GOALS = {"folder": 2.0, "packed_jpeg": 5.0, "packed_raw": 10.0}  # x torchvision, per core
FFCV_PER_CORE = {"packed_jpeg": 326, "packed_raw": 1800}  # published, images/s per vCPU


def make_photos(root: Path, n: int, shorter: tuple[int, int], seed: int) -> None:
    """n JPEG photos in 8 class folders, cut from scikit-image's photos at random scales."""
    import skimage.data as d
    from PIL import Image

    names = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
             "immunohistochemistry", "retina", "motorcycle_left"]
    photos = []
    for name in names:
        try:
            a = getattr(d, name)()
        except Exception:  # noqa: BLE001 - some are fetched from a network
            a = d.astronaut()[::-1]
        photos.append(Image.fromarray(a[..., :3] if a.ndim == 3 else a).convert("RGB"))
    rng = np.random.default_rng(seed)
    for i in range(n):
        k = i % len(names)
        im = photos[k]
        s = int(rng.integers(*shorter))
        aspect = float(rng.uniform(1.0, 1.5))
        w, h = (round(s * aspect), s) if rng.random() < 0.7 else (s, round(s * aspect))
        # a random part of the photo, stretched to (w, h): content at a photo's entropy
        fx, fy = rng.uniform(0.5, 1.0, 2)
        x0 = rng.uniform(0, 1 - fx) * im.width
        y0 = rng.uniform(0, 1 - fy) * im.height
        box = (x0, y0, x0 + fx * im.width, y0 + fy * im.height)
        out = im.resize((w, h), Image.Resampling.BICUBIC, box=box)
        noise = rng.normal(0, 6, (h, w, 3))  # sensor noise: real photos are not smooth
        a = np.clip(np.asarray(out, np.float32) + noise, 0, 255).astype(np.uint8)
        folder = root / f"class{k}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(folder / f"{i:05d}.jpg", quality=90)


def torchvision_loader(root: Path, train: bool, workers: int):
    from torchvision import datasets
    from torchvision import transforms as T

    steps = ([T.RandomResizedCrop(224), T.RandomHorizontalFlip()] if train
             else [T.Resize(256), T.CenterCrop(224)])
    ds = datasets.ImageFolder(str(root), T.Compose([*steps, T.ToTensor(), T.Normalize(MEAN, STD)]))
    return torch.utils.data.DataLoader(ds, batch_size=64, shuffle=train, num_workers=workers,
                                       persistent_workers=False)


def convzoo_batches(name: str, train: bool, workers: int, uint8: bool):
    """A function giving one epoch of convzoo's batches: normalised float, or the uint8
    batches that the loader's workers hand over (what a GPU would receive)."""
    from convzoo.data import load_dataset, make_loader

    ds = load_dataset(name)
    split = ds.train

    def epoch(e: int = 0):
        b = make_loader(split, batch_size=64, train=train, device="cpu",
                        input_size=(3, 224, 224), mean=ds.mean, std=ds.std,
                        augment="imagenet" if train else None, seed=0, epoch=e,
                        workers=workers, drop_last=False, channels_last=uint8)
        if uint8:
            return ((x,) for x, _, _ in b.loader)
        return iter(b)
    return epoch, len(split)


def time_pass(make_iter) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    for x, *_ in make_iter():
        n += len(x)
    return time.perf_counter() - t, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=256, help="ImageNet-sized photos")
    p.add_argument("--large", type=int, default=32, help="~2000 px photos")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="imagefolder_speed")
    p.add_argument("--keep", default=None, help="make the data here and keep it")
    p.add_argument("--only", default="folder,packed_jpeg,packed_raw",
                   help="convzoo's pipelines to time beside torchvision's (comma-separated)")
    p.add_argument("--scope", choices=("per_core", "all_cores", "both"), default="both")
    p.add_argument("--sets", default="imagenet,large", help="photo sets (comma-separated)")
    a = p.parse_args()
    only, set_names = a.only.split(","), a.sets.split(",")
    from convzoo.data.doctor import diagnose
    from convzoo.data.pack import write_pack

    cores = len(os.sched_getaffinity(0))
    base = Path(a.keep or tempfile.mkdtemp(prefix="czspeed"))
    sets = {"imagenet": (a.images, (300, 501)), "large": (a.large, (1800, 2201))}
    sets = {k: v for k, v in sets.items() if k in set_names}
    result = {**environment(torch.device("cpu")), "cores": cores, "batch_size": 64,
              "goals_x_torchvision_per_core": GOALS, "ffcv_per_core": FFCV_PER_CORE,
              "load_average_at_start": round(os.getloadavg()[0], 2), "sets": {}}
    for set_name, (n, shorter) in sets.items():
        root = base / set_name / "photos"
        if not root.is_dir():
            make_photos(root, n, shorter, seed=len(set_name))
        packs = {}
        for kind, quality in (("packed_jpeg", 90), ("packed_raw", None)):
            f = base / set_name / f"{kind}.pack"
            if not f.exists():
                r = write_pack(str(root), f, max_side=256, quality=quality, progress=False)
                print(f"{set_name}: packed {r.images} images into {f.name}, "
                      f"{r.bytes / 1e6:.1f} MB, {r.images / r.seconds:.0f} img/s", flush=True)
            packs[kind] = f
        # every image is in the training split here: the loaders read the same images
        entry: dict = {"images": n, "shorter_side": list(shorter), "runs": {}}
        sources = {"folder": f"imagefolder:{root}",
                   "packed_jpeg": f"packed:{packs['packed_jpeg']}",
                   "packed_raw": f"packed:{packs['packed_raw']}"}
        # all cores: both loaders get a worker per core. A training run keeps one core for
        # the model and gives its loader the rest (choose_workers); with no model to feed here
        # that would leave a core idle, and the figure would measure the policy, not the loader
        conv_workers = cores
        scopes = [sc for sc in (("per_core", 1, 0, 0), ("all_cores", cores, cores, conv_workers))
                  if a.scope in (sc[0], "both")]
        for scope, threads, tv_w, cz_w in scopes:
            torch.set_num_threads(threads)
            for train in (True, False):
                mode = "train" if train else "eval"
                pipes = {"torchvision": lambda tr=train, w=tv_w, r=root: iter(
                    torchvision_loader(r.parent / "tv", tr, w))}
                # torchvision's ImageFolder needs the split's images only: a link farm of them
                tv_root = root.parent / "tv"
                if not tv_root.exists():
                    from convzoo.data import load_dataset

                    for path, label in load_dataset(sources["folder"]).train.samples:
                        dst = tv_root / f"c{label}" / Path(path).name
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        os.symlink(path, dst)
                for key, src in sources.items():
                    if key not in only:
                        continue
                    for uint8 in (False, True):
                        epoch, _ = convzoo_batches(src, train, cz_w, uint8)
                        pipes[f"{key}{'_uint8' if uint8 else ''}"] = epoch
                best: dict[str, float] = {}
                for r in range(a.rounds):
                    for name, fn in pipes.items():
                        secs, m = time_pass(fn)
                        best[name] = max(best.get(name, 0.0), m / secs)
                        print(f"{set_name} {scope} {mode} round {r}: {name} {m / secs:.0f} img/s",
                              flush=True)
                tv = best["torchvision"]
                result["load_average_at_end"] = round(os.getloadavg()[0], 2)
                entry["runs"][f"{scope}_{mode}"] = {
                    "threads": threads, "workers": {"torchvision": tv_w, "convzoo": cz_w},
                    "img_s": {k: round(v, 1) for k, v in best.items()},
                    "x_torchvision": {k: round(v / tv, 2) for k, v in best.items()
                                      if k != "torchvision"}}
        torch.set_num_threads(1)
        if "per_core_train" not in entry["runs"]:
            result["sets"][set_name] = entry
            write(a.out, result)
            continue
        ratios = entry["runs"]["per_core_train"]["x_torchvision"]
        rates = entry["runs"]["per_core_train"]["img_s"]
        missed = [k for k, g in GOALS.items() if k in ratios and (ratios[k] < g or
                  rates[k] < FFCV_PER_CORE.get(k, 0))]
        entry["goals_missed_per_core_train"] = missed
        entry["profiles"] = {}
        for k in missed:
            rep = diagnose(sources[k], workers=0, images=64, batch_size=32, min_s=0.5)
            entry["profiles"][k] = {"stages_img_s_per_core": {s: round(v, 1) for s, v in
                                                              rep.stages.items()},
                                    "advice": rep.advice}
        result["sets"][set_name] = entry
        write(a.out, result)


if __name__ == "__main__":
    main()
