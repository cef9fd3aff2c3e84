"""Output formats: how tables are written. One registry entry per format.

    reports.formats.render("latex", tables)      # LaTeX (booktabs) floats, one per table
    reports.formats.render("html", tables)       # one standalone page
    reports.formats.FORMATS                      # name → FormatSpec

To add a format, write ``fn(tables: list[Table]) -> str`` and decorate it with
``@register("name", suffix=".ext", description=...)``. Templates load from the ``reports``
package (jinja2 ``PackageLoader``), so an installed copy renders like a checkout.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import jinja2
from tabulate import tabulate

from harness.errors import HarnessError
from reports.tables import Mark, Table


@dataclass(frozen=True)
class FormatSpec:
    name: str
    render: Callable[[list[Table]], str]
    suffix: str
    description: str


FORMATS: dict[str, FormatSpec] = {}


def register(name: str, *, suffix: str, description: str):
    def add(fn: Callable[[list[Table]], str]):
        FORMATS[name] = FormatSpec(name, fn, suffix, description)
        return fn

    return add


def render(fmt: str, tables: list[Table]) -> str:
    if fmt not in FORMATS:
        raise HarnessError(f"unknown format '{fmt}'; allowed: {', '.join(FORMATS)}")
    return FORMATS[fmt].render(list(tables))


# -- templates ----------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_LATEX_UNICODE = {"σ": r"$\sigma$", "—": "---", "–": "--", "×": r"$\times$", "Δ": r"$\Delta$", "†": r"$^\dagger$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "±": r"$\pm$", "→": r"$\rightarrow$", "β": r"$\beta$",
                  "α": r"$\alpha$", "−": "$-$", "≈": r"$\approx$", "·": r"$\cdot$", "…": r"\ldots{}", "’": "'",
                  "“": "``", "”": "''"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for uni, tex in _LATEX_UNICODE.items():
        out = out.replace(uni, tex)
    # anything else outside ASCII would stop pdflatex without inputenc support: spell it out
    return "".join(ch if ord(ch) < 128 else f"[U+{ord(ch):04X}]" for ch in out)


def _latex_mark(mark: Mark) -> str:
    text = {1: r"\textbf{%s}", 2: r"\underline{%s}"}.get(mark.rank, "%s") % latex_escape(mark.text)
    return text + (r"$^\dagger$" if mark.not_significant else "")


@lru_cache(maxsize=None)
def environment(autoescape: bool, latex: bool = False) -> jinja2.Environment:
    """The jinja2 environment of the package's templates (HTML: autoescaped)."""
    # LaTeX is full of { } and %, so its templates use << >>, <% %> and <# #> instead.
    delimiters = dict(
        block_start_string="<%", block_end_string="%>", variable_start_string="<<",
        variable_end_string=">>", comment_start_string="<#", comment_end_string="#>",
    ) if latex else {}
    env = jinja2.Environment(
        **delimiters,
        loader=jinja2.PackageLoader("reports", "templates"),
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
    return environment(autoescape=False, latex=True).get_template("table.tex.j2").render(t=table)


def render_html(*tables: Table) -> str:
    """One standalone page (inline CSS, no external assets) holding the tables."""
    return environment(autoescape=True).get_template("table.html.j2").render(tables=list(tables))


# -- text -------------------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = {"\\": "\\\\", "*": "\\*", "_": "\\_", "`": "\\`", "|": "\\|", "[": "\\[", "]": "\\]",
                     "<": "&lt;", ">": "&gt;", "&": "&amp;", "#": "\\#"}


def markdown_escape(text) -> str:
    """Text that Markdown (and the HTML it may contain) shows literally."""
    return "".join(_MARKDOWN_SPECIAL.get(ch, ch) for ch in str(text))


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
    headers = [esc(table.corner)] + [f"{g}{sep}{esc(lab)}" if lab else g
                                     for g, lab in zip(flat_groups, table.column_labels)]
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


def render_markdown(table: Table) -> str:
    return render_text(table, markdown=True)


@register("text", suffix=".txt", description="terminal table (tabulate), **bold** best, _underline_ second")
def _text(tables: list[Table]) -> str:
    return "\n".join(render_text(t) for t in tables)


@register("markdown", suffix=".md", description="GitHub-flavoured Markdown")
def _markdown(tables: list[Table]) -> str:
    return "\n".join(render_markdown(t) for t in tables)


@register("latex", suffix=".tex", description="LaTeX table floats (booktabs, graphicx)")
def _latex(tables: list[Table]) -> str:
    return "\n".join(render_latex(t) for t in tables)


@register("html", suffix=".html", description="one standalone HTML page (inline CSS)")
def _html(tables: list[Table]) -> str:
    return render_html(*tables)
