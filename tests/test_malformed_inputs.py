"""A corpus of malformed inputs, generated here: each case gives a one-line error or a skip
reported by path, never a traceback."""

import io
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo.data import FolderSplit, load_dataset, make_loader
from convzoo.data.folder_batches import MAX_BAD_ENV
from convzoo.data.images import BadImageError, peek_image, read_image
from convzoo.data.readers import _read_cifar_file
from convzoo.data.safe_pickle import UnsafePickleError, safe_load
from convzoo.errors import ConvzooError, UserInputError
from convzoo.runs import checkpoint as ck

NON_UTF8 = b"caf\xe9.png"  # Latin-1 bytes: not a valid UTF-8 name


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def bomb_png() -> bytes:
    """A valid PNG whose header claims 100000 x 100000 pixels."""
    data = bytearray(png(Image.new("L", (4, 4), 9)))
    ihdr = bytearray(data[12:29])  # type + 13 bytes of IHDR
    ihdr[4:12] = struct.pack(">II", 100_000, 100_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(buf, format="JPEG", quality=100)
    return buf.getvalue()


def _palette() -> Image.Image:
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    return im


GOOD = {  # name -> (bytes, what read_image(channels=3) must give at pixel (0, 0))
    "grey16.png": (png(Image.fromarray(np.full((8, 8), 60000, np.uint16))), (233, 233, 233)),
    "palette.png": (png(_palette()), (10, 200, 30)),
    "rgba.png": (png(Image.new("RGBA", (8, 8), (0, 0, 0, 0))), (255, 255, 255)),
    "la.png": (png(Image.new("LA", (8, 8), (0, 128))), (127, 127, 127)),
    "cmyk.jpg": (cmyk_jpeg(), (255, 0, 0)),
    "bilevel.png": (png(Image.new("1", (8, 8), 1)), (255, 255, 255)),
}
BAD = {  # name -> (bytes, the reason read_image gives)
    "zero.png": (b"", "empty file"),
    "text.jpg": (b"a text file, not an image\n", "not an image file"),
    "cut.png": (png(Image.new("RGB", (64, 64), 7))[:70], "cannot decode"),
    "bomb.png": (bomb_png(), "decompression bomb"),
    "garbage.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not an image file"),
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """An image folder with every odd and bad file, an empty class and a non-UTF-8 name.

    The first file of class `a` (sorted) is a small grey image; the rest are colour photos."""
    root = tmp_path / "imgs"
    for k, cls in enumerate(("a", "b")):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(6):
            (d / f"rgb{i}.png").write_bytes(png(Image.new("RGB", (16, 16), (40 * k, i, 99))))
    (root / "a" / "0grey.png").write_bytes(png(Image.new("L", (16, 16), 50)))
    for name, (data, _) in {**GOOD, **BAD}.items():
        (root / "b" / name).write_bytes(data)
    with open(os.path.join(os.fsencode(root / "a"), NON_UTF8), "wb") as f:
        f.write(png(Image.new("RGB", (16, 16), (1, 2, 3))))
    (root / "empty").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not images")
    return root


@pytest.mark.parametrize("name", sorted(GOOD))
def test_odd_modes_are_converted_as_shown(corpus, name):
    img = read_image(corpus / "b" / name, channels=3)
    assert img.dtype == torch.uint8 and img.shape == (3, 8, 8)
    got = tuple(int(v) for v in img[:, 0, 0])
    assert all(abs(g - e) <= 2 for g, e in zip(got, GOOD[name][1])), got  # JPEG rounds
    grey = read_image(corpus / "b" / name, channels=1)
    assert grey.shape == (1, 8, 8)
    assert peek_image(corpus / "b" / name)[1:] == (8, 8)


def test_sixteen_bit_grey_keeps_its_range(tmp_path):
    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    (tmp_path / "r.png").write_bytes(png(Image.fromarray(ramp)))
    x = read_image(tmp_path / "r.png", channels=None)
    assert x.shape == (1, 8, 8) and int(x.min()) == 0 and int(x.max()) == 255
    assert len(torch.unique(x)) == 64  # not clipped to a few values near white


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_are_one_line_errors_naming_the_path(corpus, name):
    path = corpus / "b" / name
    readers = [lambda: read_image(path)]
    if name != "cut.png":  # a good header with the data cut short passes a peek
        readers.append(lambda: peek_image(path))
    for read in readers:
        with pytest.raises(BadImageError) as e:
            read()
        msg = str(e.value)
        assert str(path) in msg and BAD[name][1] in msg and "\n" not in msg


def test_the_folder_decides_from_all_files_and_skips_the_bad(corpus, caplog):
    with caplog.at_level(logging.INFO, logger="convzoo.data"):
        ds = load_dataset(f"imagefolder:{corpus}")
    assert ds.classes == ["a", "b"]  # `empty` and `notes` hold no images
    assert "empty holds no images" in caplog.text and "notes holds no images" in caplog.text
    assert ds.image_size == (3, 16, 16) and len(ds.mean) == 3  # not the grey first file's 1
    assert "3 channels" in caplog.text and "16x16" in caplog.text
    split = FolderSplit(ds.train.samples + ds.test.samples)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="convzoo.data"):
        b = make_loader(split, batch_size=8, train=False, device="cpu", input_size=(3, 16, 16),
                        mean=ds.mean, std=ds.std, augment=None, seed=0, epoch=0,
                        max_bad_images=len(BAD))
        n = sum(len(y) for _, y in b)
    assert n == len(split) - len(BAD)
    assert sorted(Path(p).name for p in b.bad_images) == sorted(BAD)
    assert f"skipped {len(BAD)} of {len(split)} images" in caplog.text
    assert "caf\\xe9.png" not in caplog.text  # the non-UTF-8 file was read, not skipped
    caplog.text.encode("utf-8")  # and nothing logged is unprintable


