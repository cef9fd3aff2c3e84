"""One self-contained HTML page per run: ``dacode-bench report RUN``.

The page holds every table of the run in the paper's format (the paper's printed rows beside the
reproduced ones, ranked as :mod:`reports.tables` decides, and the Δ-vs-paper view), the figures
(:mod:`reports.figures`, embedded as ``data:`` URIs, also written as PNG and PDF) and the
provenance: suite and its hash, profile and its label, seed, package versions, device, inference
policy, data protocol and manifest hash, training settings, each method's parameters and
training summary, timings. No script, style sheet, font or image is loaded from anywhere: the
file can be mailed. Everything taken from the run (method names, captions, notes) is HTML-escaped.
"""
from __future__ import annotations

import base64
import pathlib

from harness import atomic
from harness.results import RunResults, find_run, load
from reports.formats import environment
from reports.tables import Table, run_tables


def render_report(doc: RunResults, *, tables: list[Table] | None = None, figures=None,
                  figure_notes: list[str] | None = None) -> str:
    """The page as a string. ``figures``: :class:`reports.figures.FigureFile` list (PNG embedded)."""
    from importlib import metadata

    try:
        version = metadata.version("dacode-bench")
    except metadata.PackageNotFoundError:
        version = None
    embedded = [{
        "name": f.name, "title": f.title, "caption": f.caption, "files": f"{f.png.name}, {f.pdf.name}",
        "data": base64.b64encode(pathlib.Path(f.png).read_bytes()).decode("ascii"),
    } for f in (figures or [])]
    run_info = {"suite": doc.suite, "suite_sha256": doc.suite_sha256, "suite_file": doc.suite_file,
                "source": doc.source, "run_id": doc.run_id, "profile": doc.profile,
                "profile_label": doc.profile_label, "comparable_with_paper": doc.comparable_with_paper,
                "seed": doc.seed, "metrics": doc.metrics, "inference": doc.inference.get("description")}
    if doc.compared_runs:
        run_info["compared_runs"] = doc.compared_runs
    page_doc = doc.model_dump(mode="json", exclude={"per_image", "suite_document"})
    return environment(autoescape=True).get_template("report.html.j2").render(
        doc=page_doc, tables=tables if tables is not None else run_tables(doc), figures=embedded,
        figure_notes=figure_notes or [], run_info=run_info, version=version,
    )


def write_report(run: str | pathlib.Path, out: str | pathlib.Path | None = None, *, figures: bool = True,
                 figures_dir: str | pathlib.Path | None = None, data_root=None,
                 max_images: int | None = None, codebook_method: str | None = None, device: str = "cpu",
                 log=print) -> tuple[pathlib.Path, list, list[str]]:
    """Write the report of a run (default ``<run>/report.html``, figures under ``<run>/figures``).

    Returns (path of the page, the figure files, notes on what was skipped and why)."""
    run_dir = find_run(run)
    doc = load(run_dir)
    out = pathlib.Path(out) if out else run_dir / "report.html"
    notes: list[str] = []
    made = []
    if figures:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            notes.append("figures skipped: matplotlib is not installed (pip install matplotlib)")
        else:
            from reports.figures import figures_for_run

            result = figures_for_run(doc, run_dir, pathlib.Path(figures_dir) if figures_dir else run_dir / "figures",
                                     data_root=data_root, max_images=max_images, codebook_method=codebook_method,
                                     device=device, log=log)
            made, notes = result.figures, result.notes
    else:
        notes.append("figures not drawn (--no-figures)")
    atomic.write_text(out, render_report(doc, figures=made, figure_notes=notes))  # umask permissions
    return out, made, notes
