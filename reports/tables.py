"""The table model: rows of ranked cells built from a results document, before any format.

Cell format is the paper's ``PSNR / SSIM`` (one value per suite metric, joined by " / ");
within each column the best value is bold and the second best underlined, each metric ranked
on its printed (rounded) value as a reader of the paper would, in the direction its protocol
says (``higher_is_better``). Precision comes from the protocol too (PSNR 2 decimals, SSIM 3).
The caption carries the profile label, so a mini-profile table can never pass for the paper's.

Rows come in three kinds, drawn in sections of one table:

- ``paper``: a row as printed in the paper (the ``reported`` rows of the suite that ran), drawn
  in italics (LaTeX, text) or italic grey (HTML) under the heading "As printed in the paper";
- ``reproduced``: a row computed in this run (plain);
- ``new``: a method that is not one of the suite's own rows (``dacode-bench compare``).

Ranking rule (stated in every mixed table's footnote): on a profile that is
``comparable_with_paper`` (same benchmark sets and protocol) all rows are ranked together. On
any other profile (mini) the paper rows are ranked only among themselves, as the paper marks
them, and the reproduced/new rows only among themselves: a mini-profile number is never bold
or underlined against a paper number. The Δ-vs-paper view (:func:`build_delta_table`) prints
reproduced minus printed for methods present in both; on a non-comparable profile its caption
says that the differences reflect the profile, not a reproduction gap.

How a table is laid out (methods × columns, one table per metric, ablation averages, …) is a
registry entry in :mod:`reports.layouts`; how it is written (LaTeX, HTML, …) one in
:mod:`reports.formats`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Callable, Sequence

from harness.metrics import MetricProtocol, get_protocol
from harness.results import RunResults

ROW_KINDS = ("paper", "reproduced", "new")
AVERAGE = "__average__"


@dataclass
class Mark:
    text: str
    rank: int = 0  # 1 best (bold), 2 second (underlined), 0 plain
    not_significant: bool = False  # best, but not significantly better than the second


NOT_SIGNIFICANT_NOTE = (
    "†: best {metric} not significantly better than the second best on the same images "
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
    cells: list[list[Mark]]  # one list per column: one Mark per metric (or a single value)
    params: str = ""
    kind: str = "reproduced"  # paper | reproduced | new | delta
    method: str | None = None  # the method's name in per_image (None for paper rows)
    heading: str | None = None  # a section heading of its own before this row (layouts grouping by method)


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
        if any(r.heading for r in self.rows):  # the layout grouped the rows itself
            return [(r.heading, r) for r in self.rows]
        kinds = {r.kind for r in self.rows}
        out, previous = [], None
        for row in self.rows:
            heading = None
            if len(kinds) > 1 and row.kind != previous:
                heading = self.sections.get(row.kind, row.kind)
            out.append((heading, row))
            previous = row.kind
        return out


# -- ranking ------------------------------------------------------------------------------------


def rank(values: list[float], higher_is_better: bool = True) -> list[int]:
    """1 for the best value, 2 for the second best, 0 otherwise (ties share a rank)."""
    distinct = sorted(set(values), reverse=higher_is_better)
    best = distinct[0] if distinct else None
    second = distinct[1] if len(distinct) > 1 else None
    return [1 if v == best else 2 if v == second else 0 for v in values]


def ranking_groups(kinds: list[str], comparable: bool) -> list[list[int]]:
    """Row indices ranked together (see the module docstring)."""
    if comparable:
        return [list(range(len(kinds)))]
    paper = [i for i, k in enumerate(kinds) if k == "paper"]
    ours = [i for i, k in enumerate(kinds) if k != "paper"]
    return [g for g in (paper, ours) if g]


# protocol of a grid position (row, column, metric slot)
ProtocolAt = Callable[[int, int, int], MetricProtocol]


def grid(values: list[list[list[float | None] | None]], protocol_at: ProtocolAt, groups: list[list[int]],
         along_rows: bool = False, spreads=None) -> list[list[list[Mark]]]:
    """values[row][col][metric] (None = not printed) → Marks, ranked within each column per group
    of rows (or, ``along_rows``, within each row across the columns). ``spreads`` has the same
    shape and adds "±s" to a value (noise-seed standard deviation)."""
    n_cols = len(values[0]) if values else 0
    n_metrics = max((len(cell) for row in values for cell in row if cell), default=0)

    def text(i, j, k, v):
        d = protocol_at(i, j, k).decimals
        s = spreads[i][j][k] if spreads and spreads[i][j] else None
        return f"{v:.{d}f}" + (f" ± {s:.{d}f}" if s is not None else "")

    marks = [[[Mark(text(i, j, k, v)) if v is not None else Mark("–") for k, v in enumerate(cell)]
              if cell else [Mark("–") for _ in range(n_metrics)] for j, cell in enumerate(row)]
             for i, row in enumerate(values)]

    def rank_positions(positions: list[tuple[int, int, int]]) -> None:
        present = [(p, round(values[p[0]][p[1]][p[2]], protocol_at(*p).decimals)) for p in positions
                   if values[p[0]][p[1]] and values[p[0]][p[1]][p[2]] is not None]
        if len(present) < 2:
            return
        higher = protocol_at(*present[0][0]).higher_is_better
        for (i, j, k), r in zip([p for p, _ in present], rank([v for _, v in present], higher)):
            marks[i][j][k].rank = r

    for k in range(n_metrics):
        if along_rows:
            for group in groups:
                rank_positions([(i, j, k) for i in group for j in range(n_cols)])
        else:
            for j in range(n_cols):
                for group in groups:
                    rank_positions([(i, j, k) for i in group])
    return marks


def by_metric(protocols: Sequence[MetricProtocol]) -> ProtocolAt:
    """Grid positions whose metric slot k is protocol k."""
    return lambda i, j, k: protocols[k]


def by_column(protocols: Sequence[MetricProtocol]) -> ProtocolAt:
    """Grid positions whose column j is protocol j (ablations: the metrics are the columns)."""
    return lambda i, j, k: protocols[j]


# -- the rows' numbers before layout ------------------------------------------------------------


@dataclass
class Entry:
    """One row's numbers per column id (and AVERAGE), one value per metric, before layout."""

    name: str
    kind: str
    cells: dict[str, list[float | None]]
    params: str = ""
    method: str | None = None
    spreads: dict[str, list[float | None]] = field(default_factory=dict)


