"""One self-contained HTML page per run: ``dacode-bench report RUN``.

The page holds every table of the run in the paper's format (the paper's printed rows beside the
reproduced ones, ranked as :mod:`harness.report` decides, and the Δ-vs-paper view), the figures
(:mod:`harness.figures`, embedded as ``data:`` URIs, also written as PNG and PDF) and the
provenance: suite and its hash, profile and its label, seed, package versions, device, data
protocol and manifest hash, training settings, each method's parameters and training summary,
timings. No script, style sheet, font or image is loaded from anywhere: the file can be mailed.
Everything taken from the run (method names, captions, notes) is HTML-escaped.
"""
from __future__ import annotations

import base64
import pathlib

from harness import atomic, report
from harness.errors import HarnessError


def resolve_run_dir(path: str | pathlib.Path) -> pathlib.Path:
    """A run folder, its results.json, or a folder with a LATEST pointer (as ``gate`` accepts)."""
    path = pathlib.Path(path)
    if path.is_file() and path.name == "results.json":
        path = path.parent
    if (path / "LATEST").is_file():
        path = path / (path / "LATEST").read_text().strip()
    if not (path / "results.json").is_file():
        raise HarnessError(f"'{path}' is not a run folder (no results.json)")
    return path


def report_tables(doc: dict, suite=None) -> list[report.Table]:
    """The run's tables with the paper's rows beside them, then the Δ-vs-paper view."""
    paper = report.paper_rows(doc, suite)
    tables = report.build_tables(doc, paper=paper or None)
    if paper:
        delta = report.build_delta_table(doc, paper)
        if delta is not None:
            tables.append(delta)
    return tables


def render_report(doc: dict, *, tables: list[report.Table] | None = None, figures=None,
                  figure_notes: list[str] | None = None) -> str:
    """The page as a string. ``figures``: :class:`harness.figures.FigureFile` list (PNG embedded)."""
    from importlib import metadata

    try:
        version = metadata.version("dacode-bench")
    except metadata.PackageNotFoundError:
        version = None
    embedded = [{
        "name": f.name, "title": f.title, "caption": f.caption, "files": f"{f.png.name}, {f.pdf.name}",
        "data": base64.b64encode(pathlib.Path(f.png).read_bytes()).decode("ascii"),
    } for f in (figures or [])]
    run_info = {k: doc.get(k) for k in ("suite", "suite_sha256", "source", "run_id", "profile", "profile_label",
                                        "comparable_with_paper", "seed", "metrics") if k in doc}
    if doc.get("compared_runs"):
        run_info["compared_runs"] = doc["compared_runs"]
    env = report._environment(autoescape=True)
    return env.get_template("report.html.j2").render(
        doc={**doc, "provenance": doc.get("provenance") or {}, "data": doc.get("data") or {},
             "train": doc.get("train") or {}},
        tables=tables if tables is not None else report_tables(doc), figures=embedded,
        figure_notes=figure_notes or [], run_info=run_info, version=version,
    )


def write_report(run: str | pathlib.Path, out: str | pathlib.Path | None = None, *, figures: bool = True,
                 figures_dir: str | pathlib.Path | None = None, suite=None, data_root=None,
                 max_images: int | None = None, codebook_method: str | None = None, device: str = "cpu",
                 log=print) -> tuple[pathlib.Path, list, list[str]]:
    """Write the report of a run (default ``<run>/report.html``, figures under ``<run>/figures``).

    Returns (path of the page, the figure files, notes on what was skipped and why)."""
    from harness.store import load_results

    run_dir = resolve_run_dir(run)
    doc = load_results(run_dir)
    out = pathlib.Path(out) if out else run_dir / "report.html"
    notes: list[str] = []
    made = []
    if figures:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            notes.append("figures skipped: matplotlib is not installed (pip install matplotlib)")
        else:
            from harness.figures import figures_for_run

            result = figures_for_run(doc, run_dir, pathlib.Path(figures_dir) if figures_dir else run_dir / "figures",
                                     suite=suite, data_root=data_root, max_images=max_images,
                                     codebook_method=codebook_method, device=device, log=log)
            made, notes = result.figures, result.notes
    else:
        notes.append("figures not drawn (--no-figures)")
    from harness.suite import load_suite

    loaded = None
    if suite is not None:
        loaded = suite if hasattr(suite, "reported") else load_suite(suite)
    html = render_report(doc, tables=report_tables(doc, loaded), figures=made, figure_notes=notes)
    atomic.write_text(out, html)
    readable(out)
    return out, made, notes


def readable(path: pathlib.Path) -> None:
    """Give a written file the permissions the umask allows (the atomic write creates it 0600)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
