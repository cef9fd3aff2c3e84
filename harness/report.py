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
    cells: list[tuple[Mark, Mark]]
    params: str


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


def _rank(values: list[float]) -> list[int]:
    distinct = sorted(set(values), reverse=True)
    best = distinct[0] if distinct else None
    second = distinct[1] if len(distinct) > 1 else None
    return [1 if v == best else 2 if v == second else 0 for v in values]


def build_table(result: dict) -> Table:
    """Turn a stored results document into a display table with ranks."""
    columns = result["columns"]
    labels = [c["label"] for c in columns] + [""]  # "Average" spans both header rows
    groups = [(g, len(list(items))) for g, items in groupby(c["group"] for c in columns)] + [("Average", 1)]
    psnr_key, ssim_key = result["metrics"]
    rows_values = []
    for method in result["methods"]:
        cells = result["cells"][method["name"]]
        values = [(cells[c["id"]][psnr_key], cells[c["id"]][ssim_key]) for c in columns]
        values.append(tuple(result["averages"][method["name"]][k] for k in (psnr_key, ssim_key)))
        rows_values.append((method, values))
    n_cols = len(labels)
    ranks_p = [_rank([round(v[j][0], 2) for _, v in rows_values]) for j in range(n_cols)]
    ranks_s = [_rank([round(v[j][1], 3) for _, v in rows_values]) for j in range(n_cols)]
    rows = []
    for i, (method, values) in enumerate(rows_values):
        cells = [
            (Mark(f"{p:.2f}", ranks_p[j][i]), Mark(f"{s:.3f}", ranks_s[j][i]))
            for j, (p, s) in enumerate(values)
        ]
        rows.append(Row(method["name"], cells, method.get("params_display", "")))
    footnotes = list(result.get("footnotes", []))
    if len(rows) < 2:  # a single row has nothing to be best against
        for row in rows:
            for a, b in row.cells:
                a.rank = b.rank = 0
    elif result.get("per_image") and _mark_not_significant(result, rows, psnr_key):
        footnotes.append(NOT_SIGNIFICANT_NOTE)
    return Table(
        title=result["title"],
        caption=result["caption"],
        label=result["profile_label"],
        groups=groups,
        column_labels=labels,
        rows=rows,
        show_params=result.get("show_params", True),
        footnotes=footnotes,
    )


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


def render_html(table: Table) -> str:
    return _environment(autoescape=True).get_template("table.html.j2").render(t=table)


def _text_mark(mark: Mark) -> str:
    return {1: "**%s**", 2: "_%s_"}.get(mark.rank, "%s") % mark.text + ("†" if mark.not_significant else "")


def render_text(table: Table) -> str:
    headers = ["Method"] + [
        f"{g}\n{l}" if l else g
        for g, l in zip([g for g, n in table.groups for _ in range(n)], table.column_labels)
    ]
    if table.show_params:
        headers.append("Params")
    body = []
    for row in table.rows:
        line = [row.name] + [f"{_text_mark(p)} / {_text_mark(s)}" for p, s in row.cells]
        if table.show_params:
            line.append(row.params)
        body.append(line)
    grid = tabulate(body, headers=headers, tablefmt="simple_grid", disable_numparse=True)
    notes = "\n".join(f"  {n}" for n in table.footnotes)
    legend = "**bold** = best, _underline_ = second best"
    return f"{table.title}\n[{table.label}]\n{grid}\n{table.caption}\n{legend}\n{notes}\n".rstrip() + "\n"