def printed_values(row, metrics: list[str], values) -> list[float | None]:
    """A printed row's values in the slots of ``metrics`` (None where it printed none)."""
    given = dict(zip(row.metrics or metrics, values))
    return [given.get(m) for m in metrics]


def entries(doc: RunResults, paper, new_methods) -> list[Entry]:
    """Paper rows first, then the run's reproduced rows, then the new ones (each in run order)."""
    keys = list(doc.metrics)
    columns = [c.id for c in doc.columns]
    out: list[Entry] = []
    for row in paper or []:
        cells = {cid: printed_values(row, keys, v) for cid, v in row.cells.items()}
        if row.average is not None:
            cells[AVERAGE] = printed_values(row, keys, row.average)
        out.append(Entry(row.method, "paper", cells, row.params or ""))
    new = set(new_methods or ())
    ours = []
    for m in doc.methods:
        got = doc.cells.get(m.name, {})
        cells = {cid: [got[cid].values.get(k) for k in keys] for cid in columns if cid in got}
        spreads = {cid: [(got[cid].spread or {}).get(k) for k in keys] for cid in columns
                   if cid in got and got[cid].spread}
        if m.name in doc.averages:
            cells[AVERAGE] = [doc.averages[m.name].get(k) for k in keys]
        ours.append(Entry(m.name, "new" if m.name in new else "reproduced", cells, m.params_display or "",
                          m.name, spreads))
    return out + [e for e in ours if e.kind == "reproduced"] + [e for e in ours if e.kind == "new"]


def sections(doc: RunResults) -> dict[str, str]:
    reproduced = "Reproduced here" if doc.comparable_with_paper else f"Reproduced here ({doc.profile} profile)"
    return {"paper": "As printed in the paper", "reproduced": reproduced, "new": "New methods"}


def footnotes(doc: RunResults) -> list[str]:
    """What every table of the run says under it: the metric protocols, the profile, the inference
    policy and what happened during the run."""
    notes = [get_protocol(m).footnote() for m in doc.metrics]
    if not doc.comparable_with_paper:
        notes.append(f"{doc.profile_label}. Params are those of the small configurations trained here.")
    if doc.inference.get("description"):
        notes.append(doc.inference["description"][0].upper() + doc.inference["description"][1:] + ".")
    return notes + list(doc.notes)


def header_groups(columns) -> list[tuple[str, int]]:
    return [(g, len(list(items))) for g, items in groupby(c.group for c in columns)]


@dataclass
class TableInput:
    """What every layout needs: the document, its rows' numbers and how to rank them."""

    doc: RunResults
    entries: list[Entry]
    protocols: list[MetricProtocol]
    groups: list[list[int]]
    footnotes: list[str]

    @property
    def common(self) -> dict:
        return dict(title=self.doc.title, caption=self.doc.caption, label=self.doc.profile_label,
                    sections=sections(self.doc))

    @property
    def names(self) -> list[str]:
        return [p.display for p in self.protocols]

    def rows_of(self, marks) -> list[Row]:
        return [Row(e.name, marks[i], e.params, e.kind, e.method) for i, e in enumerate(self.entries)]


def build_tables(doc: RunResults, *, paper=None, new_methods=()) -> list[Table]:
    """The document's tables in the layout of the suite that ran (``reports.layouts``).

    ``paper``: rows as printed (``doc.reported``) to show beside the reproduced ones;
    ``new_methods``: names of this document's methods to put in a "New methods" section.
    """
    from reports.layouts import get_layout

    rows = entries(doc, paper, new_methods)
    kinds = [e.kind for e in rows]
    notes = footnotes(doc)
    if "paper" in kinds and len(set(kinds)) > 1:
        notes.append(ranking_note(doc.profile, doc.comparable_with_paper))
    given = TableInput(doc, rows, [get_protocol(m) for m in doc.metrics],
                       ranking_groups(kinds, doc.comparable_with_paper), notes)
    return get_layout(doc.layout.kind).build(given)


