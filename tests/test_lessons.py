"""Every lesson in lessons/ runs at its small scale (CONVZOO_LESSON_SMALL=1) and writes what it
says it writes (its WRITTEN list) into the folder it was given, nothing into the source tree;
every lesson the atlas names exists and is a jupytext percent file."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from convzoo.atlas.lectures import LECTURES

LESSONS_DIR = Path(__file__).resolve().parents[1] / "lessons"
LESSONS = sorted(p for p in LESSONS_DIR.glob("*.py") if not p.name.startswith("_"))


def tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_small_and_writes_what_it_says(path: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONVZOO_LESSON_SMALL", "1")
    monkeypatch.setenv("CONVZOO_LESSON_OUT", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # a relative path a lesson wrote by mistake lands here too
    before = tree(LESSONS_DIR)
    names = runpy.run_path(str(path), run_name="__main__")
    written = [Path(p) for p in names["WRITTEN"]]
    assert written, path.name
    for p in written:
        assert p.is_file() and p.stat().st_size > 0, p
        assert p.resolve().is_relative_to((tmp_path / path.stem).resolve()), p
    assert tree(LESSONS_DIR) == before


def test_the_atlas_names_existing_lessons_in_percent_format() -> None:
    named = {lec.lesson for lec in LECTURES}
    assert "" not in named, "a lecture page without a lesson"
    assert named <= {p.stem for p in LESSONS}
    for p in LESSONS:
        text = p.read_text(encoding="utf-8")
        assert "format_name: percent" in text or "formats: py:percent" in text, p.name
        assert text.count("# %% [markdown]") >= 2 and "\n# %%\n" in text, p.name
