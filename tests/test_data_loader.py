"""The device-resident loader: shapes, seeding, augmentation semantics, adaptation."""

import pytest
import torch
import torch.nn.functional as F

from convzoo.data import Augment, adaptation, load_dataset, make_loader
from convzoo.data.augment import plan, sample_boxes, shift_flip
from convzoo.data.catalog import ArraySplit
from convzoo.errors import UserInputError


def indexed_split(n=40, c=1, h=8, w=8):
    """Random images whose label is their index, so a batch says where each image came from."""
    g = torch.Generator().manual_seed(3)
    images = torch.randint(1, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    return ArraySplit(images, torch.arange(n))


def raw(split, **kw):
    """Batches with normalisation undone (mean 0, std 1/255 gives back the bytes)."""
    c = split.image_size[0]
    kw.setdefault("input_size", split.image_size)
    kw.setdefault("augment", None)
    b = make_loader(split, batch_size=16, train=True, device="cpu", mean=(0.0,) * c,
                    std=(1 / 255,) * c, seed=0, epoch=0, drop_last=False, **kw)
    xs, ys = zip(*b)
    return torch.cat(xs).round().to(torch.uint8), torch.cat(ys)


def batches(split, seed, epoch, augment="cifar", **kw):
    c = split.image_size[0]
    b = make_loader(split, batch_size=16, train=True, device="cpu",
                    input_size=split.image_size, mean=(0.5,) * c, std=(0.25,) * c,
                    augment=augment, seed=seed, epoch=epoch, **kw)
    return [(x.clone(), y.clone()) for x, y in b]


def test_shapes_dtypes_and_length():
    ds = load_dataset("fake:3x16x16:100:4")
    b = make_loader(ds.train, batch_size=32, train=True, device="cpu", input_size=(3, 16, 16),
                    mean=ds.mean, std=ds.std, augment=Augment(crop_pad=2, flip=True), seed=0,
                    epoch=0)
    # 100 training images at batch 32: a small set keeps its partial last batch of 4
    assert len(ds.train) == 100 and len(b) == 4
    out = list(b)
    assert len(out) == 4 and len(out[3][1]) == 4
    x, y = out[0]
    assert x.shape == (32, 3, 16, 16) and x.dtype == torch.float32
    assert y.shape == (32,) and y.dtype == torch.int64
    ev = make_loader(ds.test, batch_size=32, train=False, device="cpu", input_size=(3, 16, 16),
                     mean=ds.mean, std=ds.std, augment=None, seed=0, epoch=0)
    assert len(ev) == 1 and sum(len(y) for _, y in ev) == 20  # evaluation keeps every image


def test_same_seed_and_epoch_same_batches_other_epoch_other_order():
    split = indexed_split()
    a, b = batches(split, 1, 0), batches(split, 1, 0)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = batches(split, 1, 1)
    assert not torch.equal(torch.cat([y for _, y in a]), torch.cat([y for _, y in c]))
    d = batches(split, 2, 0)
    assert not torch.equal(torch.cat([y for _, y in a]), torch.cat([y for _, y in d]))


def test_evaluation_keeps_order_and_ignores_augmentation():
    split = indexed_split()
    x, y = raw(split)  # train=True without augment: only shuffled
    assert sorted(y.tolist()) == list(range(40))
    b = make_loader(split, batch_size=16, train=False, device="cpu", input_size=(1, 8, 8),
                    mean=(0.0,), std=(1 / 255,), augment="cifar", seed=0, epoch=0)
    ys = torch.cat([y for _, y in b])
    xs = torch.cat([x for x, _ in b]).round().to(torch.uint8)
    assert torch.equal(ys, torch.arange(40)) and torch.equal(xs, split.images)


def shifted(img, dy, dx):
    """Reference: img zero-padded and cropped so that out[i, j] = img[i + dy, j + dx]."""
    h, w = img.shape[-2:]
    p = max(abs(dy), abs(dx))
    padded = F.pad(img, (p, p, p, p))
    return padded[..., p + dy:p + dy + h, p + dx:p + dx + w]


def test_padding_crop_shifts_content_by_at_most_pad():
    split = indexed_split()
    x, y = raw(split, augment=Augment(crop_pad=2))
    moved = 0
    for out, i in zip(x, y.tolist()):
        orig = split.images[i]
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(shifted(orig, dy, dx), out)]
        assert found, f"image {i} is not a shift of its original by at most 2 pixels"
        moved += found[0] != (0, 0)
    assert moved > len(x) // 2


def test_flip_flips_some_images_and_only_flips():
    split = indexed_split()
    x, y = raw(split, augment=Augment(flip=True))
    flipped = 0
    for out, i in zip(x, y.tolist()):
        orig = split.images[i]
        assert torch.equal(out, orig) or torch.equal(out, orig.flip(-1))
        flipped += torch.equal(out, orig.flip(-1))
    assert 5 < flipped < 35


def test_shift_flip_matches_reference_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 5, 7), generator=g, dtype=torch.uint8)
    shift = torch.tensor([[0, 0], [1, -2], [-3, 3], [2, 2], [-1, 0], [3, -3]])
    flip = torch.tensor([False, True, False, True, True, False])
    out = shift_flip(x, shift, flip)
    for k in range(6):
        ref = shifted(x[k], *shift[k].tolist())
        ref = ref.flip(-1) if flip[k] else ref
        assert torch.equal(out[k], ref)


