"""Packs (`convzoo pack`, `packed:FILE`): round trip, refusal of damaged packs, unreadable
images listed, restart after a stop, exact mid-epoch resume; the fast JPEG path and the
loader doctor."""

import io
import json
import struct
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from cli_run import run
from convzoo.data import load_dataset, make_loader
from convzoo.data.decode import fast_jpeg, place
from convzoo.data.images import read_image
from convzoo.data.pack import (
    INDEX_DTYPE,
    PREFIX,
    Pack,
    PackError,
    open_pack,
    record_image,
    write_pack,
)
from convzoo.data.workers import choose_workers


def noise_folder(root, classes=("ant", "bee", "cow"), n=4, side=(20, 28), fmt="PNG", seed=0):
    """Class folders of random-pixel images, sizes varying so the index's sizes matter."""
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(n):
            h, w = side[0] + i, side[1] - i
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / name / f"{i}.{fmt.lower()}", fmt)
    return root


@pytest.fixture(autouse=True)
def _fresh_packs():
    open_pack.cache_clear()
    yield
    open_pack.cache_clear()


def test_raw_pack_round_trips_labels_classes_and_pixels(tmp_path):
    src = noise_folder(tmp_path / "photos")
    out = tmp_path / "p.pack"
    r = write_pack(str(src), out, max_side=64, quality=None, progress=False)
    folder = load_dataset(f"imagefolder:{src}")
    packed = load_dataset(f"packed:{out}")
    assert r.images == 12 and not r.skipped and not (tmp_path / "p.pack.partial").exists()
    assert packed.classes == folder.classes == ["ant", "bee", "cow"]
    assert packed.image_size == folder.image_size
    pack = Pack(out)
    for split_f, split_p in ((folder.train, packed.train), (folder.test, packed.test)):
        assert [y for _, y in split_p.samples] == [y for _, y in split_f.samples]
        for (path, _), (rec, _) in zip(split_f.samples, split_p.samples, strict=True):
            stored = torch.from_numpy(np.array(pack.record(rec.index))).permute(2, 0, 1)
            assert torch.equal(stored, read_image(path))  # the same pixels, byte for byte
    assert np.array_equal(np.asarray(record_image(rec)), np.array(pack.record(rec.index)))


def test_jpeg_pack_trains_like_a_folder_and_resizes_to_max_side(tmp_path):
    src = noise_folder(tmp_path / "photos", side=(90, 120))
    out = tmp_path / "p.pack"
    write_pack(str(src), out, max_side=48, quality=90, progress=False)
    pack = Pack(out)
    assert pack.header["codec"] == "jpeg" and int(np.maximum(pack.index["height"],
                                                              pack.index["width"]).max()) == 48
    ds = load_dataset(f"packed:{out}")
    xs = [x for x, _ in make_loader(ds.train, batch_size=4, train=True, device="cpu",
                                    input_size=(3, 32, 32), mean=ds.mean, std=ds.std,
                                    augment="imagenet", seed=0, epoch=0)]
    assert xs and all(x.shape[1:] == (3, 32, 32) and torch.isfinite(x).all() for x in xs)


