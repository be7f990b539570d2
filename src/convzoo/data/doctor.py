"""The loader doctor (`convzoo data bench SOURCE`): where an image pipeline's time goes on this
machine, and what would make training faster.

Each stage is timed alone, in this process, on one thread, over the same sample of images:
read (the file's or record's bytes), decode (to uint8 pixels), crop and resize (training's
random-resized crop to the input size), collate (a batch stacked), to device (the batch's
flip and normalisation where training runs). Then the whole loader, at 0 worker processes (one
core) and at N; with a model, its training steps per second on random batches on the device.
The slowest of the whole loader at N and the model sets the pace of training.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .images import read_image, shown


@dataclass
class Report:
    source: str
    images: int
    input_size: tuple[int, int, int]
    stages: dict[str, float] = field(default_factory=dict)  # images/s on one core
    loader: dict[int, float] = field(default_factory=dict)  # workers -> images/s
    model: float | None = None
    model_name: str | None = None
    device: str = "cpu"
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "images": self.images, "input_size": self.input_size,
                "stages_img_s_per_core": self.stages,
                "loader_img_s": {str(k): v for k, v in self.loader.items()},
                "model": self.model_name, "model_train_img_s": self.model, "device": self.device,
                "advice": self.advice}

    def lines(self) -> list[str]:
        size = "x".join(map(str, self.input_size))
        out = [f"{self.source}: {self.images} images sampled, input {size}",
               "stage (one core)        images/s"]
        out += [f"  {k:<21} {v:>8,.0f}" for k, v in self.stages.items()]
        for k, v in self.loader.items():
            what = f"loader, {k} worker{'' if k == 1 else 's'}"
            out.append(f"{what:<23} {v:>8,.0f}")
        if self.model is not None:
            out.append(f"{self.model_name + ' training (' + self.device + ')':<23} "
                       f"{self.model:>8,.1f}")
        out += [f"- {a}" for a in self.advice]
        return out


def _rate(fn: Callable[[], Any], n: int, min_s: float = 0.3) -> float:
    """Images per second of `fn`, which handles n images, repeated for at least min_s."""
    fn()  # warm: first-use costs (imports, checksums, page cache) are not the steady rate
    done, t0 = 0, time.perf_counter()
    while True:
        fn()
        done += n
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return done / dt


def diagnose(name: str, *, workers: int | None = None, model: str | None = None,
             device: str = "cpu", images: int = 64, batch_size: int = 32,
             data_dir: str | None = None, min_s: float = 0.3) -> Report:
    """The doctor's measurements of `name` (see the module docstring); each rate is timed for
    at least `min_s` seconds (the whole loader, twice that)."""
    from ..runtime.device import usable_cores
    from .catalog import load_dataset
    from .decode import resize_uint8
    from .folder_batches import stack_images
    from .loader import make_loader
    from .pack import PackRecord, open_pack
    from .seeding import generator

    ds = load_dataset(name, data_dir=data_dir)
    split = ds.train
    if not hasattr(split, "samples"):
        raise_in_memory(name)
    samples = split.samples[:images]
    c, h, w = ds.image_size
    rep = Report(ds.name, len(samples), (c, h, w), device=device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        keys = [k for k, _ in samples if _readable(k, c)]
        if not keys:
            from ..errors import UserInputError

            raise UserInputError(f"none of the {len(samples)} images sampled from {name} "
                                 "could be read")
        rep.images = len(keys)
        packed = isinstance(keys[0], PackRecord)
        pack = open_pack(keys[0].pack) if packed else None

        def read() -> list:
            if pack is not None:
                return [np.array(pack.record(k.index)) for k in keys]
            out = []
            for k in keys:
                with open(k, "rb") as f:
                    out.append(f.read())
            return out

        blobs = read()
        rep.stages["read"] = _rate(read, len(keys), min_s)
        decoded: list[torch.Tensor] = []
        if pack is not None and pack.raw:
            decoded = [torch.from_numpy(b).permute(2, 0, 1) for b in blobs]
        else:
            from .decode import pillow_pixels, torchvision_jpeg

            def decode() -> list[torch.Tensor]:
                got = []
                for k, b in zip(keys, blobs, strict=True):
                    img = torchvision_jpeg(b, c) if bytes(b[:2]) == b"\xff\xd8" else None
                    if img is None and pack is not None:  # a record torchvision cannot decode
                        from PIL import Image

                        img = pillow_pixels(Image.open(io.BytesIO(bytes(b))), c)
                    got.append(img if img is not None else read_image(str(k), channels=c))
                return got

            decoded = decode()
            rep.stages["decode"] = _rate(decode, len(keys), min_s)
        from .augment import sample_box

        boxes = [sample_box(*im.shape[-2:], (0.08, 1.0), (3 / 4, 4 / 3), generator("doctor", i))
                 for i, im in enumerate(decoded)]

        def crop() -> list[torch.Tensor]:
            return [resize_uint8(im[:, t:t + bh, l_:l_ + bw], (h, w))
                    for im, (t, l_, bh, bw) in zip(decoded, boxes, strict=True)]

        sized = crop()
        rep.stages["crop and resize"] = _rate(crop, len(keys), min_s)
        batch = sized[:batch_size]
        dev = torch.device(device)
        cl = dev.type == "cuda"  # a run's default: channel-last on a GPU only
        rep.stages["collate"] = _rate(lambda: stack_images(batch, cl), len(batch), min_s)
        from .batches import Pipeline

        pipe = Pipeline((c, h, w), (c, h, w), ds.mean, ds.std, dev, channels_last=cl)
        xb = stack_images(batch, cl)
        flip = torch.zeros(len(batch), dtype=torch.bool)

        def to_device() -> Any:
            y = pipe(xb.to(dev, non_blocking=True), None, flip.to(dev))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            return y

        rep.stages["to device"] = _rate(to_device, len(batch), min_s)
        from .dataset import FolderSplit

        sub = FolderSplit([(k, y) for k, y in samples if k in set(keys)])
        from .workers import choose_workers

        # as many as asked when they fit the free cores (the loader would cap them anyway)
        n_workers = choose_workers(workers if workers is not None
                                   else max(1, usable_cores() - 1))[0]
        for k in sorted({0, n_workers}):
            def whole(k: int = k) -> None:
                for _ in make_loader(sub, batch_size=batch_size, train=True, device=dev,
                                     input_size=(c, h, w), mean=ds.mean, std=ds.std,
                                     augment="imagenet", seed=0, epoch=0, workers=k):
                    pass
            rep.loader[k] = _rate(whole, len(sub) // batch_size * batch_size or len(sub),
                                  2 * min_s)
    finally:
        torch.set_num_threads(threads)
    if model is not None:
        rep.model_name = model
        rep.model = model_rate(model, (c, h, w), ds.num_classes, device, batch_size,
                               3 * min_s)
    rep.advice = advise(rep, n_workers, packed, pack.raw if pack is not None else False,
                        name, decoded)
    return rep


def _readable(key: Any, channels: int) -> bool:
    from .images import BadImageError
    from .pack import PackRecord

    if isinstance(key, PackRecord):
        return True
    try:
        read_image(key, channels=channels)
    except BadImageError:
        return False
    return True


def raise_in_memory(name: str) -> None:
    from ..errors import UserInputError

    raise UserInputError(f"{name} is held in memory and batched on the device: there is no "
                         "file loader to diagnose (give imagefolder:PATH or packed:FILE)")


def model_rate(name: str, size: tuple[int, int, int], num_classes: int, device: str,
               batch_size: int, min_s: float = 1.0) -> float:
    """Training images per second of the model on random batches (SGD steps)."""
    from .. import create_model

    dev = torch.device(device)
    m = create_model(name, num_classes=num_classes, in_channels=size[0]).to(dev).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch_size, *size, device=dev)
    y = torch.randint(0, num_classes, (batch_size,), device=dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    try:
        return _rate(step, batch_size, min_s)
    except RuntimeError as e:  # a model with a fixed input (LeNet-5's 32x32) at another size
        from ..errors import UserInputError

        raise UserInputError(f"{name} does not train on {'x'.join(map(str, size))} inputs "
                             f"({str(e).splitlines()[0]}); choose a model that does") from None


def advise(rep: Report, n_workers: int, packed: bool, raw: bool, name: str,
           decoded: list[torch.Tensor]) -> list[str]:
    from ..runtime.device import usable_cores

    best = max(rep.loader.values())
    stages = {k: v for k, v in rep.stages.items() if k not in ("to device",)}
    slowest = min(stages, key=stages.get)  # type: ignore[arg-type]
    out = [f"the slowest stage on one core is {slowest} ({stages[slowest]:,.0f} images/s)"]
    if rep.model is not None:
        if best < rep.model:
            out.append(f"the loader limits training: {best:,.0f} images/s against the model's "
                       f"{rep.model:,.0f}")
        else:
            out.append(f"the model limits training ({rep.model:,.0f} images/s; the loader gives "
                       f"{best:,.0f}): a faster loader would not help")
            return out
    cores = usable_cores()
    if n_workers < cores - 1:
        out.append(f"more workers: this machine has {cores} cores (--workers {cores - 1})")
    if not packed:
        out.append(f"pack it (decoding and reading files are done once): convzoo pack {name} "
                   "--out FILE, then --data packed:FILE")
    side = max(max(d.shape[-2:]) for d in decoded)
    input_side = max(rep.input_size[1:])
    if side > 2 * input_side and not raw:
        suggest = round(input_side * 8 / 7)
        out.append(f"a smaller --max-side: the stored images reach {side} px for a "
                   f"{input_side} px input (convzoo pack ... --max-side {suggest})")
    if packed and not raw and slowest == "decode":
        out.append("a raw pack (--raw) skips decoding, at about 10x the bytes")
    if rep.model is None:
        out.append("add --model NAME to compare with the model's own rate on the device")
    return out


def describe(rep: Report) -> str:
    return "\n".join(rep.lines())


__all__ = ["Report", "describe", "diagnose", "shown"]