def test_the_bad_image_limit_names_a_real_setting(corpus, monkeypatch):
    ds = load_dataset(f"imagefolder:{corpus}")
    split = FolderSplit(ds.train.samples + ds.test.samples)

    def epoch():
        b = make_loader(split, batch_size=64, train=False, device="cpu", input_size=(3, 8, 8),
                        mean=ds.mean, std=ds.std, augment=None, seed=0, epoch=0)
        return sum(len(y) for _, y in b)

    with pytest.raises(ConvzooError, match=f"of {len(split)} images could not be read") as e:
        epoch()
    assert MAX_BAD_ENV in str(e.value) and "max_bad_images" not in str(e.value)
    monkeypatch.setenv(MAX_BAD_ENV, "0.5")
    assert epoch() == len(split) - len(BAD)
    monkeypatch.setenv(MAX_BAD_ENV, str(len(BAD)))
    assert epoch() == len(split) - len(BAD)
    monkeypatch.setenv(MAX_BAD_ENV, "many")
    with pytest.raises(UserInputError, match=f"{MAX_BAD_ENV}='many'"):
        epoch()


def test_grey_sets_stay_grey_and_small_sizes_go_by_majority(tmp_path):
    for cls in ("x", "y"):
        (tmp_path / cls).mkdir()
        for i in range(4):
            (tmp_path / cls / f"{i}.png").write_bytes(png(Image.new("L", (28, 28), i)))
        (tmp_path / cls / "big.png").write_bytes(png(Image.new("L", (300, 200), 1)))
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.image_size == (1, 28, 28)


def test_one_class_and_no_class(tmp_path):
    (tmp_path / "one" / "cat").mkdir(parents=True)
    (tmp_path / "one" / "dog").mkdir()  # empty: not a class
    (tmp_path / "one" / "cat" / "1.png").write_bytes(png(Image.new("RGB", (8, 8))))
    with pytest.raises(UserInputError, match="holds one class \\(cat\\); a classifier needs"):
        load_dataset(f"imagefolder:{tmp_path / 'one'}")
    (tmp_path / "none" / "a").mkdir(parents=True)
    with pytest.raises(UserInputError, match="no images"):
        load_dataset(f"imagefolder:{tmp_path / 'none'}")


def test_non_utf8_class_names_are_printable(tmp_path):
    for name in (b"caf\xe9", b"tea"):
        d = os.path.join(os.fsencode(tmp_path), name)
        os.mkdir(d)
        for i in range(3):
            with open(os.path.join(d, b"%d.png" % i), "wb") as f:
                f.write(png(Image.new("RGB", (8, 8), (i, 0, 0))))
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.classes == ["caf\\xe9", "tea"]
    json.dumps(ds.classes).encode("utf-8")
    b = make_loader(ds.train, batch_size=2, train=False, device="cpu", input_size=(3, 8, 8),
                    mean=ds.mean, std=ds.std, augment=None, seed=0, epoch=0)
    assert sum(len(y) for _, y in b) == len(ds.train) and not b.bad_images


# ---- checkpoints ---------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model = torch.nn.Linear(2, 2)
    return ck.save_checkpoint(tmp_path / "ck", model=model, meta={"model": "lenet5", "epoch": 1},
                              optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def _edit(meta: dict, case: str) -> object:
    m = dict(meta)
    if case.startswith("drop:"):
        m.pop(case[5:])
    elif case.startswith("set:"):
        key, value = case[4:].split("=", 1)
        m[key] = json.loads(value)
    elif case == "list":
        return [m]
    return m


META_CASES = ["drop:files", "drop:format", "set:version=\"2\"", "set:version=99",
              "set:epoch=\"one\"", "set:epoch=-1", "set:step=true", "set:model=3",
              "set:model_args=3", "set:files=[]", "set:files={\"model\": \"../../etc/passwd\"}",
              "set:files={\"model\": 5}", "set:class_names=[1, 2]", "set:sha256=[]",
              "set:training_state=[1]", "set:history={}", "set:best_top1=\"x\"", "list"]


@pytest.mark.parametrize("case", META_CASES)
def test_checkpoint_json_with_missing_or_wrong_fields(saved, case):
    f = saved / "checkpoint.json"
    f.write_text(json.dumps(_edit(json.loads(f.read_text()), case)))
    with pytest.raises(UserInputError) as e:
        ck.load_checkpoint(saved)
    assert str(f) in str(e.value) or str(saved) in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", [b"", b"not json", b"\xff\xfe{}", b"[" * 100_000,
                                  b'{"format": "convzoo.checkpoint", "ep'])
