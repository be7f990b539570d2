"""The package's metadata is in pyproject.toml; this file only adds the lecture figures.

The atlas's lecture pages show figures that need training, photos or downloaded weights to
make, committed once under docs/figures. build_py copies exactly those the pages name
(LECTURES in src/convzoo/atlas/lectures.py) into the build's convzoo/atlas/figures/, so an
installed wheel has them and docs/figures stays their one copy in the repository. MANIFEST.in
puts docs/figures into the sdist, from which `python -m build` makes the wheel.
"""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
FIGURES = HERE / "docs" / "figures"


def lecture_figures() -> list[str]:
    # lectures.py imports only the standard library: read on its own, without convzoo's torch
    spec = importlib.util.spec_from_file_location(
        "convzoo_lectures", HERE / "src" / "convzoo" / "atlas" / "lectures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lecture_figures()


class BuildPyWithLectureFigures(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads docs/figures of the checkout
            return
        names = lecture_figures()
        missing = [n for n in names if not (FIGURES / n).is_file()]
        if missing:
            raise SystemExit(f"the lecture figures {', '.join(missing)} are not in {FIGURES}; "
                             "make them with the commands in src/convzoo/atlas/lectures.py")
        dest = Path(self.build_lib) / "convzoo" / "atlas" / "figures"
        self.mkpath(str(dest))
        for name in names:
            self.copy_file(str(FIGURES / name), str(dest / name))


setup(cmdclass={"build_py": BuildPyWithLectureFigures})