def build_table(doc: RunResults, **kw) -> Table:
    """The first (for most layouts, the only) table of a results document."""
    return build_tables(doc, **kw)[0]


def build_delta_table(doc: RunResults, paper=None) -> Table | None:
    """Reproduced minus printed, per cell, for the methods in both this run and the paper.

    Columns follow the layout (columns + Average; the Average alone where the layout shows
    averages only); each cell is ``ΔPSNR / ΔSSIM``. None when no method of the run is printed.
    """
    from reports.layouts import get_layout

    paper = doc.reported if paper is None else paper
    printed = {r.method: r for r in paper}
    protocols = [get_protocol(m) for m in doc.metrics]
    names = [p.display for p in protocols]
    keys = list(doc.metrics)
    averages_only = get_layout(doc.layout.kind).averages_only
    columns = [] if averages_only else doc.columns
    col_ids = [c.id for c in columns] + [AVERAGE]
    rows = []
    for m in doc.methods:
        row = printed.get(m.name)
        if row is None:
            continue
        ref = {cid: printed_values(row, keys, v) for cid, v in row.cells.items()}
        if row.average is not None:
            ref[AVERAGE] = printed_values(row, keys, row.average)
        got = {cid: [doc.cell_value(m.name, cid, k) for k in keys] for cid in col_ids[:-1]}
        got[AVERAGE] = [doc.averages.get(m.name, {}).get(k) for k in keys]
        cells = []
        for cid in col_ids:
            cell = []
            for k, protocol in enumerate(protocols):
                a, b = (got.get(cid) or [None] * len(keys))[k], (ref.get(cid) or [None] * len(keys))[k]
                cell.append(Mark("–" if a is None or b is None else f"{a - b:+.{protocol.decimals}f}"))
            cells.append(cell)
        rows.append(Row(m.name, cells, kind="delta", method=m.name))
    if not rows:
        return None
    caption = (f"Reproduced minus printed, per cell ({' / '.join(names)}), for the methods both in this run and in "
               "the paper; positive means higher than printed.")
    if not doc.comparable_with_paper:
        caption += (f" This run used the {doc.profile} profile: the differences reflect its data and "
                    "model sizes, not a reproduction gap.")
    if averages_only:
        groups, labels = [("Average " + " / ".join(f"Δ{n}" for n in names), 1)], [""]
    else:
        groups = header_groups(columns) + [("Average", 1)]
        labels = [c.label for c in columns] + [""]
    return Table(title=f"{doc.title} — Δ vs paper", caption=caption, label=doc.profile_label,
                 groups=groups, column_labels=labels, rows=rows, show_params=False)


def run_tables(doc: RunResults, *, with_paper: bool = True, new_methods=(), extra=()) -> list[Table]:
    """Every table of a run as the commands show it: the layout's tables (with the paper's printed
    rows beside the run's when ``with_paper``), any ``extra`` tables, then the Δ-vs-paper view."""
    paper = doc.reported if with_paper else None
    tables = build_tables(doc, paper=paper or None, new_methods=new_methods) + list(extra)
    if paper:
        delta = build_delta_table(doc, paper)
        if delta is not None:
            tables.append(delta)
    return tables


def mark_not_significant(doc: RunResults, rows: list[Row], metric: str, slot: int = 0) -> bool:
    """Flag per-column best cells (metric slot ``slot``) that a paired test cannot separate from the
    runner-up. Only rows with per-image results (reproduced or new, not paper rows) take part;
    a stochastic model's per-image value is its mean over the noise seeds."""
    from harness.stats import paired_comparison

    per_method = per_image_means(doc, metric)
    any_marked = False
    ours = [r for r in rows if r.method is not None and r.kind != "paper"]
    for j, column in enumerate(doc.columns):
        best = [r for r in ours if r.cells[j][slot].rank == 1]
        second = [r for r in ours if r.cells[j][slot].rank == 2]
        if len(best) != 1 or not second:
            continue
        a = per_method.get((best[0].method, column.id), {})
        b = per_method.get((second[0].method, column.id), {})
        ids = sorted(set(a) & set(b))
        if len(ids) < 2:
            continue
        cmp = paired_comparison([a[i] for i in ids], [b[i] for i in ids])
        if not cmp.significant():
            best[0].cells[j][slot].not_significant = True
            any_marked = True
    return any_marked


def per_image_means(doc: RunResults, metric: str) -> dict[tuple[str, str], dict[str, float]]:
    """(method, column) → image id → the metric (averaged over noise seeds)."""
    sums: dict[tuple[str, str], dict[str, list[float]]] = {}
    for rec in doc.per_image:
        if metric in rec.values:
            sums.setdefault((rec.method, rec.column), {}).setdefault(rec.image_id, []).append(rec.values[metric])
    return {key: {i: sum(v) / len(v) for i, v in images.items()} for key, images in sums.items()}


def not_significant_note(protocol: MetricProtocol) -> str:
    return NOT_SIGNIFICANT_NOTE.format(metric=protocol.display)
