"""A training run as one self-contained HTML page: `build_report(run_dir)`, `convzoo report`."""

from .html import build_report, render_report

__all__ = ["build_report", "render_report"]
