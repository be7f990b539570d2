"""Image folders as a data set: one subfolder per class, read into a FolderSplit of paths.

``PATH/train/<class>/...`` with ``PATH/val/`` (or ``validation/``, ``test/``) beside it gives
the two splits; otherwise ``PATH/<class>/...`` (or ``PATH/train/<class>/...`` alone) is split by
the seed, TEST_FRACTION of every class held out. Class names are the folder names, sorted
(printable: bytes that are not UTF-8 appear as \\xNN). A class folder with no images is not a
class (a warning says so); a set needs two classes. The channels and size the set is worked at
come from the headers of up to SAMPLE of its images by the rule in `decide_size`, logged.

Their batches are made by :mod:`.folder_batches`.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import torch

from ..errors import UserInputError
from .dataset import TEST_FRACTION, DataSet, FolderSplit, stratified_split
from .images import IMAGE_SUFFIXES, BadImageError, peek_image, shown
from .preprocess import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger("convzoo.data")

TEST_DIRS = ("val", "validation", "test")
#: Images whose sides are all at most this are worked at their own size; larger ones (photos)
#: at 224x224, the ImageNet convention.
SMALL_SIDE = 64

#: How many files (evenly spread over the sorted list, so every class is seen) have their
#: header read to decide the channels and size; all of them in smaller sets.
SAMPLE = 1000


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
                  and p.is_file())


def _listing(folder: Path, dirs: list[str]) -> dict[str, list[Path]]:
    """The image files of each class folder in `dirs` (none for a folder that is missing)."""
    return {name: _images_in(folder / name) if (folder / name).is_dir() else [] for name in dirs}


def _samples(listing: dict[str, list[Path]], dirs: list[str]) -> list[tuple[str, int]]:
    """(path, label) of every image in the class folders `dirs` (label: position in `dirs`)."""
    return [(str(p), label) for label, name in enumerate(dirs) for p in listing[name]]


def _non_empty(folder: Path, listing: dict[str, list[Path]]) -> list[str]:
    """The class folders that hold at least one image file; the others are not classes."""
    keep = []
    for name, files in listing.items():
        if files:
            keep.append(name)
        else:
            log.warning("%s holds no images (%s): it is not a class", shown(folder / name),
                        ", ".join(IMAGE_SUFFIXES))
    return keep


def _spread(items: list, k: int) -> list:
    if len(items) <= k:
        return items
    step = len(items) / k
    return [items[int(i * step)] for i in range(k)]


def decide_size(samples: list[tuple[str, int]], root: Path) -> tuple[int, int, int]:
    """The channels and size the set is worked at, from the headers of (up to SAMPLE of) its
    images, by a stated rule (logged):

    - channels: 3 when any image is stored in colour (grey images are then replicated, which
      loses nothing; averaging colour photos to grey would), 1 when all are grey;
    - size: when most images have both sides at most SMALL_SIDE, the most common size among
      them (digits, CIFAR-like sets); otherwise 224x224, the ImageNet convention for photos.
    """
    seen = []
    for path, _ in _spread(samples, SAMPLE):
        try:
            seen.append(peek_image(path))
        except BadImageError:
            continue  # reported by path when the loader meets it
    if not seen:
        raise UserInputError(f"none of the {min(len(samples), SAMPLE)} images looked at in "
                             f"{shown(root)} could be read; check that the folder holds images")
    colour = sum(c == 3 for c, _, _ in seen)
    channels = 3 if colour else 1
    small = [(h, w) for _, h, w in seen if max(h, w) <= SMALL_SIDE]
    if len(small) * 2 > len(seen):
        (h, w), count = Counter(small).most_common(1)[0]
        how = f"{h}x{w}, the size of {count} of the {len(seen)} images looked at"
    else:
        h, w = 224, 224
        how = (f"224x224, as {len(seen) - len(small)} of the {len(seen)} images looked at have "
               f"a side over {SMALL_SIDE}")
    log.info("image folder %s: %d channel%s (%d of %d images looked at are in colour), %s",
             shown(root), channels, "s" if channels > 1 else "", colour, len(seen), how)
    return channels, h, w


def load_imagefolder(path: str, seed: int = 0) -> DataSet:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserInputError(f"image folder {shown(root)} does not exist; give imagefolder:PATH "
                             "with one subfolder per class (or train/ and val/ holding them)")
    train_dir = root / "train"
    test_dir = next((root / d for d in TEST_DIRS if (root / d).is_dir()), None)
    # train/, val/ and test/ all there: val/ is the validation split runs choose best/ on
    val_dir = None
    if train_dir.is_dir() and (root / "test").is_dir() and test_dir != root / "test":
        val_dir, test_dir = test_dir, root / "test"
    if train_dir.is_dir() and test_dir is not None:
        listing = _listing(train_dir, _class_dirs(train_dir))
        dirs = _non_empty(train_dir, listing)
        held_out = _listing(test_dir, _class_dirs(test_dir))
        extra = sorted(d for d, files in held_out.items() if files and d not in dirs)
        if extra:
            raise UserInputError(f"{shown(test_dir)} has classes that {shown(train_dir)} lacks: "
                                 f"{', '.join(shown(e) for e in extra[:5])}; give every class "
                                 "training images")
        base = train_dir
        held_out = {d: held_out.get(d, []) for d in dirs}
        train, test = _samples(listing, dirs), _samples(held_out, dirs)
        if val_dir is not None:
            own = _listing(val_dir, _class_dirs(val_dir))
            val = _samples({d: own.get(d, []) for d in dirs}, dirs)
    else:
        base = train_dir if train_dir.is_dir() else root
        listing = _listing(base, _class_dirs(base))
        dirs = _non_empty(base, listing)
        every = _samples(listing, dirs)
        labels = torch.tensor([lab for _, lab in every], dtype=torch.int64)
        tr, te = stratified_split(labels, TEST_FRACTION, seed, str(root)) if every else ([], [])
        train = [every[i] for i in tr.tolist()] if every else []
        test = [every[i] for i in te.tolist()] if every else []
    if not listing:
        raise UserInputError(f"no class folders in {shown(root)}: put each class's images in a "
                             "subfolder named after the class")
    if not train:
        raise UserInputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders "
                             f"of {shown(root)}")
    if len(dirs) < 2:
        raise UserInputError(f"{shown(base)} holds one class ({shown(dirs[0])}); a classifier "
                             "needs at least two: add a folder of images for each other class")
    # folder names that are not UTF-8 become printable class names; the files keep their paths
    classes = [shown(d) for d in dirs]
    size = decide_size(train, root)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    if size[0] == 1:
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    return DataSet(name=f"imagefolder:{path}", classes=classes, train=FolderSplit(train),
                   test=FolderSplit(test), image_size=size, mean=mean, std=std,
                   source=str(root), val=FolderSplit(val) if val_dir is not None else None)
