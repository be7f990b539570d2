"""Image folders: layouts, seeded split, streaming batches, corrupt images reported by path."""

import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo.data import FolderSplit, load_dataset, make_loader
from convzoo.errors import ConvzooError, UserInputError


def png_bytes(value, size=(8, 8), mode="RGB"):
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    buf = io.BytesIO()
    Image.fromarray(np.full(shape, value, np.uint8), mode).save(buf, format="PNG")
    return buf.getvalue()


def make_folder(root, classes=("cat", "dog"), n=5, **kw):
    for k, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True)
        for i in range(n):
            (d / f"{i}.png").write_bytes(png_bytes(40 * k + i, **kw))


def loader(ds, split="train", train=True, **kw):
    kw.setdefault("input_size", ds.image_size)
    kw.setdefault("augment", None)
    kw.setdefault("batch_size", 4)
    return make_loader(getattr(ds, split), train=train, device="cpu", mean=(0.0,),
                       std=(1 / 255,), seed=0, epoch=0, **kw)


def test_train_and_val_folders(tmp_path):
    make_folder(tmp_path / "train", n=5)
    make_folder(tmp_path / "val", n=2)
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.classes == ["cat", "dog"] and ds.image_size == (3, 8, 8)
    assert isinstance(ds.train, FolderSplit) and len(ds.train) == 10 and len(ds.test) == 4
    b = loader(ds, "test", train=False)
    xs, ys = zip(*b)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (4, 3, 8, 8) and y.tolist() == [0, 0, 1, 1]
    # each image is uniform with the value it was written with
    assert x[:, :, 0, 0].round().tolist() == [[v] * 3 for v in (0, 1, 40, 41)]


def test_seeded_split_of_class_folders(tmp_path):
    make_folder(tmp_path, classes=("a", "b", "c"), n=5)
    ds = load_dataset(f"imagefolder:{tmp_path}", seed=0)
    assert ds.classes == ["a", "b", "c"] and len(ds.train) == 12 and len(ds.test) == 3
    assert sorted(lab for _, lab in ds.test.samples) == [0, 1, 2]  # one of every class
    same = load_dataset(f"imagefolder:{tmp_path}", seed=0)
    assert same.test.samples == ds.test.samples
    others = [load_dataset(f"imagefolder:{tmp_path}", seed=s).test.samples for s in range(1, 6)]
    assert any(o != ds.test.samples for o in others)
    assert not set(p for p, _ in ds.train.samples) & set(p for p, _ in ds.test.samples)


def test_streamed_batches_are_adapted_augmented_and_seeded(tmp_path):
    make_folder(tmp_path, n=6, size=(40, 30), mode="L")
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.image_size == (1, 30, 40) and len(ds.mean) == 1
    kw = dict(input_size=(3, 16, 16), augment="imagenet")
    a = [x for x, _ in loader(ds, **kw)]
    b = [x for x, _ in loader(ds, **kw)]
    # 10 training images at batch 4: two full batches and the partial one of 2 (small data
    # keeps every image, see `drops_partial_batch`)
    assert a[0].shape == (4, 3, 16, 16) and len(a) == 3 and a[2].shape[0] == 2
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    x, y = next(iter(loader(ds, "test", train=False, workers=1, input_size=(1, 16, 16))))
    assert x.shape == (2, 1, 16, 16) and y.tolist() == [0, 1]


def write_corrupt(root):
    make_folder(root, n=10)
    (root / "cat" / "notes.png").write_text("this is not an image")
    (root / "dog" / "cut.png").write_bytes(png_bytes(7, size=(64, 64))[:60])
    return {str(root / "cat" / "notes.png"), str(root / "dog" / "cut.png")}


def test_corrupt_images_are_reported_by_path_and_skipped(tmp_path, caplog):
    bad = write_corrupt(tmp_path / "imgs")
    ds = load_dataset(f"imagefolder:{tmp_path / 'imgs'}")
    split = FolderSplit(ds.train.samples + ds.test.samples)
    with caplog.at_level(logging.WARNING, logger="convzoo.data"):
        b = make_loader(split, batch_size=8, train=False, device="cpu", input_size=(3, 8, 8),
                        mean=ds.mean, std=ds.std, augment=None, seed=0, epoch=0,
                        max_bad_images=2)
        n = sum(len(y) for _, y in b)
    assert n == 20 and set(b.bad_images) == bad
    text = caplog.text
    assert all(p in text for p in bad) and "skipped 2 of 22 images" in text


def test_too_many_corrupt_images_stop_with_an_error(tmp_path):
    write_corrupt(tmp_path)
    ds = load_dataset(f"imagefolder:{tmp_path}")
    split = FolderSplit(ds.train.samples + ds.test.samples)
    b = make_loader(split, batch_size=22, train=True, device="cpu", input_size=(3, 8, 8),
                    mean=ds.mean, std=ds.std, augment="flip", seed=0, epoch=0)
    with pytest.raises(ConvzooError, match=r"2 of 22 images could not be read.*\.png"):
        list(b)


def test_folder_errors(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no class folders"):
        load_dataset(f"imagefolder:{tmp_path / 'empty'}")
    make_folder(tmp_path / "x" / "train", classes=("a",))
    make_folder(tmp_path / "x" / "val", classes=("a", "zebra"))
    with pytest.raises(UserInputError, match="zebra"):
        load_dataset(f"imagefolder:{tmp_path / 'x'}")
