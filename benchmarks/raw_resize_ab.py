"""CPU, one thread: ways to bring a raw pack's records to training batches (random-resized crop
to 224, uint8), timed against the way the loader does it, interleaved in one run.

    python benchmarks/raw_resize_ab.py --pack PACK.pack     # -> results/raw_resize_ab.json

PACK: a raw pack (`convzoo pack imagefolder:PATH --out PACK --raw`, max side 256), e.g. the
one `benchmarks/imagefolder_speed.py --keep DIR` leaves in DIR/imagenet/packed_raw.pack.
Every way takes the same records and the same seeded boxes (the loader's: sample_box from
generator("box", 0, 0, i)) and gives a 64 x 3 x 224 x 224 uint8 batch; only the crop, resize
and batching differ. The first way is the loader as it was before this comparison (kept here
so the comparison can be run again), "loader now" is decode.raw_sized and the collate as they
are. Each round times every way once on every image (in batches of 64); the
table gives the best and the median round, by the wall clock and by the process's CPU time
(which a busy shared CPU disturbs less: time spent waiting for the core is not counted), with
the load average read before each round, and how far each way's pixels are from the first
way's (the loader before).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write  # noqa: E402

warnings.filterwarnings("ignore", message="The given buffer is not writable")
SIZE = (224, 224)


def _crop_tensor(rec: np.ndarray, box) -> torch.Tensor:
    top, left, bh, bw = box
    return torch.from_numpy(np.array(rec[top:top + bh, left:left + bw])).permute(2, 0, 1)


def before_way(recs, boxes):
    """The loader before this comparison: the crop copied out, `x[None]` of its C x H x W view
    resized (a batch stride of 3, which torch does not take for channels-last: its planar
    kernel runs and the result is planar), then stacked."""
    got = []
    for r, b in zip(recs, boxes, strict=True):
        x = _crop_tensor(r, b)[None].contiguous(memory_format=torch.channels_last)
        shrink = b[2] > SIZE[0] or b[3] > SIZE[1]
        got.append(F.interpolate(x, size=SIZE, mode="bilinear", align_corners=False,
                                 antialias=shrink)[0])
    return torch.stack(got)


def after_way(channels_last_batch: bool):
    """The crop as a proper channels-last 1 x C x H x W view (H x W x C memory with its
    batch dimension added there), so torch's channels-last uint8 kernel runs; the batch
    stacked as planes, or as N x H x W x C memory (a channels-last batch, no transposition)."""
    def run(recs, boxes):
        got = []
        for r, b in zip(recs, boxes, strict=True):
            top, left, bh, bw = b
            hwc = torch.from_numpy(np.array(r[top:top + bh, left:left + bw]))
            x = hwc[None].permute(0, 3, 1, 2)
            shrink = bh > SIZE[0] or bw > SIZE[1]
            got.append(F.interpolate(x, size=SIZE, mode="bilinear", align_corners=False,
                                     antialias=shrink)[0])
        if channels_last_batch:
            return torch.stack([g.permute(1, 2, 0) for g in got]).permute(0, 3, 1, 2)
        return torch.stack(got)
    return run


def loader_way(recs, boxes):
    """What the loader does now for a run that computes channel-last (a GPU run):
    decode.raw_sized per image, then its collate."""
    from convzoo.data.decode import raw_sized
    from convzoo.data.folder_batches import collate

    return collate([(raw_sized(r, 3, SIZE, lambda h, w, b=b: b, 1.0), 0, None, None)
                    for r, b in zip(recs, boxes, strict=True)], channels_last=True)[0]


def interpolate_way(antialias: bool, into_batch: bool):
    def run(recs, boxes):
        if into_batch:  # each image resized, then copied into a channels-last batch
            out = torch.empty(len(recs), 3, *SIZE, dtype=torch.uint8,
                              memory_format=torch.channels_last)
        got = []
        for i, (r, b) in enumerate(zip(recs, boxes, strict=True)):
            x = _crop_tensor(r, b)[None]  # channels-last already: H x W x C in memory
            y = F.interpolate(x, size=SIZE, mode="bilinear", align_corners=False,
                              antialias=antialias and (b[2] > SIZE[0] or b[3] > SIZE[1]))
            if into_batch:
                out[i].copy_(y[0])
            else:
                got.append(y[0])
        return out if into_batch else torch.stack(got)
    return run


def tv2_way(antialias: bool):
    from torchvision.transforms.v2 import functional as TF

    def run(recs, boxes):
        return torch.stack([TF.resize(_crop_tensor(r, b), list(SIZE), antialias=antialias)
                            for r, b in zip(recs, boxes, strict=True)])
    return run


def pil_way(reducing_gap: float | None, contiguous: bool):
    from PIL import Image

    def run(recs, boxes):
        out = np.empty((len(recs), *SIZE, 3), np.uint8)
        for i, (r, b) in enumerate(zip(recs, boxes, strict=True)):
            top, left, bh, bw = b
            im = Image.frombuffer("RGB", (r.shape[1], r.shape[0]), r, "raw", "RGB", 0, 1)
            res = im.resize(SIZE[::-1], Image.Resampling.BILINEAR,
                            box=(left, top, left + bw, top + bh), reducing_gap=reducing_gap)
            out[i] = np.asarray(res)
        t = torch.from_numpy(out).permute(0, 3, 1, 2)  # N x C x H x W, channels-last
        return t.contiguous() if contiguous else t
    return run


BASE = "before: x[None] (planar kernel), stack"
WAYS = {
    BASE: before_way,
    "after: channels-last view, stack as planes": after_way(False),
    "after: channels-last view, channels-last batch": after_way(True),
    "loader now (raw_sized + collate)": loader_way,
    "interpolate AA, stack": interpolate_way(True, False),
    "interpolate AA, into channels-last batch": interpolate_way(True, True),
    "interpolate no AA, stack": interpolate_way(False, False),
    "tv2 resize AA, stack": tv2_way(True),
    "tv2 resize no AA, stack": tv2_way(False),
    "PIL frombuffer + resize(box), NCHW": pil_way(None, True),
    "PIL frombuffer + resize(box), channels-last": pil_way(None, False),
    "PIL resize(box, reducing_gap=2), channels-last": pil_way(2.0, False),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pack", required=True)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default="raw_resize_ab")
    a = p.parse_args()
    from convzoo.data.augment import sample_box
    from convzoo.data.pack import Pack
    from convzoo.data.seeding import generator

    torch.set_num_threads(1)
    pack = Pack(a.pack)
    if not pack.raw:
        raise SystemExit(f"{a.pack} is not a raw pack (pack it with --raw)")
    n = min(a.images, len(pack))
    recs = [pack.record(i) for i in range(n)]  # checked once here, as a loader's first epoch
    boxes = [sample_box(r.shape[0], r.shape[1], (0.08, 1.0), (3 / 4, 4 / 3),
                        generator("box", 0, 0, i)) for i, r in enumerate(recs)]
    batches = [(recs[s:s + 64], boxes[s:s + 64]) for s in range(0, n, 64)]
    ref = torch.cat([before_way(*b) for b in batches])
    diff = {}
    for name, way in WAYS.items():
        got = torch.cat([way(*b) for b in batches])
        d = (got.int() - ref.int()).abs()
        diff[name] = {"mean_abs": round(float(d.float().mean()), 4), "max_abs": int(d.max()),
                      "equal": bool(torch.equal(got, ref))}
    rates: dict[str, list[float]] = {k: [] for k in WAYS}
    cpu: dict[str, list[float]] = {k: [] for k in WAYS}
    loads = []
    for r in range(a.rounds):
        loads.append(round(os.getloadavg()[0], 2))
        for name, way in WAYS.items():
            t, c = time.perf_counter(), time.process_time()
            for b in batches:
                way(*b)
            rates[name].append(n / (time.perf_counter() - t))
            cpu[name].append(n / (time.process_time() - c))
        print(f"round {r} (load {loads[-1]}): " + ", ".join(
            f"{k} {v[-1]:.0f}" for k, v in rates.items()), flush=True)
    base = statistics.median(rates[BASE])
    base_cpu = statistics.median(cpu[BASE])
    table = {k: {"best_img_s": round(max(v), 1), "median_img_s": round(statistics.median(v), 1),
                 "median_x_before": round(statistics.median(v) / base, 3),
                 "cpu_time_median_img_s": round(statistics.median(cpu[k]), 1),
                 "cpu_time_median_x_before": round(statistics.median(cpu[k]) / base_cpu, 3),
                 **diff[k]}
             for k, v in rates.items()}
    for k, v in table.items():
        print(f"{k:50s} wall best {v['best_img_s']:7.1f} median {v['median_img_s']:7.1f} "
              f"x{v['median_x_before']:.3f} | cpu median {v['cpu_time_median_img_s']:7.1f} "
              f"x{v['cpu_time_median_x_before']:.3f} | pixels vs before: mean |d| "
              f"{v['mean_abs']}, max {v['max_abs']}")
    write(a.out, {**environment(torch.device("cpu")), "threads": 1, "images": n,
                  "batch_size": 64, "rounds": a.rounds, "load_average_per_round": loads,
                  "pack": {"path": str(a.pack), "max_side": pack.header["max_side"]},
                  "ways": table})


if __name__ == "__main__":
    main()
