"""Table layouts: how a results document becomes tables. One registry entry per layout.

A suite picks its layout by name (``layout: {kind: split_metrics}``). To add one, write a
function ``TableInput -> list[Table]`` and register it::

    @register("my_layout", description="...")
    def my_layout(given: TableInput) -> list[Table]: ...

- ``table`` (Tables 1, 2): methods × columns, cells ``PSNR / SSIM``, Average and Params;
- ``split_metrics`` (Table 3): the same as one table per metric (PSNR, then SSIM);
- ``ablation`` (Tables 4, 5): the Average only, one row per variant, or transposed (variants
  as columns, one row per metric) when ``transpose`` is set;
- ``protocols`` (released checkpoints): per method the cells under its own paper's protocol
  (``official_metrics``), under the suite's first protocols (Y), and the shift between them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.errors import HarnessError
from reports.tables import (
    AVERAGE,
    ROW_KINDS,
    Mark,
    Row,
    Table,
    TableInput,
    by_column,
    by_metric,
    grid,
    header_groups,
    mark_not_significant,
    not_significant_note,
    ranking_groups,
)


@dataclass(frozen=True)
class LayoutSpec:
    name: str
    build: Callable[[TableInput], list[Table]]
    description: str
    averages_only: bool = False  # the Δ-vs-paper view shows the Average alone


LAYOUTS: dict[str, LayoutSpec] = {}


def register(name: str, *, description: str, averages_only: bool = False):
    def add(fn: Callable[[TableInput], list[Table]]):
        LAYOUTS[name] = LayoutSpec(name, fn, description, averages_only)
        return fn

    return add


def get_layout(name: str) -> LayoutSpec:
    if name not in LAYOUTS:
        raise HarnessError(f"unknown table layout '{name}'; allowed: {', '.join(sorted(LAYOUTS))}")
    return LAYOUTS[name]


def _columns_with_average(given: TableInput):
    columns = given.doc.columns
    col_ids = [c.id for c in columns] + [AVERAGE]
    labels = [c.label for c in columns] + [""]  # "Average" spans both header rows
    return col_ids, labels, header_groups(columns) + [("Average", 1)]


@register("table", description="methods × columns, cells 'PSNR / SSIM', Average and Params (Tables 1, 2)")
def methods_by_columns(given: TableInput) -> list[Table]:
    col_ids, labels, groups = _columns_with_average(given)
    values = [[e.cells.get(c) for c in col_ids] for e in given.entries]
    spreads = [[e.spreads.get(c) for c in col_ids] for e in given.entries]
    rows = given.rows_of(grid(values, by_metric(given.protocols), given.groups, spreads=spreads))
    notes = list(given.footnotes)
    if len(rows) > 1 and given.doc.per_image and mark_not_significant(given.doc, rows, given.doc.metrics[0]):
        notes.append(not_significant_note(given.protocols[0]))
    return [Table(**given.common, groups=groups, column_labels=labels, rows=rows,
                  show_params=given.doc.show_params, footnotes=notes)]


@register("split_metrics", description="one methods × columns table per metric (Table 3: PSNR, then SSIM)")
def one_table_per_metric(given: TableInput) -> list[Table]:
    col_ids, labels, groups = _columns_with_average(given)
    tables = []
    for k, protocol in enumerate(given.protocols):
        values = [[[e.cells[c][k]] if e.cells.get(c) else None for c in col_ids] for e in given.entries]
        spreads = [[[e.spreads[c][k]] if e.spreads.get(c) else None for c in col_ids] for e in given.entries]
        rows = given.rows_of(grid(values, by_metric([protocol]), given.groups, spreads=spreads))
        notes = list(given.footnotes)
        if given.doc.per_image and mark_not_significant(given.doc, rows, given.doc.metrics[k]):
            notes.append(not_significant_note(protocol))
        tables.append(Table(**{**given.common, "title": f"{given.doc.title} ({protocol.display})"}, groups=groups,
                            column_labels=labels, rows=rows, show_params=given.doc.show_params, footnotes=notes))
    return tables


@register("ablation", averages_only=True,
          description="the Average only, one row per variant; transposed: variants as columns (Tables 4, 5)")
def ablation(given: TableInput) -> list[Table]:
    if given.doc.layout.transpose:
        return [_transposed(given)]
    n = len(given.protocols)
    values = [[[avg[k]] if avg else None for k in range(n)] for avg in (e.cells.get(AVERAGE) for e in given.entries)]
    marks = grid(values, by_column(given.protocols), given.groups)
    return [Table(**given.common, groups=[(name, 1) for name in given.names], column_labels=[""] * n,
                  rows=given.rows_of(marks), show_params=given.doc.show_params, footnotes=given.footnotes)]


def _transposed(given: TableInput) -> Table:
    """Variants as columns, one row per metric per section (Table 4)."""
    variants: list[str] = []
    for e in given.entries:  # paper order first, then variants only this run has
        if e.name not in variants:
            variants.append(e.name)
    section_kinds = [k for k in ROW_KINDS if any(e.kind == k for e in given.entries)]
    values, row_meta = [], []
    for sk in section_kinds:
        by_name = {e.name: e for e in given.entries if e.kind == sk}
        for k, name in enumerate(given.names):
            values.append([[by_name[v].cells[AVERAGE][k]] if v in by_name and by_name[v].cells.get(AVERAGE) else None
                           for v in variants])
            row_meta.append((sk, k, name))
    # rank along each metric's rows: per section, or across sections when comparable
    marks = [[[Mark("–")] for _ in variants] for _ in values]
    for k, protocol in enumerate(given.protocols):
        idx = [i for i, (_, kk, _) in enumerate(row_meta) if kk == k]
        groups = ranking_groups([row_meta[i][0] for i in idx], given.doc.comparable_with_paper)
        sub = grid([values[i] for i in idx], by_metric([protocol]), groups, along_rows=True)
        for local, i in enumerate(idx):
            marks[i] = sub[local]
    rows = [Row(name, marks[i], "", sk, None) for i, (sk, _, name) in enumerate(row_meta)]
    return Table(**given.common, groups=[(v, 1) for v in variants], column_labels=[""] * len(variants), rows=rows,
                 show_params=False, footnotes=given.footnotes, corner=given.doc.layout.header)


@register("protocols", description="per method: printed, its own paper's protocol, the Y protocol, and the shift")
def protocols_side_by_side(given: TableInput) -> list[Table]:
    """Released checkpoints re-scored. Per method, four rows over the columns (and Average):

    - *printed*: the method's own paper (its ``reported`` row, in its protocol's metrics);
    - *own protocol*: this run's restored images scored under the method's ``official_metrics``
      (e.g. scikit-image RGB PSNR/SSIM, Gaussian-window SSIM for MoCE-IR);
    - *Y protocol*: the same images under the table's first two metrics (``psnr_y``, ``ssim_y``);
    - *shift*: Y − own protocol, per cell.
    Nothing is bold: this table compares protocols, not methods.
    """
    from harness.metrics import get_protocol

    doc = given.doc
    suite = doc.suite_model()
    y_metrics = list(doc.metrics[:2])
    col_ids, labels, groups = _columns_with_average(given)
    keys = list(doc.metrics)
    official = {m.name: list(m.official_metrics or []) for m in suite.methods}
    printed = {e.name: e for e in given.entries if e.kind == "paper"}

    def marks(values: list[float | None], metrics: list[str], signed: bool = False, spreads=None) -> list[Mark]:
        out = []
        for k, (v, m) in enumerate(zip(values, metrics)):
            d = get_protocol(m).decimals
            s = spreads[k] if spreads else None
            out.append(Mark("–" if v is None else (f"{v:+.{d}f}" if signed else f"{v:.{d}f}")
                            + (f" ± {s:.{d}f}" if s is not None and v is not None else "")))
        return out

    def pick(entry, cid, metrics, spread=False):
        source = entry.spreads if spread else entry.cells
        values = source.get(cid)
        return None if values is None else [values[keys.index(m)] for m in metrics]

    rows: list[Row] = []
    for entry in (e for e in given.entries if e.kind != "paper"):
        own = official.get(entry.name) or []
        own_names = "/".join(own) or "not declared"
        paper_row = printed.get(entry.name)
        if paper_row is not None and own:
            rows.append(Row("printed in its paper", [marks(pick(paper_row, c, own) or [None] * 2, own) for c in col_ids],
                            paper_row.params, "paper", None, heading=entry.name))
        if own:
            rows.append(Row(f"own protocol ({own_names})",
                            [marks(pick(entry, c, own) or [None] * 2, own, spreads=pick(entry, c, own, True))
                             for c in col_ids], entry.params, "reproduced", entry.method,
                            heading=None if paper_row is not None else entry.name))
        rows.append(Row(f"Y protocol ({'/'.join(y_metrics)})",
                        [marks(pick(entry, c, y_metrics) or [None] * 2, y_metrics,
                               spreads=pick(entry, c, y_metrics, True)) for c in col_ids],
                        entry.params, "reproduced", entry.method, heading=None if own else entry.name))
        if own:
            shift = []
            for c in col_ids:
                y, o = pick(entry, c, y_metrics), pick(entry, c, own)
                shift.append(marks([None if y is None or o is None or y[k] is None or o[k] is None else y[k] - o[k]
                                    for k in range(2)], y_metrics, signed=True))
            rows.append(Row("shift: Y − own protocol", shift, "", "delta", entry.method))
    notes = list(given.footnotes) + [
        "Each method's restored images are scored twice: under the protocol its own paper reports (own protocol) and "
        f"under this table's {'/'.join(y_metrics)}; the shift is their difference. Printed rows are copied from each "
        "method's paper, in its own protocol."]
    return [Table(**{**given.common, "sections": {}}, groups=groups, column_labels=labels, rows=rows,
                  show_params=doc.show_params, footnotes=notes)]

