"""The data catalog: every reader on small generated files, the look-up order, the errors."""

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from convzoo.data import ArraySplit, dataset_names, load_dataset, places
from convzoo.data.idx import idx_bytes, read_idx
from convzoo.data.readers import FASHION_MNIST_CLASSES
from convzoo.data.safe_pickle import UnsafePickleError, safe_load
from convzoo.errors import UserInputError


@pytest.fixture(autouse=True)
def _isolated_places(tmp_path, monkeypatch):
    """No real data set on this machine leaks in: empty HOME, no $CONVZOO_DATA, an empty
    system folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CONVZOO_DATA", raising=False)
    monkeypatch.setattr(places, "SYSTEM_DIR", tmp_path / "system")


def write_idx(folder: Path, n_train=5, n_test=3, gz=False, seed=0, size=28):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        arrays[prefix] = (images, labels)
        for kind, arr, nd in (("images", images, 3), ("labels", labels, 1)):
            name = f"{prefix}-{kind}-idx{nd}-ubyte"
            data = idx_bytes(arr)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return arrays


def test_idx_raw(tmp_path):
    arrays = write_idx(tmp_path / "d" / "mnist")
    ds = load_dataset("mnist", data_dir=tmp_path / "d")
    assert isinstance(ds.train, ArraySplit) and ds.image_size == (1, 28, 28)
    assert torch.equal(ds.train.images[:, 0], torch.from_numpy(arrays["train"][0]))
    assert torch.equal(ds.test.labels, torch.from_numpy(arrays["t10k"][1]).long())
    assert ds.classes == [str(i) for i in range(10)]
    assert ds.source == str(tmp_path / "d" / "mnist")
    assert abs(ds.mean[0] - arrays["train"][0].mean() / 255) < 1e-6


def test_idx_gz_in_torchvision_layout(tmp_path):
    arrays = write_idx(tmp_path / "FashionMNIST" / "raw", gz=True)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert len(ds.train) == 5 and len(ds.test) == 3
    assert torch.equal(ds.test.images[:, 0], torch.from_numpy(arrays["t10k"][0]))
    assert ds.classes == FASHION_MNIST_CLASSES and ds.classes[9] == "Ankle boot"


def test_training_split_read_on_first_use_and_checked_against_test(tmp_path):
    folder = tmp_path / "mnist"
    write_idx(folder)
    (folder / "train-images-idx3-ubyte").write_bytes(
        idx_bytes(np.zeros((5, 14, 14), np.uint8)))  # half-size training images
    ds = load_dataset("mnist", data_dir=tmp_path)
    assert ds.image_size == (1, 28, 28) and len(ds.test) == 3
    with pytest.raises(UserInputError, match="training images are 1x14x14, test images 1x28x28"):
        _ = ds.mean


def test_idx_rejects_bad_magic_and_truncation(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    assert read_idx(p).tolist() == [1, 2, 3]
    p.write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    with pytest.raises(UserInputError, match="not an IDX file"):
        read_idx(p)
    p.write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x01\x02\x03")
    with pytest.raises(UserInputError, match="truncated"):
        read_idx(p)


def cifar_dict(n, label_key, seed):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"batch", label_key: rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}


def dump(path: Path, obj, protocol=2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def write_cifar10(folder: Path, n=2):
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]):
        batches[name] = cifar_dict(n, b"labels", i)
        dump(folder / name, batches[name])
    dump(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)],
                                   b"num_vis": 3072})
    return batches


def test_cifar10_pickles(tmp_path):
    batches = write_cifar10(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert len(ds.train) == 10 and len(ds.test) == 2 and ds.image_size == (3, 32, 32)
    first = batches["data_batch_1"][b"data"][0].reshape(3, 32, 32)
    assert torch.equal(ds.train.images[0], torch.from_numpy(first))
    assert ds.test.labels.tolist() == batches["test_batch"][b"labels"]
    assert ds.classes == [f"c{i}" for i in range(10)]
    assert len(ds.mean) == 3 and len(ds.std) == 3


def test_cifar100_pickles_protocol5_str_keys(tmp_path, monkeypatch):
    folder = tmp_path / "env" / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", 4), ("test", 3)):
        d = cifar_dict(n, b"fine_labels", n)
        dump(folder / name, {k.decode(): v for k, v in d.items()}, protocol=5)
    dump(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]}, protocol=5)
    monkeypatch.setenv("CONVZOO_DATA", str(tmp_path / "env"))
    ds = load_dataset("cifar100")
    assert len(ds.train) == 4 and len(ds.test) == 3 and ds.classes[99] == "f99"


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    dump(folder / "data_batch_3", {b"data": Evil(), b"labels": []})
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert len(ds.test) > 0  # the test split is read alone: training files wait until used
    with pytest.raises(UnsafePickleError, match=r"data_batch_3: refused.*system"):
        _ = ds.train
    assert not marker.exists()
    p = tmp_path / "objects.pkl"
    dump(p, np.array([1, "x"], dtype=object))
    with pytest.raises(UnsafePickleError, match="only numeric dtypes"):
        safe_load(p)
    dump(p, {b"data": np.zeros((2, 3), np.float32), b"names": ["a", b"b", 3, 1.5, None]})
    assert safe_load(p)[b"data"].shape == (2, 3)


def test_lookup_order_data_dir_then_env_then_home(tmp_path, monkeypatch):
    write_idx(tmp_path / "given" / "mnist", n_train=2)
    write_idx(tmp_path / "env" / "mnist", n_train=3)
    write_idx(tmp_path / "home" / ".cache" / "convzoo" / "MNIST" / "raw", n_train=4)
    monkeypatch.setenv("CONVZOO_DATA", str(tmp_path / "env"))
    assert len(load_dataset("mnist", data_dir=tmp_path / "given").train) == 2
    assert len(load_dataset("mnist").train) == 3
    monkeypatch.delenv("CONVZOO_DATA")
    assert len(load_dataset("mnist").train) == 4
    # the explicit folder may hold the files directly; the shared places may not
    write_idx(tmp_path / "flat", n_train=6)
    assert len(load_dataset("mnist", data_dir=tmp_path / "flat").train) == 6


def test_missing_data_set_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_DATA", str(tmp_path / "env"))
    with pytest.raises(UserInputError) as e:
        load_dataset("fashion-mnist", data_dir=tmp_path / "given")
    msg = str(e.value)
    assert "\n" not in msg
    for place in (tmp_path / "given", tmp_path / "env", tmp_path / "home" / ".cache" / "convzoo",
                  tmp_path / "system"):
        assert str(place) in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "--download" in msg
    with pytest.raises(UserInputError, match="cifar-10-batches-py.*--download"):
        load_dataset("cifar10")


def test_unknown_names_suggest():
    with pytest.raises(UserInputError, match="did you mean cifar10"):
        load_dataset("cifar11")
    assert "fashion-mnist" in dataset_names()
    with pytest.raises(UserInputError, match="CxHxW"):
        load_dataset("fake:3x32x:10")


def test_digits_seeded_split():
    ds = load_dataset("digits", seed=0)
    assert ds.image_size == (1, 8, 8) and len(ds.train) + len(ds.test) == 1797
    assert ds.train.images.max() == 255 and ds.classes[3] == "3"
    assert abs(len(ds.test) - 0.2 * 1797) < 10  # every class keeps its share
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    assert torch.equal(ds.test.images, again.test.images)
    assert not torch.equal(ds.test.images, other.test.images)


def test_lfw_faces_and_non_faces():
    ds = load_dataset("lfw", seed=3)
    assert ds.classes == ["face", "non-face"] and ds.image_size == (1, 25, 25)
    assert ds.train.labels.bincount().tolist() == [80, 80]
    assert ds.test.labels.bincount().tolist() == [20, 20]
    assert ds.train.images.dtype == torch.uint8 and int(ds.train.images.max()) > 200


def test_mnist5k():
    ds = load_dataset("mnist5k", seed=0)
    assert ds.image_size == (1, 28, 28) and len(ds.train) == 4000 and len(ds.test) == 1000
    assert torch.bincount(ds.test.labels).tolist() == [100] * 10


def test_fake_is_seeded_and_learnable():
    ds = load_dataset("fake:3x8x8:300:3", seed=5)
    assert ds.image_size == (3, 8, 8) and len(ds.train) == 300 and len(ds.test) == 60
    assert ds.num_classes == 3 and torch.bincount(ds.train.labels).tolist() == [100] * 3
    assert torch.equal(ds.train.images, load_dataset("fake:3x8x8:300:3", seed=5).train.images)
    assert not torch.equal(ds.train.images, load_dataset("fake:3x8x8:300:3", seed=6).train.images)
    # the nearest class mean already classifies most test images
    x, y = ds.train.images.flatten(1).float(), ds.train.labels
    centroids = torch.stack([x[y == k].mean(0) for k in range(3)])
    pred = torch.cdist(ds.test.images.flatten(1).float(), centroids).argmin(1)
    assert (pred == ds.test.labels).float().mean() > 0.9
    assert load_dataset("fake").image_size == (3, 32, 32)
    # HxW leaves the channels open, and fake images are grey then (sizes.parse_size's rule)
    assert load_dataset("fake:8x6:10:2").image_size == (1, 8, 6)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist(monkeypatch):
    monkeypatch.setattr(places, "SYSTEM_DIR", Path("/usr/share/datasets"))
    ds = load_dataset("fashion-mnist")
    assert ds.source == "/usr/share/datasets/fashion-mnist"
    assert len(ds.train) == 60000 and len(ds.test) == 10000 and ds.image_size == (1, 28, 28)
    assert abs(ds.mean[0] - 0.2860) < 1e-3 and abs(ds.std[0] - 0.3530) < 1e-3
