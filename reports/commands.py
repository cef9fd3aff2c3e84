"""``dacode-bench compare`` and ``dacode-bench report`` (registered by harness.cli)."""
from __future__ import annotations

import argparse
import sys


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness import atomic
    from reports.compare import compare_runs
    from reports.formats import render

    comparison = compare_runs(args.runs, against=args.against, new=args.new)
    text = render(args.format, comparison.tables)
    if args.out:
        atomic.write_text(args.out, text)
        new = ", ".join(comparison.new_methods) or "none"
        print(f"comparison written: {args.out} ({args.format}; new methods: {new})")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.runner import check_device
    from reports.page import write_report

    check_device(args.device)
    if args.max_images is not None and args.max_images < 1:
        from harness.errors import HarnessError

        raise HarnessError(f"--max-images {args.max_images}: must be at least 1")
    log = (lambda *_: None) if args.quiet else print
    path, figures, notes = write_report(
        args.run, args.out, figures=not args.no_figures, figures_dir=args.figures_dir,
        data_root=args.data_root, max_images=args.max_images, codebook_method=args.codebook_method,
        device=args.device, log=log,
    )
    where = f"; figures (PNG, PDF): {figures[0].png.parent}" if figures else ""
    print(f"report written: {path}{where}")
    for note in notes:
        print(f"  note: {note}")
    return 0


def register(sub) -> None:
    from reports.formats import FORMATS

    cmp = sub.add_parser("compare", help="put new methods' rows beside the reproduced (and the paper's) rows")
    cmp.add_argument("runs", nargs="+", metavar="RUN",
                     help="run folders (or their results.json, or folders with a LATEST pointer) of one table")
    cmp.add_argument("--against", choices=["paper"], default=None, help="also show the rows printed in the paper")
    cmp.add_argument("--new", nargs="+", default=None, metavar="NAME",
                     help="rows to treat as new methods (default: rows that are not the suite's own nor printed)")
    cmp.add_argument("--format", choices=list(FORMATS), default="text", help="output format (default: text)")
    cmp.add_argument("--out", default=None, help="write to this file instead of standard output")
    cmp.set_defaults(func=_cmd_compare)

    rep = sub.add_parser("report", help="one self-contained HTML page: tables, figures and provenance of a run")
    rep.add_argument("run", help="run folder (or its results.json, or a folder with a LATEST pointer)")
    rep.add_argument("--out", default=None, help="the page (default: <run>/report.html)")
    rep.add_argument("--figures-dir", default=None, help="where the PNG/PDF figures go (default: <run>/figures)")
    rep.add_argument("--no-figures", action="store_true", help="tables and provenance only (no model is rebuilt)")
    rep.add_argument("--data-root", default=None, help="benchmark data root (paper profile figures)")
    rep.add_argument("--max-images", type=int, default=None, help="test images per column for the figures")
    rep.add_argument("--codebook-method", default=None, help="the row whose codebook is drawn (default: the last)")
    rep.add_argument("--device", default="cpu", help="device for rebuilding models (default: cpu)")
    rep.add_argument("--quiet", action="store_true")
    rep.set_defaults(func=_cmd_report)
