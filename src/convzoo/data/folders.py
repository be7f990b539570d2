"""Image folders: one subfolder per class, streamed through DataLoader worker processes.

``PATH/train/<class>/...`` with ``PATH/val/`` (or ``validation/``, ``test/``) beside it gives
the two splits; otherwise ``PATH/<class>/...`` (or ``PATH/train/<class>/...`` alone) is split by
the seed, TEST_FRACTION of every class held out. Class names are the folder names, sorted.

Workers decode an image at the model's channel count and bring it to the model's input size
(random-resized crop when training asks for it; otherwise shorter side resized and a centred
crop), as uint8. Flips, padded crops and normalisation then happen on the device, batch-wise,
as for in-memory data. An image that cannot be decoded is logged by path and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..errors import UserInputError
from .augment import Augment, sample_boxes, sample_shift_flip
from .catalog import TEST_FRACTION, DataSet, FolderSplit, stratified_split
from .images import IMAGE_SUFFIXES, BadImageError, read_image
from .loader import Batches, Pipeline, bad_limit, too_many_bad
from .preprocess import IMAGENET_MEAN, IMAGENET_STD
from .seeding import generator

log = logging.getLogger("convzoo.data")

TEST_DIRS = ("val", "validation", "test")
#: Images whose sides are all at most this are worked at their own size; larger ones (photos)
#: at 224x224, the ImageNet convention.
SMALL_SIDE = 64
#: Evaluation of photos: shorter side resized to size / 0.875, then the centred crop.
EVAL_CROP_RATIO = 0.875


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan(folder: Path, classes: list[str]) -> list[tuple[str, int]]:
    samples = []
    for label, name in enumerate(classes):
        d = folder / name
        if not d.is_dir():
            continue
        files = sorted(p for p in d.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                       and p.is_file())
        samples.extend((str(p), label) for p in files)
    return samples


def _peek_size(samples: list[tuple[str, int]], root: Path) -> tuple[int, int, int]:
    for path, _ in samples[:50]:
        try:
            img = read_image(path, channels=None)
        except BadImageError:
            continue
        c, h, w = img.shape
        return (c, h, w) if max(h, w) <= SMALL_SIDE else (c, 224, 224)
    raise UserInputError(f"none of the first images in {root} could be read; "
                         "check that the folder holds images")


def load_imagefolder(path: str, seed: int = 0) -> DataSet:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserInputError(f"image folder {root} does not exist; give imagefolder:PATH with "
                             "one subfolder per class (or train/ and val/ holding them)")
    train_dir = root / "train"
    test_dir = next((root / d for d in TEST_DIRS if (root / d).is_dir()), None)
    if train_dir.is_dir() and test_dir is not None:
        classes = _class_dirs(train_dir)
        extra = sorted(set(_class_dirs(test_dir)) - set(classes))
        if extra:
            raise UserInputError(f"{test_dir} has classes that {train_dir} lacks: "
                                 f"{', '.join(extra[:5])}; give every class training images")
        train, test = _scan(train_dir, classes), _scan(test_dir, classes)
    else:
        base = train_dir if train_dir.is_dir() else root
        classes = _class_dirs(base)
        every = _scan(base, classes)
        labels = torch.tensor([lab for _, lab in every], dtype=torch.int64)
        tr, te = stratified_split(labels, TEST_FRACTION, seed, str(root)) if every else ([], [])
        train = [every[i] for i in tr.tolist()] if every else []
        test = [every[i] for i in te.tolist()] if every else []
    if not classes:
        raise UserInputError(f"no class folders in {root}: put each class's images in a "
                             "subfolder named after the class")
    if not train:
        raise UserInputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders "
                             f"of {root}")
    size = _peek_size(train, root)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    if size[0] == 1:
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    return DataSet(name=f"imagefolder:{path}", classes=classes, train=FolderSplit(train),
                   test=FolderSplit(test), image_size=size, mean=mean, std=std,
                   source=str(root))


def _to_size(img: torch.Tensor, size: tuple[int, int], shorter: float) -> torch.Tensor:
    """Resize so the shorter side fits size/shorter, then take the centred crop of `size`."""
    h, w = img.shape[-2:]
    th, tw = size
    if (h, w) != (th, tw):
        scale = max(th, tw) / shorter / min(h, w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        img = _resize_uint8(img, (nh, nw))
        top, left = (nh - th) // 2, (nw - tw) // 2
        img = img[:, top:top + th, left:left + tw]
    return img


def _resize_uint8(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    shrink = size[0] < img.shape[-2] or size[1] < img.shape[-1]
    x = F.interpolate(img[None].float(), size=size, mode="bilinear", align_corners=False,
                      antialias=shrink)[0]
    return x.round_().clamp_(0, 255).to(torch.uint8)


class FolderImages(Dataset):
    """Decodes and sizes one image in a worker; failures come back as (None, label, path,
    reason) so the main process can report them."""

    def __init__(self, samples: list[tuple[str, int]], size: tuple[int, int, int],
                 boxes: Augment | None, shorter: float, seed: int, epoch: int) -> None:
        self.samples, self.size, self.boxes, self.shorter = samples, size, boxes, shorter
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        c, h, w = self.size
        try:
            img = read_image(path, channels=c)
        except BadImageError as e:
            return None, label, e.path, e.reason
        if self.boxes is not None:
            # seeded per image, so the result does not depend on which worker decodes it
            g = generator("box", self.seed, self.epoch, i)
            a = self.boxes
            top, left, bh, bw = (int(v) for v in
                                 sample_boxes(1, *img.shape[-2:], a.scale, a.ratio, g)[0])
            img = _resize_uint8(img[:, top:top + bh, left:left + bw], (h, w))
        else:
            img = _to_size(img, (h, w), self.shorter)
        return img.contiguous(), label, None, None


def collate(items: list) -> tuple[torch.Tensor | None, torch.Tensor, list[tuple[str, str]]]:
    good = [(img, lab) for img, lab, _, _ in items if img is not None]
    bad = [(p, r) for img, _, p, r in items if img is None]
    x = torch.stack([img for img, _ in good]) if good else None
    y = torch.tensor([lab for _, lab in good], dtype=torch.int64)
    return x, y, bad


class FolderBatches(Batches):
    def __init__(self, split: FolderSplit, *, batch_size: int, train: bool,
                 device: torch.device, input_size: tuple[int, int, int],
                 mean: Sequence[float], std: Sequence[float], augment: Augment | None,
                 seed: int, epoch: int, drop_last: bool, workers: int, channels_last: bool,
                 max_bad_images: float | int, positions: torch.Tensor | None = None) -> None:
        n = len(split)
        order = (torch.randperm(n, generator=generator("epoch", seed, epoch))
                 if train else torch.arange(n))
        if positions is not None:
            order = order[positions]
        n = len(order)
        super().__init__(-(-n // batch_size) if not drop_last else n // batch_size, n)
        self.device, self.train, self.seed, self.epoch = device, train, seed, epoch
        self.rank = int(positions[0]) if positions is not None and len(positions) else 0
        self.augment = augment
        self.limit = bad_limit(n, max_bad_images)
        rrc = augment is not None and augment.random_resized_crop
        # evaluating photos: the usual resize to size / 0.875 and centre crop
        photos = not train and max(input_size[1:]) > SMALL_SIDE
        images = FolderImages(split.samples, input_size, augment if rrc else None,
                              shorter=EVAL_CROP_RATIO if photos else 1.0, seed=seed, epoch=epoch)
        self.loader = DataLoader(images, batch_size=batch_size, sampler=order.tolist(),
                                 num_workers=workers, collate_fn=collate, drop_last=drop_last,
                                 pin_memory=device.type == "cuda")
        self.pipeline = Pipeline(input_size, input_size, mean, std, device, channels_last)
        self.skipped: list[tuple[str, str]] = []

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = generator("folder-augment", self.seed, self.epoch, self.rank)
        a = self.augment
        for x, y, bad in self.loader:
            for path, reason in bad:
                log.warning("skipped unreadable image %s: %s", path, reason)
                self.bad_images.append(path)
                self.skipped.append((path, reason))
            if len(self.skipped) > self.limit:
                raise too_many_bad(self.skipped, self.num_samples, self.limit)
            if x is None:
                continue
            shift = flip = None
            if a is not None:
                shift, flip = sample_shift_flip(len(x), a.crop_pad, a.flip, g)
                shift = None if shift is None else shift.to(self.device, non_blocking=True)
                flip = None if flip is None else flip.to(self.device, non_blocking=True)
            x = x.to(self.device, non_blocking=True)
            yield self.pipeline(x, shift, flip), y.to(self.device, non_blocking=True)
        if self.skipped:
            log.warning("skipped %d of %d images that could not be read",
                        len(self.skipped), self.num_samples)
