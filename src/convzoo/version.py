"""The installed version of convzoo, as pip knows it (the number in pyproject.toml)."""

from __future__ import annotations


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("convzoo")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from . import __version__

        return f"{__version__} (not installed)"
