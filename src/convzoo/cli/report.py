"""`convzoo report RUN_DIR`: a training run as one self-contained HTML page."""

from __future__ import annotations

import argparse

from .common import emit, formatter


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="a run as one HTML page: config, model, curves, confusion, mistakes",
        **formatter("examples:\n"
                    "  convzoo report runs/lenet5-fashion-mnist-20250101-120000\n"
                    "  convzoo report runs/x --out x.html --device cuda\n"
                    "  convzoo report runs/x --no-predictions   (no test-set scoring)"))
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training run's directory")
    p.add_argument("--out", metavar="FILE.html", help="where to write it "
                   "(default RUN_DIR/report.html)")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda",
                   help="where to score the test images (default cpu)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="score only the first N test images")
    p.add_argument("--no-predictions", action="store_true",
                   help="leave out the confusion matrix, per-class accuracy and mistakes")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..errors import UserInputError
    from ..report import build_report
    from ..runtime.device import resolve_device

    if args.limit is not None and args.limit < 1:
        raise UserInputError(f"--limit must be at least 1, got {args.limit}")
    if args.out is not None and not args.out.strip():
        raise UserInputError("--out is empty: give the report a file name, e.g. --out run.html")
    if args.out is not None and not args.out.lower().endswith((".html", ".htm")):
        raise UserInputError(f"--out {args.out}: the report is HTML, name it FILE.html")
    device = str(resolve_device(args.device))
    path = build_report(args.run_dir, args.out, device=device, limit=args.limit,
                        predictions=not args.no_predictions)
    emit(f"report: {path} (open it in a browser; it needs no network)")
    return 0
