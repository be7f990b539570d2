"""`convzoo list`, `summary`, `calc`: output and every error path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli_run import run


def test_list_with_pattern(capsys) -> None:
    code, out, _ = run(capsys, "list", "vgg1?")
    assert code == 0
    assert "vgg16" in out and "138,357,544" in out and "alexnet" not in out


def test_list_json(capsys) -> None:
    code, out, _ = run(capsys, "list", "lenet*", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["model"] for r in rows] == ["lenet5", "lenet5_modern"]
    assert rows[0]["params"] == "60,000"


def test_list_no_match(capsys) -> None:
    code, _, err = run(capsys, "list", "nothing-like-this")
    assert code == 2 and "no model matches" in err


def test_summary_json_schema(capsys) -> None:
    code, out, _ = run(capsys, "summary", "alexnet", "--format", "json")
    d = json.loads(out)
    assert code == 0
    assert d["model"] == "alexnet" and d["input_size"] == [3, 227, 227]
    for key in ("layers", "total_params", "trainable_params", "total_macs",
                "activation_elements"):
        assert key in d
    first = d["layers"][0]
    assert set(first) >= {"name", "type", "output_shape", "params", "macs", "activations"}
    assert first["output_shape"] == [1, 96, 55, 55]
    assert d["total_params"] == 60_965_224


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_summary_formats(capsys, fmt: str) -> None:
    code, out, _ = run(capsys, "summary", "lenet5", "--format", fmt)
    assert code == 0 and "stem.c1" in out
    if fmt == "csv":  # plain numbers for machines
        import csv
        import io

        rows = [r for r in csv.reader(io.StringIO(out)) if r]
        assert rows[0][:4] == ["layer", "type", "output", "params"]
        assert rows[0][-3:] == ["RF", "jump", "start"]
        assert rows[-1][0] == "total" and rows[-1][3] == "60000"
        assert rows[1][:4] == ["stem.c1", "Conv2d", "6x28x28", "156"] and rows[1][7] == "5"
    else:  # thousands separators for people
        assert "60,000" in out and "117,600" in out


def test_summary_json_has_receptive_fields(capsys) -> None:
    code, out, _ = run(capsys, "summary", "alexnet", "--format", "json")
    layers = {r["name"]: r for r in json.loads(out)["layers"]}
    assert code == 0
    assert layers["stem.conv"]["rf"] == [11, 11] and layers["stem.conv"]["jump"] == [4, 4]
    assert layers["stem.pool"]["rf"] == [19, 19]


def test_summary_input_and_batch(capsys) -> None:
    code, out, _ = run(capsys, "summary", "vgg11", "--input", "3x64x64", "--batch", "2",
                       "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["input_size"] == [3, 64, 64] and d["batch_size"] == 2
    code, out, _ = run(capsys, "summary", "lenet5_modern", "--input", "3x32x32",
                       "--format", "json")
    assert code == 0 and json.loads(out)["layers"][0]["params"] == 3 * 25 * 6 + 6


def test_summary_paper_convention(capsys) -> None:
    code, out, _ = run(capsys, "summary", "vgg16", "--convention", "paper")
    assert code == 0
    assert "(3*3*3)*64 = 1,728" in out and "7*7*512*4096 = 102,760,448" in out
    assert "15,237,608" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["summary", "vgg61"], "did you mean"),
    (["summary", "vgg16", "--input", "3xax224"], "malformed size"),
    (["summary", "alexnet", "--input", "3x32x32"], "too small for alexnet"),
    (["summary", "vgg16", "--batch", "0"], "batch size"),
    (["calc", "conv", "--input", "7", "--filter", "3", "--stride", "3"], "2.33"),
    (["calc", "pool", "--input", "2", "--filter", "3"], "does not fit"),
    (["calc", "conv", "--input", "7", "--filter", "0"], "filter must be"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, needle) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unknown_flag_exits_2(capsys) -> None:
    code, _, err = run(capsys, "summary", "vgg16", "--no-such-flag")
    assert code == 2 and "unrecognized arguments" in err


def test_calc_conv_lecture_exercise(capsys) -> None:
    code, out, _ = run(capsys, "calc", "conv", "--input", "32", "--filter", "5", "--stride",
                       "1", "--pad", "2", "--in-channels", "3", "--out-channels", "10")
    assert code == 0
    assert "= 32" in out and "32x32x10" in out
    assert "5*5*3 + 1 bias = 76" in out and "76*10 = 760" in out


def test_calc_pool(capsys) -> None:
    code, out, _ = run(capsys, "calc", "pool", "--input", "55", "--filter", "3", "--stride",
                       "2", "--in-channels", "96")
    assert code == 0 and "= 27" in out and "27x27x96" in out


@pytest.mark.parametrize("cmd", [["list"], ["summary"], ["calc", "conv"], ["calc", "pool"]])
def test_every_subcommand_help_has_an_example(capsys, cmd) -> None:
    code, out, _ = run(capsys, *cmd, "--help")
    assert code == 0 and "example" in out


def test_entry_point_runs_as_module() -> None:
    r = subprocess.run([sys.executable, "-m", "convzoo", "summary", "nosuchnet"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("convzoo summary: error: unknown model")
