"""Render a stored run as the paper's table: LaTeX (booktabs), standalone HTML, terminal text.

Cell format is the paper's ``PSNR / SSIM``; within each column the best value is bold and the
second best underlined, PSNR and SSIM ranked separately on the printed (rounded) values as a
reader of the paper would. Rows are the reproduced methods of this run; the caption carries
the profile label, so a mini-profile table can never pass for the paper's.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from itertools import groupby

import jinja2
from tabulate import tabulate

import reports as _reports_package

TEMPLATES = pathlib.Path(_reports_package.__file__).resolve().parent / "templates"


@dataclass
class Mark:
    text: str
    rank: int = 0  # 1 best (bold), 2 second (underlined), 0 plain
    not_significant: bool = False  # best, but not significantly better than the second


NOT_SIGNIFICANT_NOTE = (
    "†: best PSNR not significantly better than the second best on the same images "
    "(95% paired bootstrap interval of the mean difference includes 0, or Wilcoxon signed-rank p ≥ 0.05)."
)


@dataclass
class Row:
    name: str
    cells: list[list[Mark]]  # one list per column: [PSNR, SSIM] or a single value
    params: str = ""


@dataclass
class Table:
    title: str
    caption: str
    label: str
    groups: list[tuple[str, int]]  # (header, span) over the column labels
    column_labels: list[str]
    rows: list[Row]
    show_params: bool
    footnotes: list[str] = field(default_factory=list)
    corner: str = "Method"


# Printed precision per metric display name, as in the paper's tables.
_DECIMALS = {"PSNR": 2, "SSIM": 3}


def _rank(values: list[float]) -> list[int]:
    distinct = sorted(set(values), reverse=True)
    best = distinct[0] if distinct else None
    second = distinct[1] if len(distinct) > 1 else None
    return [1 if v == best else 2 if v == second else 0 for v in values]


def _metric_names(result: dict) -> list[str]:
    from harness.metrics import get_protocol

    return [get_protocol(m).display for m in result["metrics"]]


def _marks(values: list[list[list[float]]], decimals: list[int], along_rows: bool) -> list[list[list[Mark]]]:
    """values[row][col][metric] → Marks ranked within each column (or each row)."""
    n_rows = len(values)
    n_cols = len(values[0]) if values else 0
    marks = [[[Mark(f"{v:.{decimals[k]}f}") for k, v in enumerate(cell)] for cell in row] for row in values]
    if n_rows == 0:
        return marks
    for k in range(len(decimals)):
        if along_rows:
            for i in range(n_rows):
                for j, rank in enumerate(_rank([round(values[i][j][k], decimals[k]) for j in range(n_cols)])):
                    marks[i][j][k].rank = rank if n_cols > 1 else 0
        else:
            for j in range(n_cols):
                for i, rank in enumerate(_rank([round(values[i][j][k], decimals[k]) for i in range(n_rows)])):
                    marks[i][j][k].rank = rank if n_rows > 1 else 0
    return marks


def build_tables(result: dict) -> list[Table]:
    """Turn a stored results document into display tables in the suite's layout.

    - ``table`` (Tables 1, 2): methods × columns, cells ``PSNR / SSIM``, Average and Params;
    - ``split_metrics`` (Table 3): the same as two tables, PSNR then SSIM;
    - ``ablation`` (Tables 4, 5): the Average only, one row per variant, or transposed
      (variants as columns, PSNR and SSIM as rows) when ``transpose`` is set.
    """
    layout = result.get("layout", {"kind": "table"})
    kind = layout.get("kind", "table")
    columns = result["columns"]
    metric_keys = list(result["metrics"])
    names = _metric_names(result)
    decimals = [_DECIMALS.get(n, 3) for n in names]
    methods = result["methods"]
    footnotes = list(result.get("footnotes", []))
    common = dict(title=result["title"], caption=result["caption"], label=result["profile_label"])

    def column_values(method: dict, keys: list[str]) -> list[list[float]]:
        cells = result["cells"][method["name"]]
        row = [[cells[c["id"]][k] for k in keys] for c in columns]
        row.append([result["averages"][method["name"]][k] for k in keys])
        return row

    if kind == "ablation":
        values = [[[result["averages"][m["name"]][k]] for k in metric_keys] for m in methods]
        if layout.get("transpose"):
            grid = [[values[j][i] for j in range(len(methods))] for i in range(len(metric_keys))]
            marks = [_marks([grid[i]], [decimals[i]], along_rows=True)[0] for i in range(len(metric_keys))]
            rows = [Row(names[i], marks[i]) for i in range(len(metric_keys))]
            header = layout.get("header", "Method")
            return [Table(**common, groups=[(m["name"], 1) for m in methods], column_labels=[""] * len(methods),
                          rows=rows, show_params=False, footnotes=footnotes, corner=header)]
        # values[i][k] holds one metric each; rank per metric column across the variants
        rows = []
        for i, m in enumerate(methods):
            rows.append(Row(m["name"], [], m.get("params_display", "")))
        for k in range(len(metric_keys)):
            column = _marks([[values[i][k]] for i in range(len(methods))], [decimals[k]], along_rows=False)
            for i in range(len(methods)):
                rows[i].cells.append(column[i][0])
        return [Table(**common, groups=[(n, 1) for n in names], column_labels=[""] * len(names), rows=rows,
                      show_params=result.get("show_params", False), footnotes=footnotes)]

    labels = [c["label"] for c in columns] + [""]  # "Average" spans both header rows
    groups = [(g, len(list(items))) for g, items in groupby(c["group"] for c in columns)] + [("Average", 1)]
    if kind == "split_metrics":
        tables = []
        for k, key in enumerate(metric_keys):
            values = [column_values(m, [key]) for m in methods]
            marks = _marks(values, [decimals[k]], along_rows=False)
            rows = [Row(m["name"], marks[i], m.get("params_display", "")) for i, m in enumerate(methods)]
            tables.append(Table(**{**common, "title": f"{common['title']} ({names[k]})"}, groups=groups,
                                column_labels=labels, rows=rows, show_params=result.get("show_params", True),
                                footnotes=footnotes))
        return tables

    values = [column_values(m, metric_keys) for m in methods]
    marks = _marks(values, decimals, along_rows=False)
    rows = [Row(m["name"], marks[i], m.get("params_display", "")) for i, m in enumerate(methods)]
    if len(rows) > 1 and result.get("per_image") and _mark_not_significant(result, rows, metric_keys[0]):
        footnotes.append(NOT_SIGNIFICANT_NOTE)
    return [Table(**common, groups=groups, column_labels=labels, rows=rows,
                  show_params=result.get("show_params", True), footnotes=footnotes)]


def build_table(result: dict) -> Table:
    """The first (for most layouts, the only) table of a results document."""
    return build_tables(result)[0]


def _mark_not_significant(result: dict, rows: list[Row], metric: str) -> bool:
    """Flag per-column best PSNR cells that a paired test cannot separate from the runner-up."""
    from harness.stats import paired_comparison

    per_method: dict[tuple[str, str], dict[str, float]] = {}
    for rec in result["per_image"]:
        per_method.setdefault((rec["method"], rec["column"]), {})[rec["image_id"]] = rec[metric]
    any_marked = False
    for j, column in enumerate(result["columns"]):
        best = [r for r in rows if r.cells[j][0].rank == 1]
        second = [r for r in rows if r.cells[j][0].rank == 2]
        if len(best) != 1 or not second:
            continue
        a = per_method.get((best[0].name, column["id"]), {})
        b = per_method.get((second[0].name, column["id"]), {})
        ids = sorted(set(a) & set(b))
        if len(ids) < 2:
            continue
        cmp = paired_comparison([a[i] for i in ids], [b[i] for i in ids])
        if not cmp.significant():
            best[0].cells[j][0].not_significant = True
            any_marked = True
    return any_marked


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_UNICODE = {"σ": r"$\sigma$", "—": "---", "–": "--", "×": r"$\times$", "Δ": r"$\Delta$", "†": r"$^\dagger$", "≥": r"$\geq$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for uni, tex in _LATEX_UNICODE.items():
        out = out.replace(uni, tex)
    return out


def _latex_mark(mark: Mark) -> str:
    text = {1: r"\textbf{%s}", 2: r"\underline{%s}"}.get(mark.rank, "%s") % mark.text
    return text + (r"$^\dagger$" if mark.not_significant else "")


def _environment(autoescape: bool, latex: bool = False) -> jinja2.Environment:
    # LaTeX is full of { } and %, so its templates use << >>, <% %> and <# #> instead.
    delimiters = dict(
        block_start_string="<%", block_end_string="%>", variable_start_string="<<",
        variable_end_string=">>", comment_start_string="<#", comment_end_string="#>",
    ) if latex else {}
    env = jinja2.Environment(
        **delimiters,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["tex"] = latex_escape
    env.filters["texmark"] = _latex_mark
    return env


def render_latex(table: Table) -> str:
    return _environment(autoescape=False, latex=True).get_template("table.tex.j2").render(t=table)


def render_html(*tables: Table) -> str:
    """One standalone page (inline CSS, no external assets) holding the tables."""
    return _environment(autoescape=True).get_template("table.html.j2").render(tables=list(tables))


def _text_mark(mark: Mark) -> str:
    return {1: "**%s**", 2: "_%s_"}.get(mark.rank, "%s") % mark.text + ("†" if mark.not_significant else "")


def render_text(table: Table) -> str:
    """A terminal table (tabulate): **bold** best, _underline_ second best."""
    headers = [table.corner] + [
        f"{g}\n{l}" if l else g
        for g, l in zip([g for g, n in table.groups for _ in range(n)], table.column_labels)
    ]
    if table.show_params:
        headers.append("Params")
    body = []
    for row in table.rows:
        line = [row.name] + [" / ".join(_text_mark(m) for m in cell) for cell in row.cells]
        if table.show_params:
            line.append(row.params)
        body.append(line)
    grid = tabulate(body, headers=headers, tablefmt="simple_grid", disable_numparse=True)
    notes = "\n".join(f"  {n}" for n in table.footnotes)
    legend = "**bold** = best, _underline_ = second best"
    return f"{table.title}\n[{table.label}]\n{grid}\n{table.caption}\n{legend}\n{notes}\n".rstrip() + "\n"


def render_all(result: dict) -> tuple[str, str, str]:
    """(LaTeX, HTML, text) for every table of a results document (two for split layouts)."""
    tables = build_tables(result)
    latex = "\n".join(render_latex(t) for t in tables)
    text = "\n".join(render_text(t) for t in tables)
    return latex, render_html(*tables), text
