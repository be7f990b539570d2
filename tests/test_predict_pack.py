"""`convzoo predict SOURCE --data packed:FILE`: one row per image of the pack's test split, with
its true class; the same rows from the folder it was packed from; bad packs refused in one
line."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from cli_run import run
from convzoo import create_model
from convzoo.data.pack import TEST, Pack, open_pack, write_pack
from convzoo.runs import checkpoint as ck

CLASSES = ["ant", "bee", "cow"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(folder, raw pack of it, a lenet5_modern checkpoint for its classes)."""
    root = tmp_path_factory.mktemp("pp")
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / "photos" / name).mkdir(parents=True)
        for i in range(6):
            a = rng.integers(0, 256, (20 + i, 28 - i, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / "photos" / name / f"{i}.png")
    pack = root / "p.pack"
    write_pack(str(root / "photos"), pack, max_side=64, quality=None, progress=False)
    model = create_model("lenet5_modern", num_classes=3, in_channels=3)
    run_dir = ck.save_checkpoint(
        root / "ck", model=model, rng=False,
        meta={"model": "lenet5_modern", "model_args": {"num_classes": 3, "in_channels": 3},
              "class_names": CLASSES, "input_size": [3, 32, 32]})
    open_pack.cache_clear()
    return root / "photos", pack, run_dir


def test_predict_names_every_test_image_of_a_pack_with_its_label(made, capsys):
    folder, pack, run_dir = made
    code, out, err = run(capsys, "predict", str(run_dir), "--data", f"packed:{pack}",
                         "--topk", "2", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    p = Pack(pack)
    test = np.flatnonzero(p.index["split"] == TEST)
    assert len(rows) == len(test) > 0
    assert [r["label"] for r in rows] == [CLASSES[y] for y in p.index["label"][test]]
    assert [r["path"] for r in rows] == [f"packed:{pack}#{i}" for i in test]
    assert all(float(r["prob_1"]) >= float(r["prob_2"]) and not r["error"] for r in rows)
    assert f"{len(test)} test images" in err
    # the folder it was packed from: the same images in the same order, named by file, and
    # (raw pixels, no shrinking) the same predictions
    code, out2, _ = run(capsys, "predict", str(run_dir), "--data", f"imagefolder:{folder}",
                        "--topk", "2", "--format", "json")
    assert code == 0
    rows2 = json.loads(out2)
    assert [r["label"] for r in rows2] == [r["label"] for r in rows]
    assert all(r["path"].startswith(str(folder)) for r in rows2)
    assert [[c["class"] for c in r["top5"]] for r in rows2] == \
        [[r["class_1"], r["class_2"]] for r in rows]


def test_bad_packs_and_arguments_get_one_line(made, tmp_path, capsys):
    _, pack, run_dir = made
    cut = tmp_path / "cut.pack"
    cut.write_bytes(pack.read_bytes()[: pack.stat().st_size // 2])
    for data, words in ((f"packed:{cut}", "truncated"), (f"packed:{tmp_path}/no.pack",
                                                         "does not exist")):
        code, out, err = run(capsys, "predict", str(run_dir), "--data", data)
        assert code == 2 and words in err and "Traceback" not in err and not out
        assert len([line for line in err.splitlines() if "error" in line]) == 1
    code, _, err = run(capsys, "predict", str(run_dir))
    assert code == 2 and "--data" in err
    # IMAGE is optional now, and files after options are still taken
    code, out, err = run(capsys, "predict", str(run_dir), "--topk", "1", "--format", "csv",
                         str(made[0] / "ant" / "0.png"))
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 1, err