def test_normalisation_gives_zero_mean_unit_std():
    ds = load_dataset("fake:3x8x8:200:5")
    b = make_loader(ds.train, batch_size=64, train=False, device="cpu", input_size=(3, 8, 8),
                    mean=ds.mean, std=ds.std, augment=None, seed=0, epoch=0)
    x = torch.cat([x for x, _ in b])
    assert x.mean((0, 2, 3)).abs().max() < 1e-3
    assert (x.std((0, 2, 3)) - 1).abs().max() < 1e-2
    # with augmentation on, the zero padding pulls the mean down, but not far
    b = make_loader(ds.train, batch_size=64, train=True, device="cpu", input_size=(3, 8, 8),
                    mean=ds.mean, std=ds.std, augment=Augment(flip=True), seed=0, epoch=0)
    assert torch.cat([x for x, _ in b]).mean().abs() < 0.05


def test_adaptation_pads_28_to_32_and_replicates_channels():
    split = indexed_split(n=8, c=1, h=28, w=28)
    b = make_loader(split, batch_size=8, train=False, device="cpu", input_size=(3, 32, 32),
                    mean=(0.0,), std=(1 / 255,), augment=None, seed=0, epoch=0)
    x, y = next(iter(b))
    assert x.shape == (8, 3, 32, 32)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert torch.equal(x[:, :1, 2:30, 2:30].round().to(torch.uint8), split.images)
    assert x[:, :, :2].abs().max() == 0 and x[:, :, :, 30:].abs().max() == 0
    lines = adaptation((1, 28, 28), (3, 32, 32))
    assert len(lines) == 2 and "padded to 32x32" in lines[0] and "3 channels" in lines[1]
    assert adaptation((3, 32, 32), (3, 32, 32)) == []


def test_adaptation_resizes_and_averages():
    split = indexed_split(n=4, c=3, h=8, w=8)
    b = make_loader(split, batch_size=4, train=False, device="cpu", input_size=(1, 24, 24),
                    mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), augment=None, seed=0, epoch=0)
    x, _ = next(iter(b))
    assert x.shape == (4, 1, 24, 24)
    assert plan((3, 8, 8), (1, 24, 24)).spatial == "resize"
    assert plan((1, 28, 28), (1, 32, 32)).pad == (2, 2, 2, 2)
    assert plan((1, 28, 28), (1, 31, 31)).pad == (1, 2, 1, 2)  # odd: the extra pixel after
    assert plan((1, 20, 20), (1, 32, 32)).spatial == "resize"  # beyond MAX_PAD
    with pytest.raises(UserInputError, match="channels"):
        adaptation((3, 8, 8), (4, 8, 8))


def test_random_resized_crop_shapes_boxes_and_seed():
    split = indexed_split(n=32, c=3, h=20, w=20)
    a = batches(split, 0, 0, augment=Augment(random_resized_crop=True, flip=True))
    b = batches(split, 0, 0, augment=Augment(random_resized_crop=True, flip=True))
    assert a[0][0].shape == (16, 3, 20, 20)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    boxes = sample_boxes(500, 20, 30, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator())
    top, left, bh, bw = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + bh <= 20).all() and (left + bw <= 30).all() and (bh >= 1).all()


def test_channels_last_and_bad_batch_size():
    split = indexed_split(n=8, c=3, h=8, w=8)
    b = make_loader(split, batch_size=4, train=True, device="cpu", input_size=(3, 8, 8),
                    mean=(0.5,) * 3, std=(0.5,) * 3, augment="flip", seed=0, epoch=0,
                    channels_last=True)
    x, _ = next(iter(b))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(UserInputError, match="batch size"):
        make_loader(split, batch_size=0, train=True, device="cpu", input_size=(3, 8, 8),
                    mean=(0.5,), std=(0.5,), augment=None, seed=0, epoch=0)
    with pytest.raises(UserInputError, match="augmentation"):
        make_loader(split, batch_size=4, train=True, device="cpu", input_size=(3, 8, 8),
                    mean=(0.5,), std=(0.5,), augment="nope", seed=0, epoch=0)


def test_ranks_share_one_epoch():
    split = indexed_split(n=41)
    kw = dict(batch_size=4, train=True, device="cpu", input_size=(1, 8, 8), mean=(0.0,),
              std=(1 / 255,), augment=Augment(crop_pad=2, flip=True), seed=3, epoch=1,
              drop_last=False)
    whole = [(x, y) for x, y in make_loader(split, **kw)]
    x_all, y_all = torch.cat([x for x, _ in whole]), torch.cat([y for _, y in whole])
    for rank in (0, 1):
        b = make_loader(split, rank=rank, world_size=2, **kw)
        assert b.num_samples == 20  # 41 // 2 on every rank, so DDP steps stay in lock-step
        x = torch.cat([x for x, _ in b])
        y = torch.cat([y for _, y in b])
        # each rank takes every other position of the one-process epoch, augmented alike
        assert torch.equal(y, y_all[rank::2][:20]) and torch.equal(x, x_all[rank::2][:20])
    with pytest.raises(UserInputError, match="rank"):
        make_loader(split, rank=2, world_size=2, **kw)


def test_grey_to_rgb_normalises_per_channel_after_replicating():
    from convzoo.data.catalog import ArraySplit
    from convzoo.data.loader import make_loader

    split = ArraySplit(torch.full((2, 1, 4, 4), 128, dtype=torch.uint8), torch.zeros(2))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    (x, _), = make_loader(split, batch_size=2, train=False, device="cpu",
                          input_size=(3, 4, 4), mean=mean, std=std, augment=None, seed=0,
                          epoch=0)
    expected = [(128 / 255 - m) / s for m, s in zip(mean, std)]
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor(expected))
