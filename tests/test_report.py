"""The HTML run report of a tiny run: every section, images inlined, nothing fetched; and the
page as headless Chromium renders it (skipped, saying why, where chromium is missing)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

from convzoo.cli import main
from convzoo.report import build_report
from convzoo.report.html import SECTIONS
from convzoo.report.rundir import read_run
from convzoo.train.defaults import resolve_config
from convzoo.train.loop import fit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    r = resolve_config("lenet5_modern", flags={"data": "fake:1x32x32:96:4", "epochs": 2,
                                               "batch_size": 16, "device": "cpu",
                                               "out": str(out)},
                       overrides={"tensorboard": False, "lr": 0.02})
    fit(r.config, extra_meta={"config_sources": r.sources})
    return out


@pytest.fixture(scope="module")
def page(run_dir):
    path = build_report(run_dir)
    return path, path.read_text(encoding="utf-8")


def test_every_section_and_inlined_images(page):
    path, text = page
    assert path.name == "report.html"
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in text, sid
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 5  # layer chart, curves, confusion, per-class, mistakes
    for b64 in images:  # each one a real PNG
        with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
            assert im.format == "PNG" and im.width > 100 and im.height > 100
    assert "<script" not in text and not re.search(r'(src|href)="https?:', text)


def test_the_page_says_what_the_run_did(page, run_dir):
    _, text = page
    run = read_run(run_dir)
    assert run.sources["lr"] == "--set" and run.sources["recipe"] == "model default"
    # the config table names each value's source
    assert re.search(r"<td>lr</td><td>0.02</td><td><span class=\"src---set\">--set", text)
    assert re.search(r"<td>epochs</td><td>2</td><td><span class=\"src-flag\">flag", text)
    assert "recipe lenet5_modern_mnist" in text  # momentum etc. from the model's default
    assert "the model's default" in text
    test = run.summary["test"]
    # the page scores the test set again from the checkpoint: the same top-1 as the run's own
    assert f"{100 * (1 - test['top1']):.2f}%" in text
    for name in ("class0", "class3"):
        assert f"<td>{name}</td>" in text
    assert "images/s" in text and run.summary["versions"]["torch"] in text


def test_cli_writes_where_asked_and_bad_input_is_one_line(run_dir, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--out", str(out), "--no-predictions"]) == 0
    assert "Not drawn" in out.read_text() and str(out) in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("convzoo report: error:") for line in err)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get "
                    "install chromium; `make test` installs it as root)")
def test_headless_chromium_renders_sections_and_images(page, tmp_path):
    path, _ = page
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", path.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom, sid
    assert len(re.findall(r"<img ", dom)) == 5
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=1200,2400", f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as im:
        assert im.size == (1200, 2400)
        # not a blank page: the charts and text give many distinct colours
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 500
