"""The package works outside the repository: a wheel built from the sources, installed into a
fresh virtual environment, finds its recipes and trains from there."""

from __future__ import annotations

import json
import os
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
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
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
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in data_files() if f not in names]
    assert not missing, f"package data left out of the wheel: {missing}"
    assert "convzoo/recipes/resnet_cifar.toml" in names


def test_installed_wheel_trains_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
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
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import convzoo; print(convzoo.__file__)"],
                 cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), f"convzoo imported from {where}, not the wheel"

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


def test_recipe_by_name_and_by_path(tmp_path):
    from convzoo.train.config import find_recipe, load_recipe, recipe_names

    assert "resnet_cifar" in recipe_names()
    shipped = find_recipe("resnet_cifar")
    assert Path(str(shipped)).is_relative_to(PACKAGE)
    own = tmp_path / "mine.toml"
    own.write_text('source = "my notes"\nlr = 0.05\nepochs = 3\n')
    cfg = load_recipe(str(own))
    assert (cfg.lr, cfg.epochs, cfg.recipe) == (0.05, 3, "mine")
