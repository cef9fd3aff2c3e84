"""Render a stored run as the paper's tables: LaTeX (booktabs), standalone HTML, terminal/Markdown text.

Cell format is the paper's ``PSNR / SSIM``; within each column the best value is bold and the
second best underlined, PSNR and SSIM ranked separately on the printed (rounded) values as a
reader of the paper would. The caption carries the profile label, so a mini-profile table can
never pass for the paper's.

Rows come in three kinds, drawn in sections of one table:

- ``paper``: a row as printed in the paper (the suite's ``reported`` rows), drawn in italics
  (LaTeX, text) or italic grey (HTML) under the heading "As printed in the paper";
- ``reproduced``: a row computed in this run (plain);
- ``new``: a method that is not one of the suite's own rows (``dacode-bench compare``).

Ranking rule (decided here, stated in every mixed table's footnote): on a profile that is
``comparable_with_paper`` (same benchmark sets and protocol) all rows are ranked together. On
any other profile (mini) the paper rows are ranked only among themselves, as the paper marks
them, and the reproduced/new rows only among themselves: a mini-profile number is never bold
or underlined against a paper number. The Δ-vs-paper view (:func:`build_delta_table`) prints
reproduced minus printed for methods present in both; on a non-comparable profile its caption
says that the differences reflect the profile, not a reproduction gap.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from itertools import groupby

import jinja2
from tabulate import tabulate

import reports as _reports_package

TEMPLATES = pathlib.Path(_reports_package.__file__).resolve().parent / "templates"

ROW_KINDS = ("paper", "reproduced", "new")


@dataclass
class Mark:
    text: str
    rank: int = 0  # 1 best (bold), 2 second (underlined), 0 plain
    not_significant: bool = False  # best, but not significantly better than the second


NOT_SIGNIFICANT_NOTE = (
    "†: best PSNR not significantly better than the second best on the same images "
    "(95% paired bootstrap interval of the mean difference includes 0, or Wilcoxon signed-rank p ≥ 0.05)."
)


def ranking_note(profile: str, comparable: bool) -> str:
    if comparable:
        return ("Rows printed in the paper are in italics and copied from it; bold/underline rank them together "
                "with the rows reproduced here on the same benchmark data and protocol.")
    return (f"Rows printed in the paper are in italics and ranked only among themselves; rows computed under the "
            f"{profile} profile are ranked only among themselves: a {profile}-profile number is never ranked "
            "against a paper number.")


@dataclass
class Row:
    name: str
    cells: list[list[Mark]]  # one list per column: [PSNR, SSIM] or a single value
    params: str = ""
    kind: str = "reproduced"  # paper | reproduced | new | delta
    method: str | None = None  # the method's name in per_image (None for paper rows)


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
    sections: dict[str, str] = field(default_factory=dict)  # row kind → heading, for tables mixing kinds

    @property
    def has_marks(self) -> bool:
        return any(m.rank for r in self.rows for cell in r.cells for m in cell)

    @property
    def n_columns(self) -> int:
        return 1 + len(self.column_labels) + (1 if self.show_params else 0)

    def headed_rows(self) -> list[tuple[str | None, Row]]:
        """(heading or None, row): a heading before the first row of each section of a mixed table."""
        kinds = {r.kind for r in self.rows}
        out, previous = [], None
        for row in self.rows:
            heading = None
            if len(kinds) > 1 and row.kind != previous:
                heading = self.sections.get(row.kind, row.kind)
            out.append((heading, row))
            previous = row.kind
        return out


# Printed precision per metric display name, as in the paper's tables.
_DECIMALS = {"PSNR": 2, "SSIM": 3}
_AVERAGE = "__average__"


def _rank(values: list[float]) -> list[int]:
    distinct = sorted(set(values), reverse=True)
    best = distinct[0] if distinct else None
    second = distinct[1] if len(distinct) > 1 else None
    return [1 if v == best else 2 if v == second else 0 for v in values]


def _metric_names(result: dict) -> list[str]:
    from harness.metrics import get_protocol

    return [get_protocol(m).display for m in result["metrics"]]


# -- the rows' numbers before layout ------------------------------------------------------------


@dataclass
class _Entry:
    name: str
    kind: str
    cells: dict[str, list[float | None]]  # column id (or _AVERAGE) → one value per metric
    params: str = ""
    method: str | None = None


def _field(obj, name, default=None):
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def paper_rows(result: dict, suite=None) -> list:
    """The suite's rows as printed in the paper (``reported``); [] when the suite cannot be found.

    ``suite`` is a loaded Suite or a suite id/path; default: the run's suite by name.
    """
    from harness.errors import HarnessError
    from harness.suite import load_suite

    try:
        suite = load_suite(suite or result["suite"]) if not hasattr(suite, "reported") else suite
    except (HarnessError, KeyError):
        return []
    return list(suite.reported)


def _entries(result: dict, paper: list | None, new_methods) -> list[_Entry]:
    keys = list(result["metrics"])
    columns = [c["id"] for c in result["columns"]]
    entries: list[_Entry] = []
    for row in paper or []:
        cells = {cid: list(v) for cid, v in (_field(row, "cells") or {}).items()}
        average = _field(row, "average")
        if average is not None:
            cells[_AVERAGE] = list(average)
        entries.append(_Entry(_field(row, "method"), "paper", cells, _field(row, "params") or ""))
    new = set(new_methods or ())
    ours = []
    for m in result["methods"]:
        name = m["name"]
        got = result["cells"].get(name, {})
        cells = {cid: [got[cid].get(k) for k in keys] for cid in columns if cid in got}
        if name in result.get("averages", {}):
            cells[_AVERAGE] = [result["averages"][name].get(k) for k in keys]
        ours.append(_Entry(name, "new" if name in new else "reproduced", cells, m.get("params_display", "") or "", name))
    # reproduced rows before new ones, each in run order
    entries += [e for e in ours if e.kind == "reproduced"] + [e for e in ours if e.kind == "new"]
    return entries


def _ranking_groups(kinds: list[str], comparable: bool) -> list[list[int]]:
    """Row indices ranked together (see the module docstring)."""
    if comparable:
        return [list(range(len(kinds)))]
    paper = [i for i, k in enumerate(kinds) if k == "paper"]
    ours = [i for i, k in enumerate(kinds) if k != "paper"]
    return [g for g in (paper, ours) if g]


def _grid(values: list[list[list[float | None] | None]], decimals, groups: list[list[int]],
          along_rows: bool = False) -> list[list[list[Mark]]]:
    """values[row][col][metric] (None = not printed) → Marks ranked within each column per
    group of rows (or, ``along_rows``, within each row across the columns)."""
    n_cols = len(values[0]) if values else 0
    n_metrics = max((len(cell) for row in values for cell in row if cell), default=0)
    dec = decimals if callable(decimals) else (lambda i, j, k: decimals[k])
    marks = [[[Mark(f"{v:.{dec(i, j, k)}f}") if v is not None else Mark("–") for k, v in enumerate(cell)]
              if cell else [Mark("–") for _ in range(n_metrics)] for j, cell in enumerate(row)]
             for i, row in enumerate(values)]

    def rank_positions(positions: list[tuple[int, int, int]]) -> None:
        present = [(p, round(values[p[0]][p[1]][p[2]], dec(*p))) for p in positions
                   if values[p[0]][p[1]] and values[p[0]][p[1]][p[2]] is not None]
        if len(present) < 2:
            return
        for (i, j, k), rank in zip([p for p, _ in present], _rank([v for _, v in present])):
            marks[i][j][k].rank = rank

    for k in range(n_metrics):
        if along_rows:
            for group in groups:
                rank_positions([(i, j, k) for i in group for j in range(n_cols)])
        else:
            for j in range(n_cols):
                for group in groups:
                    rank_positions([(i, j, k) for i in group])
    return marks


def _marks(values: list[list[list[float]]], decimals: list[int], along_rows: bool) -> list[list[list[Mark]]]:
    """values[row][col][metric] → Marks ranked within each column (or each row), all rows together."""
    if along_rows:
        return [_grid([row], decimals, [[0]], along_rows=True)[0] for row in values]
    return _grid(values, decimals, [list(range(len(values)))])


# -- tables -------------------------------------------------------------------------------------


def _sections(result: dict) -> dict[str, str]:
    comparable = bool(result.get("comparable_with_paper", False))
    profile = result.get("profile", "this")
    reproduced = "Reproduced here" if comparable else f"Reproduced here ({profile} profile)"
    return {"paper": "As printed in the paper", "reproduced": reproduced, "new": "New methods"}


def build_tables(result: dict, *, paper: list | None = None, new_methods=()) -> list[Table]:
    """Turn a stored results document into display tables in the suite's layout.

    - ``table`` (Tables 1, 2): methods × columns, cells ``PSNR / SSIM``, Average and Params;
    - ``split_metrics`` (Table 3): the same as two tables, PSNR then SSIM;
    - ``ablation`` (Tables 4, 5): the Average only, one row per variant, or transposed
      (variants as columns, PSNR and SSIM as rows) when ``transpose`` is set.

    ``paper``: rows as printed (:func:`paper_rows`) to show beside the reproduced ones;
    ``new_methods``: names of this document's methods to put in a "New methods" section.
    """
    layout = result.get("layout", {"kind": "table"})
    kind = layout.get("kind", "table")
    columns = result["columns"]
    metric_keys = list(result["metrics"])
    names = _metric_names(result)
    decimals = [_DECIMALS.get(n, 3) for n in names]
    footnotes = list(result.get("footnotes", []))
    comparable = bool(result.get("comparable_with_paper", False))
    entries = _entries(result, paper, new_methods)
    kinds = [e.kind for e in entries]
    groups = _ranking_groups(kinds, comparable)
    if "paper" in kinds and len(set(kinds)) > 1:
        footnotes.append(ranking_note(result.get("profile", "this"), comparable))
    common = dict(title=result["title"], caption=result["caption"], label=result["profile_label"],
                  sections=_sections(result))
    show_params = result.get("show_params", True)

    def rows_of(marks) -> list[Row]:
        return [Row(e.name, marks[i], e.params, e.kind, e.method) for i, e in enumerate(entries)]

    if kind == "ablation":
        averages = [e.cells.get(_AVERAGE) for e in entries]
        if layout.get("transpose"):
            return [_transposed(result, entries, names, decimals, comparable, common, footnotes, layout)]
        values = [[[avg[k]] if avg else None for k in range(len(metric_keys))] for avg in averages]
        marks = _grid(values, _column_decimals(decimals), groups)
        return [Table(**common, groups=[(n, 1) for n in names], column_labels=[""] * len(names), rows=rows_of(marks),
                      show_params=result.get("show_params", False), footnotes=footnotes)]

    col_ids = [c["id"] for c in columns] + [_AVERAGE]
    labels = [c["label"] for c in columns] + [""]  # "Average" spans both header rows
    header_groups = [(g, len(list(items))) for g, items in groupby(c["group"] for c in columns)] + [("Average", 1)]
    if kind == "split_metrics":
        tables = []
        for k in range(len(metric_keys)):
            values = [[[e.cells[c][k]] if e.cells.get(c) else None for c in col_ids] for e in entries]
            rows = rows_of(_grid(values, [decimals[k]], groups))
            notes = list(footnotes)
            if k == 0 and result.get("per_image") and _mark_not_significant(result, rows, metric_keys[0]):
                notes.append(NOT_SIGNIFICANT_NOTE)
            tables.append(Table(**{**common, "title": f"{common['title']} ({names[k]})"}, groups=header_groups,
                                column_labels=labels, rows=rows, show_params=show_params, footnotes=notes))
        return tables

    values = [[e.cells.get(c) for c in col_ids] for e in entries]
    rows = rows_of(_grid(values, decimals, groups))
    if len(rows) > 1 and result.get("per_image") and _mark_not_significant(result, rows, metric_keys[0]):
        footnotes.append(NOT_SIGNIFICANT_NOTE)
    return [Table(**common, groups=header_groups, column_labels=labels, rows=rows, show_params=show_params,
                  footnotes=footnotes)]


def _column_decimals(decimals: list[int]):
    """Decimals for a grid whose columns are the metrics (one value per cell)."""
    return lambda i, j, k: decimals[j]


def _transposed(result, entries, names, decimals, comparable, common, footnotes, layout) -> Table:
    """Variants as columns, one row per metric per section (Table 4)."""
    variants: list[str] = []
    for e in entries:  # paper order first, then variants only this run has
        if e.name not in variants:
            variants.append(e.name)
    section_kinds = [k for k in ROW_KINDS if any(e.kind == k for e in entries)]
    values, row_meta = [], []
    for sk in section_kinds:
        by_name = {e.name: e for e in entries if e.kind == sk}
        for k, n in enumerate(names):
            values.append([[by_name[v].cells[_AVERAGE][k]] if v in by_name and by_name[v].cells.get(_AVERAGE) else None
                           for v in variants])
            row_meta.append((sk, k, n))
    # rank along each metric's rows: per section, or across sections when comparable
    marks = [[[Mark("–")] for _ in variants] for _ in values]
    for k in range(len(names)):
        idx = [i for i, (sk, kk, _) in enumerate(row_meta) if kk == k]
        groups = _ranking_groups([row_meta[i][0] for i in idx], comparable)
        sub = _grid([values[i] for i in idx], [decimals[k]], groups, along_rows=True)
        for local, i in enumerate(idx):
            marks[i] = sub[local]
    rows = [Row(n, marks[i], "", sk, None) for i, (sk, _, n) in enumerate(row_meta)]
    return Table(**common, groups=[(v, 1) for v in variants], column_labels=[""] * len(variants), rows=rows,
                 show_params=False, footnotes=footnotes, corner=layout.get("header", "Method"))


def build_table(result: dict, **kw) -> Table:
    """The first (for most layouts, the only) table of a results document."""
    return build_tables(result, **kw)[0]


def build_delta_table(result: dict, paper: list | None = None) -> Table | None:
    """Reproduced minus printed, per cell, for the methods in both this run and the paper.

    Columns follow the layout (columns + Average; the Average alone for ablations); each cell is
    ``ΔPSNR / ΔSSIM``. None when no method of the run is printed in the paper.
    """
    paper = paper_rows(result) if paper is None else paper
    printed = {_field(r, "method"): r for r in paper}
    names = _metric_names(result)
    decimals = [_DECIMALS.get(n, 3) for n in names]
    keys = list(result["metrics"])
    kind = result.get("layout", {}).get("kind", "table")
    columns = [] if kind == "ablation" else result["columns"]
    col_ids = [c["id"] for c in columns] + [_AVERAGE]
    rows = []
    for m in result["methods"]:
        row = printed.get(m["name"])
        if row is None:
            continue
        ref = {cid: list(v) for cid, v in (_field(row, "cells") or {}).items()}
        if _field(row, "average") is not None:
            ref[_AVERAGE] = list(_field(row, "average"))
        got = {cid: [result["cells"].get(m["name"], {}).get(cid, {}).get(k) for k in keys] for cid in col_ids[:-1]}
        got[_AVERAGE] = [result.get("averages", {}).get(m["name"], {}).get(k) for k in keys]
        cells = []
        for cid in col_ids:
            cell = []
            for k in range(len(keys)):
                a, b = (got.get(cid) or [None] * len(keys))[k], (ref.get(cid) or [None] * len(keys))[k]
                cell.append(Mark("–" if a is None or b is None else f"{a - b:+.{decimals[k]}f}"))
            cells.append(cell)
        rows.append(Row(m["name"], cells, kind="delta", method=m["name"]))
    if not rows:
        return None
    comparable = bool(result.get("comparable_with_paper", False))
    caption = (f"Reproduced minus printed, per cell ({' / '.join(names)}), for the methods both in this run and in "
               "the paper; positive means higher than printed.")
    if not comparable:
        caption += (f" This run used the {result.get('profile', '')} profile: the differences reflect its data and "
                    "model sizes, not a reproduction gap.")
    if kind == "ablation":
        groups, labels = [("Average " + " / ".join(f"Δ{n}" for n in names), 1)], [""]
    else:
        groups = [(g, len(list(items))) for g, items in groupby(c["group"] for c in columns)] + [("Average", 1)]
        labels = [c["label"] for c in columns] + [""]
    return Table(title=f"{result['title']} — Δ vs paper", caption=caption, label=result["profile_label"],
                 groups=groups, column_labels=labels, rows=rows, show_params=False)


def _mark_not_significant(result: dict, rows: list[Row], metric: str) -> bool:
    """Flag per-column best PSNR cells that a paired test cannot separate from the runner-up.

    Only rows with per-image results (reproduced or new, not paper rows) take part."""
    from harness.stats import paired_comparison

    per_method: dict[tuple[str, str], dict[str, float]] = {}
    for rec in result["per_image"]:
        per_method.setdefault((rec["method"], rec["column"]), {})[rec["image_id"]] = rec[metric]
    any_marked = False
    ours = [r for r in rows if r.method is not None and r.kind != "paper"]
    for j, column in enumerate(result["columns"]):
        best = [r for r in ours if r.cells[j][0].rank == 1]
        second = [r for r in ours if r.cells[j][0].rank == 2]
        if len(best) != 1 or not second:
            continue
        a = per_method.get((best[0].method, column["id"]), {})
        b = per_method.get((second[0].method, column["id"]), {})
        ids = sorted(set(a) & set(b))
        if len(ids) < 2:
            continue
        cmp = paired_comparison([a[i] for i in ids], [b[i] for i in ids])
        if not cmp.significant():
            best[0].cells[j][0].not_significant = True
            any_marked = True
    return any_marked


# -- rendering ----------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_LATEX_UNICODE = {"σ": r"$\sigma$", "—": "---", "–": "--", "×": r"$\times$", "Δ": r"$\Delta$", "†": r"$^\dagger$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "±": r"$\pm$", "→": r"$\rightarrow$", "β": r"$\beta$",
                  "α": r"$\alpha$", "−": "$-$", "≈": r"$\approx$", "·": r"$\cdot$", "…": r"\ldots{}", "’": "'", "“": "``", "”": "''"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for uni, tex in _LATEX_UNICODE.items():
        out = out.replace(uni, tex)
    # anything else outside ASCII would stop pdflatex without inputenc support: spell it out
    return "".join(ch if ord(ch) < 128 else f"[U+{ord(ch):04X}]" for ch in out)


def _latex_mark(mark: Mark) -> str:
    text = {1: r"\textbf{%s}", 2: r"\underline{%s}"}.get(mark.rank, "%s") % latex_escape(mark.text)
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
    """A ``table`` float (booktabs; needs \\usepackage{booktabs} and \\usepackage{graphicx})."""
    return _environment(autoescape=False, latex=True).get_template("table.tex.j2").render(t=table)


def render_html(*tables: Table) -> str:
    """One standalone page (inline CSS, no external assets) holding the tables."""
    return _environment(autoescape=True).get_template("table.html.j2").render(tables=list(tables))


def _text_mark(mark: Mark, markdown: bool = False) -> str:
    if markdown:
        text = {1: "**%s**", 2: "<u>%s</u>"}.get(mark.rank, "%s") % mark.text
    else:
        text = {1: "**%s**", 2: "_%s_"}.get(mark.rank, "%s") % mark.text
    return text + ("†" if mark.not_significant else "")


def render_text(table: Table, markdown: bool = False) -> str:
    """A terminal table (tabulate): **bold** best, _underline_ second best; paper rows in a section of
    their own. ``markdown``: a GitHub-flavoured Markdown table (second best as <u>…</u>)."""
    esc = markdown_escape if markdown else str
    flat_groups = [esc(g) for g, n in table.groups for _ in range(n)]
    sep = "<br>" if markdown else "\n"
    headers = [esc(table.corner)] + [f"{g}{sep}{esc(l)}" if l else g for g, l in zip(flat_groups, table.column_labels)]
    if table.show_params:
        headers.append("Params")
    body = []
    for heading, row in table.headed_rows():
        if heading:
            body.append([f"*{esc(heading)}*" if markdown else f"-- {heading} --"] + [""] * (len(headers) - 1))
        name = f"*{esc(row.name)}*" if (markdown and row.kind == "paper") else esc(row.name)
        line = [name] + [" / ".join(_text_mark(m, markdown) for m in cell) for cell in row.cells]
        if table.show_params:
            line.append(esc(row.params))
        body.append(line)
    if markdown:
        grid = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
        notes = "\n".join(f"- {markdown_escape(n)}" for n in table.footnotes)
        legend = "**bold** = best, <u>underline</u> = second best" if table.has_marks else ""
        return (f"### {markdown_escape(table.title)}\n\n*{markdown_escape(table.label)}*\n\n{grid}\n\n"
                f"{markdown_escape(table.caption)}\n\n{legend}\n\n{notes}\n"
                .rstrip() + "\n")
    grid = tabulate(body, headers=headers, tablefmt="simple_grid", disable_numparse=True)
    notes = "\n".join(f"  {n}" for n in table.footnotes)
    legend = "**bold** = best, _underline_ = second best\n" if table.has_marks else ""
    return f"{table.title}\n[{table.label}]\n{grid}\n{table.caption}\n{legend}{notes}\n".rstrip() + "\n"


_MARKDOWN_SPECIAL = {"\\": "\\\\", "*": "\\*", "_": "\\_", "`": "\\`", "|": "\\|", "[": "\\[", "]": "\\]",
                     "<": "&lt;", ">": "&gt;", "&": "&amp;", "#": "\\#"}


def markdown_escape(text) -> str:
    """Text that Markdown (and the HTML it may contain) shows literally."""
    return "".join(_MARKDOWN_SPECIAL.get(ch, ch) for ch in str(text))


def render_markdown(table: Table) -> str:
    return render_text(table, markdown=True)


def render_all(result: dict, *, paper: list | None = None) -> tuple[str, str, str]:
    """(LaTeX, HTML, text) for every table of a results document (two for split layouts).

    ``paper``: rows as printed (:func:`paper_rows`) to show beside the reproduced rows; the Δ view
    is then appended too. Default: the reproduced rows only (what the runner stores)."""
    tables = build_tables(result, paper=paper)
    if paper:
        delta = build_delta_table(result, paper)
        if delta is not None:
            tables.append(delta)
    latex = "\n".join(render_latex(t) for t in tables)
    text = "\n".join(render_text(t) for t in tables)
    return latex, render_html(*tables), text
