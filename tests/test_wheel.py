"""The package works outside the repository: a wheel built from the sources, installed into a
fresh virtual environment, finds its recipes and trains from there, and builds an atlas whose
lecture pages show the committed figures the wheel carries."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "convzoo"


def data_files() -> list[str]:
    """Every file under src/convzoo that is not Python source: what the wheel must carry."""
    return sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix not in (".py", ".pyc"))


def _copy_sources(dest: Path) -> Path:
    """The files a build reads, copied, so building leaves nothing in the checkout."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "setup.py", "MANIFEST.in"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "docs" / "figures", dest / "docs" / "figures")
    shutil.copytree(REPO / "src", dest / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-cache-dir", "-q", "-w", str(tmp / "dist"), str(src)], cwd=tmp)
    (found,) = (tmp / "dist").glob("convzoo-*.whl")
    return found


def test_wheel_carries_every_data_file(wheel):
    from convzoo.atlas.lectures import lecture_figures

    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in data_files() if f not in names]
    assert not missing, f"package data left out of the wheel: {missing}"
    assert "convzoo/recipes/resnet_cifar.toml" in names
    # exactly the committed figures the lecture pages show, copied from docs/figures
    figures = sorted(n.rsplit("/", 1)[1] for n in names
                     if n.startswith("convzoo/atlas/figures/"))
    assert figures == lecture_figures() and "experiment_degradation.png" in figures


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> tuple[Path, dict[str, str], Path, Path]:
    """(the venv's bin folder, an environment without the checkout, a folder outside it, the
    installed package)."""
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                      "['purelib'])"]).stdout.strip())
    # The other packages (torch, ...) come from this environment: a .pth file adds its
    # site-packages. The .pth files in there (the editable install of the checkout) are not
    # processed from a path a .pth added, so the checkout's convzoo stays out.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          "--no-cache-dir", str(wheel)])

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    work = tmp / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import convzoo; print(convzoo.__file__)"],
                 cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"convzoo imported from {where}, not the wheel"
    return bin_dir, env, work, Path(where).parent


def test_installed_wheel_trains_outside_the_repository(installed):
    bin_dir, env, work, _ = installed
    convzoo = str(bin_dir / "convzoo")
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert _run([convzoo, "--version"], cwd=work, env=env).stdout.strip() == \
        f"convzoo {version}"

    out = work / "run"
    _run([convzoo, "train", "resnet20", "--recipe", "resnet_cifar", "--data",
          "fake:3x32x32:64:10", "--max-steps", "2", "--device", "cpu", "--out", str(out)],
         cwd=work, env=env)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["model"], summary["recipe"]) == ("resnet20", "resnet_cifar")
    assert (summary["status"], summary["steps"]) == ("completed", 2)
    assert (out / "last").is_dir()


def test_installed_wheel_atlas_shows_the_lecture_figures(installed):
    from convzoo.atlas.lectures import LECTURES, lecture_figures

    bin_dir, env, work, package = installed
    # the installed package has every lecture figure; no checkout is near to find them in
    assert sorted(p.name for p in (package / "atlas" / "figures").iterdir()) == \
        lecture_figures()
    site = work / "atlas"
    _run([str(bin_dir / "convzoo"), "atlas", "--out", str(site), "--models", "lenet5"],
         cwd=work, env=env)
    for lec in LECTURES:
        text = (site / "lectures" / f"{lec.slug}.html").read_text(encoding="utf-8")
        shown = re.findall(r'<img class="fig" src="../figures/([^"]+)"', text)
        # the committed figures and the drawings the atlas makes, every one a file in the site
        assert shown == list(lec.figures) + [d.file for d in lec.drawings], lec.slug
        for name in shown:
            assert (site / "figures" / name).stat().st_size > 1000, name


def test_recipe_by_name_and_by_path(tmp_path):
    from convzoo.train.config import find_recipe, load_recipe, recipe_names

    assert "resnet_cifar" in recipe_names()
    shipped = find_recipe("resnet_cifar")
    assert Path(str(shipped)).is_relative_to(PACKAGE)
    own = tmp_path / "mine.toml"
    own.write_text('source = "my notes"\nlr = 0.05\nepochs = 3\n')
    cfg = load_recipe(str(own))
    assert (cfg.lr, cfg.epochs, cfg.recipe) == (0.05, 3, "mine")
