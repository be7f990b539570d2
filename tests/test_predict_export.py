"""predict on a folder (top-k, CSV, the checkpoint it took); an ONNX file carries the class
names, mean, std and the checkpoint it came from."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from convzoo.cli import main

DATA = "fake:1x28x28:64:4"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pe") / "run"
    assert main(["train", "lenet5_modern", "--data", DATA, "--epochs", "1", "--batch-size",
                 "16", "--device", "cpu", "--out", str(out), "--quiet", "--no-report",
                 "--set", "tensorboard=false", "--set", "plots=false"]) == 0
    return out


def test_predict_on_a_folder(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from torchvision.io import write_png

    from convzoo.data.catalog import load_dataset

    ds = load_dataset(DATA)
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    for i, where in enumerate(("photos", "photos", "photos/sub")):
        write_png(ds.test.images[i], str(tmp_path / where / f"img{i}.png"))
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    capsys.readouterr()
    assert main(["predict", str(run_dir), str(tmp_path / "photos"), "--topk", "2",
                 "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [Path(r["path"]).name for r in rows] == ["img0.png", "img1.png", "img2.png"]
    assert set(rows[0]) == {"path", "class_1", "prob_1", "class_2", "prob_2", "error"}
    assert float(rows[0]["prob_1"]) >= float(rows[0]["prob_2"])
    assert "best/" in err and "validation" in err  # which checkpoint answered
    assert main(["predict", str(run_dir), str(tmp_path / "photos"), "--format", "json",
                 "--topk", "1", "--which", "last"]) == 0
    out, err = capsys.readouterr()
    assert [len(r["top5"]) for r in json.loads(out)] == [1, 1, 1] and "last/" in err


def test_onnx_metadata_names_classes_normalisation_and_checkpoint(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = tmp_path / "m.onnx"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best/" in printed
    meta = ort.InferenceSession(str(out)).get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == ["class0", "class1", "class2", "class3"]
    saved = json.loads((run_dir / "best" / "checkpoint.json").read_text())
    assert json.loads(meta["mean"]) == pytest.approx(saved["mean"])
    assert json.loads(meta["std"]) == pytest.approx(saved["std"])
    assert Path(meta["checkpoint"]) == run_dir / "best"


def test_a_failed_start_leaves_no_run_directory(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["train", "lenet5_modern", "--data", f"imagefolder:{tmp_path / 'none'}",
                 "--out", str(out), "--quiet"]) == 2
    assert "imagefolder" in capsys.readouterr().err and not out.exists()


def test_training_from_the_top_level_and_per_step_tensorboard(tmp_path: Path) -> None:
    import convzoo

    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    cfg = convzoo.TrainConfig(model="lenet5_modern", data="fake:1x28x28:64:4", epochs=1,
                              batch_size=8, device="cpu", out=str(tmp_path / "run"),
                              plots=False, log_every=2)
    s = convzoo.fit(cfg)
    ea = accumulator.EventAccumulator(str(tmp_path / "run" / "tensorboard" / "steps"))
    ea.Reload()
    assert [e.step for e in ea.Scalars("step/loss")] == list(range(2, s["steps"] + 1, 2))
