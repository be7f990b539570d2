"""Batches of an image folder, streamed through DataLoader worker processes.

Workers decode an image at the model's channel count and bring it to the model's input size
(random-resized crop when training asks for it; otherwise shorter side resized and a centred
crop), as uint8. Flips, padded crops and normalisation then happen on the device, batch-wise,
as for in-memory data. An image that cannot be decoded is logged by path and skipped; more
than the limit (1% of the split by default, $CONVZOO_MAX_BAD_IMAGES to change it) stop the
epoch with an error naming the first.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ConvzooError, UserInputError
from .augment import Augment, sample_box, sample_shift_flip
from .batches import Batches, Pipeline, bad_limit, ignore_stop_signals
from .dataset import FolderSplit
from .decode import Box, fast_jpeg, place, raw_sized
from .folders import SMALL_SIDE
from .images import BadImageError, read_image, shown
from .pack import PackError, PackRecord, open_pack
from .photometric import lighting_offsets, rgb_eigen, sample_lighting, sample_scale_jitter
from .seeding import generator

log = logging.getLogger("convzoo.data")

#: Evaluation of photos: shorter side resized to size / 0.875, then the centred crop.
EVAL_CROP_RATIO = 0.875
JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
#: The environment variable that sets how many unreadable images a split may hold: a count
#: ("20") or a fraction of the split ("0.05"). It replaces the limit the caller gave (1%).
MAX_BAD_ENV = "CONVZOO_MAX_BAD_IMAGES"


def max_bad_setting(default: float | int) -> float | int:
    """The unreadable-image limit: $CONVZOO_MAX_BAD_IMAGES when set, else `default`."""
    raw = os.environ.get(MAX_BAD_ENV, "").strip()
    if not raw:
        return default
    try:
        value = float(raw.removesuffix("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        value = -1.0
    if not value >= 0 or value != value or value == float("inf"):
        raise UserInputError(f"{MAX_BAD_ENV}={raw!r}: give a count (20) or a fraction of the "
                             "images (0.05 or 5%)")
    return value if value < 1 else int(value)


def too_many_bad(bad: list[tuple[str, str]], n: int, limit: int) -> ConvzooError:
    path, reason = bad[0]
    return ConvzooError(f"{len(bad)} of {n} images could not be read (more than the {limit} "
                        f"tolerated), the first {shown(path)}: {reason}; fix or remove them, or "
                        f"tolerate more with the environment variable {MAX_BAD_ENV} (a count, "
                        "or a fraction of the images such as 0.05)")


class FolderImages(Dataset):
    """Decodes and sizes one image in a worker; failures come back as (None, label, path,
    reason) so the main process can report them."""

    def __init__(self, samples: list[tuple[str, int]], size: tuple[int, int, int],
                 boxes: Augment | None, shorter: float, seed: int, epoch: int,
                 jitter: tuple[float, float] | None = None) -> None:
        self.samples, self.size, self.boxes, self.shorter = samples, size, boxes, shorter
        self.seed, self.epoch = seed, epoch
        self.jitter = jitter  # VGG's scale jittering: S / crop drawn from this range

    def __len__(self) -> int:
        return len(self.samples)

    def _box(self, i: int, h: int, w: int) -> Box:
        """Image i's crop box in its full-size pixels (h x w), or None for evaluation's
        resize and centre crop. Seeded per image, so the result does not depend on which
        worker decodes it, nor on which decoder."""
        c, th, tw = self.size
        if self.boxes is not None:
            a = self.boxes
            return sample_box(h, w, a.scale, a.ratio, generator("box", self.seed, self.epoch, i))
        if self.jitter is not None:
            g = generator("scale-jitter", self.seed, self.epoch, i)
            crop = min(th, tw)
            lo, hi = (round(f * crop) for f in self.jitter)
            box, _ = sample_scale_jitter(1, h, w, crop, lo, hi, g)
            top, left, bh, bw = (int(round(float(v))) for v in box[0])
            return top, left, bh, bw
        return None

    def __getitem__(self, i: int):
        key, label = self.samples[i]
        c, h, w = self.size
        box = functools.partial(self._box, i)
        try:
            if isinstance(key, PackRecord):
                pack = open_pack(key.pack)
                rec = pack.record(key.index)
                if pack.raw:
                    return raw_sized(rec, c, (h, w), box, self.shorter), label, None, None
                img = fast_jpeg(rec, c, (h, w), box, self.shorter)
                if img is None:
                    raise BadImageError(str(key), "not a JPEG record")
                return img, label, None, None
            img = None
            if key.lower().endswith(JPEG_SUFFIXES):
                with open(key, "rb") as f:
                    img = fast_jpeg(f.read(), c, (h, w), box, self.shorter)
            if img is None:  # every other format and mode, and every failure's message
                full = read_image(key, channels=c)
                img = place(full, box(*full.shape[-2:]), (h, w), self.shorter)
        except BadImageError as e:
            return None, label, e.path, e.reason
        except PackError as e:  # a damaged pack stops the epoch: returned to the main process
            return None, label, str(key), e
        except OSError as e:
            return None, label, str(key), f"cannot read ({e.strerror or e})"
        return img, label, None, None  # the batch's stack copies it into place


def stack_images(images: Sequence[torch.Tensor], channels_last: bool = True) -> torch.Tensor:
    """C x H x W uint8 images as one N x C x H x W batch, laid out channel-last in memory or
    as planes. The resize leaves images channel-last, so a channel-last batch (what a run
    that computes channel-last takes, a GPU run by default) is a plain copy of each; planes
    cost a transposition of each, done here at one byte a value. The same values either way."""
    if not channels_last:
        return torch.stack(list(images))
    return torch.stack([img.permute(1, 2, 0) for img in images]).permute(0, 3, 1, 2)


def collate(items: list, channels_last: bool = False
            ) -> tuple[torch.Tensor | None, torch.Tensor, list[tuple[str, str]]]:
    good = [(img, lab) for img, lab, _, _ in items if img is not None]
    bad = [(p, r) for img, _, p, r in items if img is None]
    x = stack_images([img for img, _ in good], channels_last) if good else None
    y = torch.tensor([lab for _, lab in good], dtype=torch.int64)
    return x, y, bad


EIGEN_SAMPLE = 500  # images whose pixels estimate a folder's RGB covariance
_EIGEN: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def folder_eigen(split: FolderSplit, size: tuple[int, int, int],
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The RGB covariance's eigen pairs of up to EIGEN_SAMPLE seeded training images at the
    input size (computed once per split and size)."""
    key = (len(split), split.samples[0][0] if len(split) else "", tuple(size), seed)
    if key not in _EIGEN:
        g = generator("eigen-sample", seed)
        pick = torch.randperm(len(split), generator=g)[:EIGEN_SAMPLE].tolist()
        images = FolderImages([split.samples[i] for i in pick], size, None, 1.0, seed, 0)
        got = [img for img, _, _, _ in (images[i] for i in range(len(images)))
               if img is not None]
        if not got:
            raise UserInputError("PCA lighting: none of the sampled training images could be read")
        _EIGEN[key] = rgb_eigen(torch.stack(got))
    return _EIGEN[key]