def test_checkpoint_json_that_is_not_json(saved, text):
    (saved / "checkpoint.json").write_bytes(text)
    with pytest.raises(UserInputError, match="checkpoint.json") as e:
        ck.load_checkpoint(saved)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("cut", ["header", "half", "flip"])
def test_damaged_safetensors(saved, cut):
    f = saved / "state.safetensors"
    data = bytearray(f.read_bytes())
    data = {"header": data[:6], "half": data[: len(data) // 2]}.get(cut, data)
    if cut == "flip":
        data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(UserInputError, match="corrupt or truncated") as e:
        ck.load_checkpoint(saved).training_state()  # caught on opening
    assert str(f) in str(e.value) and "\n" not in str(e.value)
    # a scorer needs the model only: damage to the training state does not stop it
    assert ck.load_checkpoint(saved, need=("model",)).model_state


def test_training_state_that_does_not_match_its_tensors(saved):
    f = saved / "checkpoint.json"
    meta = json.loads(f.read_text())
    meta["training_state"]["optimizer"] = {"__tensor__": "nowhere"}
    f.write_bytes(ck.seal_meta(meta))  # a consistent checkpoint.json that names no tensor
    with pytest.raises(UserInputError, match="training_state does not match"):
        ck.load_checkpoint(saved).training_state()


def test_model_args_that_do_not_fit_the_weights(saved):
    c = ck.load_checkpoint(saved)  # a Linear's weights under lenet5's name
    with pytest.raises(UserInputError, match="do not fit the lenet5"):
        ck.model_from_checkpoint(c)
    c.meta["model_args"] = {"no_such_argument": 1}
    with pytest.raises(UserInputError, match="cannot build 'lenet5' with its model_args"):
        ck.model_from_checkpoint(c)


# ---- pickles -------------------------------------------------------------------------------

class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_cifar_batch_carrying_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    f = tmp_path / "data_batch_1"
    f.write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": [0]}))
    with pytest.raises(UnsafePickleError, match="refused to unpickle it, it names") as e:
        safe_load(f)
    assert not marker.exists() and "\n" not in str(e.value)


@pytest.mark.parametrize("case", ["truncated", "wrong_shape", "bad_labels", "few_labels",
                                  "object_array", "directory"])
def test_malformed_cifar_batches(tmp_path, case):
    f = tmp_path / "data_batch_1"
    data = np.zeros((2, 3072), np.uint8)
    batch = {b"data": data, b"labels": [0, 1]}
    if case == "wrong_shape":
        batch[b"data"] = np.zeros((2, 100), np.uint8)
    elif case == "bad_labels":
        batch[b"labels"] = ["x", None]
    elif case == "few_labels":
        batch[b"labels"] = [0]
    elif case == "object_array":
        batch[b"data"] = np.array([None, 1], dtype=object)
    raw = pickle.dumps(batch, protocol=2)
    if case == "truncated":
        raw = raw[: len(raw) // 2]
    if case == "directory":
        f.mkdir()
    else:
        f.write_bytes(raw)
    with pytest.raises(UserInputError) as e:
        _read_cifar_file(f, "labels")
    assert str(f) in str(e.value) and "\n" not in str(e.value)


# ---- end to end, through the command line --------------------------------------------------

def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "convzoo", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def test_cli_predict_skips_a_bomb_and_answers_for_the_rest(tmp_path):
    from convzoo import create_model

    model = create_model("lenet5_modern", num_classes=3)
    run = ck.save_checkpoint(tmp_path / "ck", model=model,
                             meta={"model": "lenet5_modern", "model_args": {"num_classes": 3},
                                   "class_names": ["p", "q", "r"]})
    (tmp_path / "bomb.png").write_bytes(bomb_png())
    (tmp_path / "ok.png").write_bytes(png(Image.new("L", (28, 28), 3)))
    r = _cli("predict", str(run), "bomb.png", "ok.png", "--format", "json", cwd=tmp_path)
    out = r.stdout + r.stderr
    assert "Traceback" not in out and "bomb.png" in out and "decompression bomb" in out
    assert "ok.png" in r.stdout


def test_cli_one_line_errors_for_a_damaged_checkpoint_and_a_one_class_folder(tmp_path):
    (tmp_path / "run" / "last").mkdir(parents=True)
    (tmp_path / "run" / "last" / "checkpoint.json").write_text('{"format": 3')
    r = _cli("eval", str(tmp_path / "run"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "checkpoint.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "one" / "cat").mkdir(parents=True)
    (tmp_path / "one" / "cat" / "1.png").write_bytes(png(Image.new("RGB", (8, 8))))
    r = _cli("train", "lenet5_modern", "--data", f"imagefolder:{tmp_path / 'one'}",
             "--epochs", "1", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "one class" in r.stderr