def _damage(path, how):
    b = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(b[: len(b) // 2]))
    elif how == "header":
        b[-5] ^= 0xFF  # inside the JSON header at the end
        path.write_bytes(bytes(b))
    elif how == "newer":
        _, version, *rest = PREFIX.unpack_from(b)
        struct.pack_into("<I", b, 12, 99)
        path.write_bytes(bytes(b))
    elif how == "record":
        b[70] ^= 0xFF  # inside the first record (records start at byte 64)
        path.write_bytes(bytes(b))


@pytest.mark.parametrize("how,words", [("truncated", "truncated"), ("header", "damaged"),
                                       ("newer", "newer convzoo"), ("record", "record 0")])
def test_damaged_packs_are_refused_in_one_line(tmp_path, capsys, how, words):
    src = noise_folder(tmp_path / "photos", n=3)
    out = tmp_path / "p.pack"
    write_pack(str(src), out, max_side=64, quality=None, progress=False)
    _damage(out, how)
    code, stdout, err = run(capsys, "data", "bench", f"packed:{out}", "--images", "4",
                            "--seconds", "0", "--workers", "0")
    assert code != 0 and words in err and str(out) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if how == "record":  # the loader refuses it too, rather than skipping it as unreadable
        open_pack.cache_clear()
        ds = load_dataset(f"packed:{out}")
        with pytest.raises(PackError, match="record 0"):
            for _ in make_loader(ds.train, batch_size=2, train=False, device="cpu",
                                 input_size=ds.image_size, mean=ds.mean, std=ds.std,
                                 augment=None, seed=0, epoch=0):
                pass


def test_not_a_pack_is_refused(tmp_path, capsys):
    f = tmp_path / "x.pack"
    f.write_bytes(b"hello" * 40)
    code, _, err = run(capsys, "data", "bench", f"packed:{f}", "--seconds", "0")
    assert code == 2 and "not a convzoo pack" in err


def test_unreadable_images_are_skipped_and_listed(tmp_path, capsys):
    src = noise_folder(tmp_path / "photos", n=3)
    (src / "bee" / "broken.png").write_bytes(b"\x89PNG not really")
    (src / "cow" / "empty.jpg").write_bytes(b"")
    out = tmp_path / "p.pack"
    code, stdout, _ = run(capsys, "pack", f"imagefolder:{src}", "--out", str(out), "--raw")
    assert code == 0
    assert "broken.png" in stdout and "empty.jpg" in stdout and "2 unreadable images" in stdout
    pack = Pack(out)
    assert len(pack) == 9 and len(pack.header["skipped"]) == 2


def test_a_stopped_pack_goes_on_and_equals_one_made_at_once(tmp_path):
    src = noise_folder(tmp_path / "photos", n=4)
    whole, parts = tmp_path / "whole.pack", tmp_path / "parts.pack"
    write_pack(str(src), whole, max_side=24, quality=80, progress=False)
    with pytest.raises(KeyboardInterrupt):
        write_pack(str(src), parts, max_side=24, quality=80, progress=False, stop_after=5)
    assert not parts.exists() and (tmp_path / "parts.pack.partial").exists()
    r = write_pack(str(src), parts, max_side=24, quality=80, progress=False)
    assert r.resumed_from == 5
    assert parts.read_bytes() == whole.read_bytes()
    assert not any(p.name.startswith("parts.pack.") for p in tmp_path.iterdir())


def test_pack_batches_resume_exactly_mid_epoch(tmp_path):
    src = noise_folder(tmp_path / "photos", n=6)
    out = tmp_path / "p.pack"
    write_pack(str(src), out, max_side=32, quality=None, progress=False)
    ds = load_dataset(f"packed:{out}")
    kw = dict(batch_size=3, train=True, device="cpu", input_size=(3, 16, 16), mean=ds.mean,
              std=ds.std, augment="imagenet", seed=3, epoch=2)
    full = list(make_loader(ds.train, **kw))
    assert len(full) >= 4
    tail = list(make_loader(ds.train, start_batch=2, **kw))
    assert len(tail) == len(full) - 2
    for (x, y), (x2, y2) in zip(full[2:], tail, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    other = list(make_loader(ds.train, **{**kw, "epoch": 3}))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(full, other, strict=False))


def test_fast_jpeg_gives_the_general_readers_pixels(tmp_path):
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "a.jpg").write_bytes(buf.getvalue())
    full = read_image(tmp_path / "a.jpg")
    # crops under twice the output: no reduced decoding, and the very same pixels
    for box, size in [((10, 5, 60, 50), (32, 32)), (None, (48, 48))]:
        fast = fast_jpeg(buf.getvalue(), 3, size, lambda h, w, b=box: b, 0.875)
        assert fast is not None and torch.equal(fast, place(full, box, size, 0.875))
    # a crop 3.5x the output is decoded at half scale: the pixels change, a little
    big = fast_jpeg(buf.getvalue(), 3, (16, 16), lambda h, w: (0, 0, 112, 84), 1.0)
    ref = place(full, (0, 0, 112, 84), (16, 16), 1.0)
    assert big is not None and (big.float() - ref.float()).abs().mean() < 12
    assert fast_jpeg(b"\x89PNG....", 3, (8, 8), lambda h, w: None, 1.0) is None


def _jpeg(side=(120, 90)):
    buf = io.BytesIO()
    a = np.random.default_rng(2).integers(0, 256, (*side, 3), dtype=np.uint8)
    Image.fromarray(a).save(buf, "JPEG")
    return buf.getvalue()


def test_decoding_a_jpeg_shows_no_deprecation_warning():
    data = _jpeg()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        img = fast_jpeg(data, 3, (48, 48), lambda h, w: None, 0.875)  # full-scale decode
    assert img is not None and img.shape == (3, 48, 48)
    assert not [x for x in w if issubclass(x.category, DeprecationWarning)]


def test_pillow_decodes_when_torchvision_io_is_gone(monkeypatch):
    data = _jpeg()
    box = (10, 5, 60, 50)
    with_tv = fast_jpeg(data, 3, (32, 32), lambda h, w: box, 1.0)
    monkeypatch.setitem(sys.modules, "torchvision.io", None)  # import fails, as if removed
    without = fast_jpeg(data, 3, (32, 32), lambda h, w: box, 1.0)
    assert with_tv is not None and without is not None and torch.equal(with_tv, without)


def test_resize_runs_channel_last_and_batches_stay_so():
    from convzoo.data.decode import resize_uint8
    from convzoo.data.folder_batches import stack_images

    a = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    view = torch.from_numpy(a).permute(2, 0, 1)  # a raw record: H x W x C memory
    out = [resize_uint8(x, (24, 24)) for x in (view, view.contiguous(), view[:, 5:30, 3:40])]
    # torch's channel-last uint8 kernel ran (its output is laid out H x W x C), whatever the
    # input's layout, and the pixels do not depend on the layout
    assert all(o.permute(1, 2, 0).is_contiguous() for o in out)
    assert torch.equal(out[0], out[1])
    batch = stack_images(out)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch, torch.stack(out))


