"""Fuzzing what a person types: `calc` flags, size strings, `--set key=value` and recipe TOML
give a result or one convzoo error, never another exception."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_run import run
from convzoo.errors import ConvzooError
from convzoo.sizes import MAX_SIDE, parse_size
from convzoo.train.config import FIELDS, TrainConfig, load_recipe, parse_override, replace

FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SIZE_TEXT = st.one_of(
    st.text(alphabet="0123456789x*X -+.e", max_size=14),
    st.lists(st.integers(-5, 10**13), min_size=1, max_size=4).map(
        lambda v: "x".join(map(str, v))),
    st.text(max_size=10))
TOML_VALUE = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(repr),
    st.sampled_from(["true", "false", "[]", "[1, 2]", "[\"a\"]", "{a = 1}", "\"x\"", "nan",
                     "inf", "-1", "0", "3x32x32", "'cosine'", "[30, \"x\"]", ""]),
    st.text(max_size=8))


@FUZZ
@given(SIZE_TEXT)
def test_size_strings(text: str) -> None:
    try:
        c, h, w = parse_size(text)
    except ConvzooError as e:
        assert "\n" not in str(e)
        return
    assert c >= 0 and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE


@FUZZ
@given(st.sampled_from(sorted(FIELDS)), TOML_VALUE)
def test_set_key_value(key: str, raw: str) -> None:
    """`--set key=value` on every field: the config takes it or says why in one line."""
    try:
        k, v = parse_override(f"{key}={raw}")
        cfg = replace(TrainConfig(model="lenet5", data="mnist5k"), {k: v}, "--set")
        cfg.validate()
    except ConvzooError as e:
        assert "\n" not in str(e)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(FIELDS) + ["notes", "nosuchfield"]), TOML_VALUE,
                       max_size=4), st.booleans())
def test_recipe_toml(tmp_path_factory: pytest.TempPathFactory, table: dict[str, str],
                     cite: bool) -> None:
    body = "".join(f"{k} = {v}\n" for k, v in table.items())
    if cite:
        body = 'source = "a paper"\n' + body
    path = Path(tmp_path_factory.mktemp("recipe")) / "r.toml"
    path.write_text(body)
    try:
        load_recipe(str(path)).validate()
    except ConvzooError as e:
        assert "\n" not in str(e)
        return
    parsed = tomllib.loads(body)  # what loaded was valid TOML that cites its source
    assert "source" in parsed


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["conv", "pool"]),
       nums=st.lists(st.integers(-3, 10**7), min_size=5, max_size=5),
       stack=st.text(alphabet="0123456789x/,-", max_size=16))
def test_calc_flags(capsys: pytest.CaptureFixture, kind: str, nums: list[int],
                    stack: str) -> None:
    """Any numbers give a layer's figures (none negative) or one line and exit 2; a stack
    gives its fields, jumps and starts (a start may be negative: with padding the first
    output's centre lies in the padding, as 1x1 filters with pad 1 put it at -1)."""
    flags = ["--input", "--filter", "--stride", "--pad", "--in-channels"]
    argv = ["calc", kind]
    for flag, n in zip(flags, nums):
        argv += [flag, str(n)]
    for args in (argv, ["calc", "rf", stack, "--format", "json"]):
        code, out, err = run(capsys, *args)
        assert "Traceback" not in err
        if code != 0:
            assert code == 2 and len(err.strip().splitlines()) == 1
        elif args is argv:
            assert out.strip() and not re.search(r"(?<![\w-])-\d", out)
        else:
            for layer in json.loads(out)["layers"]:
                assert min(layer["rf"]) >= 1 and layer["jump"] >= 1, layer
