"""Rendering: a run's results document as the paper's tables, pages and figures.

    from harness.results import load_run
    from reports import run_tables, render
    doc = load_run("results/table1_three_task/mini")        # a run folder, results.json or LATEST
    print(render("text", run_tables(doc)))                  # paper rows beside the run's, then Δ vs paper

- ``tables``  — the table model (rows of ranked cells), paper rows, Δ-vs-paper, significance marks;
- ``layouts`` — registry of table layouts (``table``, ``split_metrics``, ``ablation``, ``protocols``);
- ``formats`` — registry of output formats (``text``, ``markdown``, ``latex``, ``html``);
- ``compare`` — a new method's rows beside other runs' (``dacode-bench compare``);
- ``page``    — the self-contained HTML report (``dacode-bench report``);
- ``figures`` — the paper's figures (codebook activations, qualitative grid);
- ``templates/`` — the jinja2 templates (loaded with ``PackageLoader``).
"""
from reports.formats import FORMATS, render
from reports.layouts import LAYOUTS
from reports.tables import Table, build_delta_table, build_table, build_tables, run_tables

__all__ = ["FORMATS", "LAYOUTS", "Table", "build_delta_table", "build_table", "build_tables", "render", "run_tables"]
