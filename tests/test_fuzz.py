"""Fuzzing the readers of untrusted files: random bytes and mutations of real files give a
convzoo error (or a valid result), never another exception."""

import io
import json
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from convzoo import create_model
from convzoo.data.images import BadImageError, read_image
from convzoo.data.safe_pickle import safe_load
from convzoo.errors import ConvzooError
from convzoo.runs import checkpoint as ck

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FILES = ("model.safetensors", "state.safetensors", "checkpoint.json")


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    """A real checkpoint of a small model with optimiser, RNG and mid-epoch state."""
    model = create_model("lenet5_modern", num_classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.zeros(2, 1, 32, 32)).sum().backward()
    opt.step()
    path = tmp_path_factory.mktemp("fuzz") / "ck"
    return ck.save_checkpoint(path, model=model, optimizer=opt,
                              meta={"model": "lenet5_modern", "model_args": {"num_classes": 3},
                                    "epoch": 1, "step": 4, "class_names": ["a", "b", "c"]},
                              generators={"loader": torch.Generator().manual_seed(0)},
                              extra_state={"epoch": 1, "batches_done": 4})


def _read_everything(path: Path) -> None:
    c = ck.load_checkpoint(path)
    c.training_state()
    c.extra_state()
    ck.model_from_checkpoint(c, ema=False)
    c.restore_rng()


def _mutate(data: bytes, edits: list[tuple[int, int, int]], cut: int | None) -> bytes:
    b = bytearray(data)
    for kind, pos, value in edits:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] ^= 1 << (value % 8)  # a flipped bit
        elif kind == 1:
            b[i] = value % 256  # a changed byte
        elif kind == 2:
            del b[i]
        else:
            b.insert(i, value % 256)
    if cut is not None and b:
        b = b[: cut % len(b)]
    return bytes(b)


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**31), st.integers(0, 255)),
                 min_size=1, max_size=6)


def _check(real_path: Path, name: str, data: bytes, digests: bool = True) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ck"
        shutil.copytree(real_path, path)
        if not digests:  # as a version 1 checkpoint: the damage reaches the tensor reader
            meta = json.loads((path / "checkpoint.json").read_text())
            meta.pop("sha256")
            (path / "checkpoint.json").write_text(json.dumps(meta))
        (path / name).write_bytes(data)
        try:
            _read_everything(path)
        except ConvzooError as e:
            assert "\n" not in str(e)
        torch.manual_seed(0)


def test_the_real_checkpoint_reads(real):
    _read_everything(real)  # so the fuzz below starts from a file that works


@FUZZ
@given(name=st.sampled_from(FILES[:2]), edits=EDITS, cut=st.none() | st.integers(0, 2**31),
       digests=st.booleans())
def test_mutated_checkpoint_files(real, name, edits, cut, digests):
    _check(real, name, _mutate((real / name).read_bytes(), edits, cut), digests)


@FUZZ
@given(edits=EDITS, cut=st.none() | st.integers(0, 2**31))
def test_mutated_checkpoint_json(real, edits, cut):
    name = "checkpoint.json"
    _check(real, name, _mutate((real / name).read_bytes(), edits, cut))


@FUZZ
@given(name=st.sampled_from(FILES), data=st.binary(max_size=2048))
def test_random_bytes_as_checkpoint_files(real, name, data):
    _check(real, name, data)


def _json_values():
    leaf = st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats() | st.text(max_size=8)
    return st.recursive(leaf, lambda kids: st.lists(kids, max_size=3)
                        | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)


@FUZZ
@given(key=st.sampled_from(["model", "model_args", "epoch", "step", "files", "sha256",
                            "training_state", "class_names", "version", "format"]),
       value=_json_values())
def test_checkpoint_json_fields_of_any_type(real, key, value):
    meta = json.loads((real / "checkpoint.json").read_text())
    meta[key] = value
    _check(real, "checkpoint.json", json.dumps(meta).encode())


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()


@FUZZ
@given(edits=EDITS, cut=st.none() | st.integers(0, 2**31),
       channels=st.sampled_from([None, 1, 3]))
def test_mutated_images(edits, cut, channels):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "x.png"
        f.write_bytes(_mutate(PNG, edits, cut))
        try:
            img = read_image(f, channels=channels)
        except BadImageError as e:
            assert str(f) in str(e) and "\n" not in str(e)
        else:
            assert img.dtype == torch.uint8 and img.ndim == 3


PICKLE = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2)


@FUZZ
@given(edits=EDITS, cut=st.none() | st.integers(0, 2**31))
def test_mutated_cifar_pickles(edits, cut):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "data_batch_1"
        f.write_bytes(_mutate(PICKLE, edits, cut))
        try:
            safe_load(f)
        except ConvzooError as e:
            assert "\n" not in str(e)