def test_worker_count_follows_the_free_cores():
    assert choose_workers(8, cores=2, load=0.0)[0] == 1
    assert choose_workers(8, cores=2, load=1.0)[0] == 0
    assert choose_workers(3, cores=16, load=0.0) == (3, "as asked")
    assert choose_workers(0, cores=16, load=0.0)[0] == 0


@pytest.mark.parametrize("kind", ["imagefolder", "packed"])
def test_the_doctor_runs_on_a_folder_and_a_pack(tmp_path, capsys, kind):
    src = noise_folder(tmp_path / "photos", side=(70, 90), fmt="JPEG")
    name = f"imagefolder:{src}"
    if kind == "packed":
        write_pack(str(src), tmp_path / "p.pack", max_side=64, progress=False)
        name = f"packed:{tmp_path / 'p.pack'}"
    code, out, err = run(capsys, "data", "bench", name, "--images", "6", "--batch-size", "3",
                         "--seconds", "0", "--workers", "0", "--format", "json")
    assert code == 0, err
    rep = json.loads(out)
    assert set(rep["stages_img_s_per_core"]) == {"read", "decode", "crop and resize", "collate",
                                                 "to device"}
    assert all(v > 0 for v in rep["stages_img_s_per_core"].values())
    assert rep["loader_img_s"]["0"] > 0
    assert rep["advice"] and rep["advice"][0].startswith("the slowest stage")
    assert any("pack it" in a for a in rep["advice"]) == (kind == "imagefolder")


def test_index_rows_are_fixed_size():
    assert INDEX_DTYPE.itemsize == 28  # the format's index row; changing it needs a new version