class FolderBatches(Batches):
    def __init__(self, split: FolderSplit, *, batch_size: int, train: bool,
                 device: torch.device, input_size: tuple[int, int, int],
                 mean: Sequence[float], std: Sequence[float], augment: Augment | None,
                 seed: int, epoch: int, drop_last: bool, workers: int, channels_last: bool,
                 max_bad_images: float | int, positions: torch.Tensor | None = None,
                 start_batch: int = 0) -> None:
        n = len(split)
        order = (torch.randperm(n, generator=generator("epoch", seed, epoch))
                 if train else torch.arange(n))
        if positions is not None:
            order = order[positions]
        n = len(order)
        super().__init__(-(-n // batch_size) if not drop_last else n // batch_size, n,
                         start_batch)
        self.device, self.train, self.seed, self.epoch = device, train, seed, epoch
        self.rank = int(positions[0]) if positions is not None and len(positions) else 0
        self.augment = augment
        self.limit = bad_limit(n, max_bad_setting(max_bad_images))
        rrc = augment is not None and augment.random_resized_crop
        # evaluating photos: the usual resize to size / 0.875 and centre crop
        photos = not train and max(input_size[1:]) > SMALL_SIDE
        jitter = augment.scale_jitter if augment is not None and not rrc else None
        images = FolderImages(split.samples, input_size, augment if rrc else None,
                              shorter=EVAL_CROP_RATIO if photos else 1.0, seed=seed, epoch=epoch,
                              jitter=jitter)
        # AlexNet's PCA lighting: the RGB covariance of (a sample of) the training images
        self.eigen = (folder_eigen(split, input_size, seed)
                      if augment is not None and augment.pca_lighting else None)
        # a resumed epoch: the batches not yet taken (whole batches, so each keeps its images)
        self.loader = DataLoader(images, batch_size=batch_size,
                                 sampler=order[start_batch * batch_size:].tolist(),
                                 num_workers=workers, drop_last=drop_last,
                                 collate_fn=functools.partial(collate,
                                                              channels_last=channels_last),
                                 pin_memory=device.type == "cuda",
                                 worker_init_fn=ignore_stop_signals if workers else None,
                                 # its own generator: the workers' seeds are not drawn from
                                 # the global RNG, which dropout's masks come from
                                 generator=generator("loader", seed, epoch))
        self.pipeline = Pipeline(input_size, input_size, mean, std, device, channels_last)
        self.skipped: list[tuple[str, str]] = []

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        a = self.augment
        self.position = self.start
        for b, (x, y, bad) in enumerate(self.loader, self.start):
            self.position = b + 1
            for path, reason in bad:
                if isinstance(reason, PackError):
                    raise reason
                log.warning("skipped unreadable image %s: %s", shown(path), reason)
                self.bad_images.append(path)
                self.skipped.append((path, reason))
            if len(self.skipped) > self.limit:
                raise too_many_bad(self.skipped, self.num_samples, self.limit)
            if x is None:
                continue
            shift = flip = None
            if a is not None:
                # seeded per batch: a resumed epoch draws what the uninterrupted one drew
                g = generator("folder-augment", self.seed, self.epoch, self.rank, b)
                shift, flip = sample_shift_flip(len(x), a.crop_pad, a.flip, g)
                shift = None if shift is None else shift.to(self.device, non_blocking=True)
                flip = None if flip is None else flip.to(self.device, non_blocking=True)
            light = None
            if self.eigen is not None:  # drawn after the others: other presets stay the same
                light = lighting_offsets(sample_lighting(len(x), a.pca_lighting, g), *self.eigen)
            x = x.to(self.device, non_blocking=True)
            yield self.pipeline(x, shift, flip, None, light), y.to(self.device, non_blocking=True)
        if self.skipped:
            log.warning("skipped %d of %d images that could not be read",
                        len(self.skipped), self.num_samples)
