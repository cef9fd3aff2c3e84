"""Comparison tables for new methods: ``dacode-bench compare RUN... [--against paper]``.

A new method is scored by running a suite file with its row added (``model:``, ``build:`` or
``outputs:``); ``compare`` then puts its row beside the reproduced rows of other runs of the
same table and, with ``--against paper``, beside the rows printed in the paper (those of the
suite the first run ran, read from its results document):

- the runs must share profile, columns and metrics, and their test images (the data manifest
  hash), since the per-image significance pairs images by id;
- rows are grouped as "As printed in the paper" (italic), "Reproduced here" and "New methods";
  ranking follows :mod:`reports.tables` (a non-comparable profile is never ranked against the
  paper rows);
- the best cell carries † when a paired test on the per-image results cannot separate it from
  the runner-up, and a second table gives, per new method and reproduced row, the mean paired
  difference per column with ``*`` where it is significant (paired bootstrap 95% interval
  excludes 0 and Wilcoxon p < 0.05);
- with ``--against paper``, the Δ-vs-paper view for rows printed in the paper too.

A row is "new" when its name is neither one of the first run's suite rows nor printed in the
paper, or when named with ``--new``.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.metrics import get_protocol
from harness.results import RunResults, find_run, load
from reports.tables import Mark, Row, Table, header_groups, per_image_means, run_tables


@dataclass
class Comparison:
    doc: RunResults  # the merged results document
    new_methods: list[str]
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_compatible(docs: list[RunResults], sources: list[str]) -> list[str]:
    first, notes = docs[0], []
    for doc, src in zip(docs[1:], sources[1:]):
        if doc.profile != first.profile:
            raise HarnessError(
                f"{src} is a '{doc.profile}' run but {sources[0]} is '{first.profile}': runs of different "
                "profiles are never compared (their data and model sizes differ)")
        if [c.id for c in doc.columns] != [c.id for c in first.columns]:
            raise HarnessError(f"{src} has columns {[c.id for c in doc.columns]}, {sources[0]} has "
                               f"{[c.id for c in first.columns]}: compare runs of the same table")
        if list(doc.metrics) != list(first.metrics):
            raise HarnessError(f"{src} uses metrics {doc.metrics}, {sources[0]} uses {first.metrics}")
        a, b = first.data.get("manifest_sha256"), doc.data.get("manifest_sha256")
        if a and b and a != b:
            raise HarnessError(
                f"{src} was scored on other test images than {sources[0]} (data manifest {b[:12]} vs {a[:12]}; "
                "a different seed or data root?): per-image significance needs the same images")
        if doc.inference.get("policy") != first.inference.get("policy"):
            notes.append(f"{src} ran with another inference policy ({doc.inference.get('description')}) than "
                         f"{sources[0]} ({first.inference.get('description')}).")
        if doc.suite != first.suite:
            notes.append(f"runs of suites '{first.suite}' and '{doc.suite}' (same columns) are compared.")
    return notes


def merge(docs: list[RunResults], sources: list[str] | None = None) -> tuple[RunResults, list[str]]:
    """One results document holding every run's rows (renaming a clash with different numbers)."""
    sources = sources or [d.run_id for d in docs]
    notes = _check_compatible(docs, sources)
    merged = docs[0].model_copy(deep=True)
    seen = {m.name for m in merged.methods}
    for doc, src in zip(docs[1:], sources[1:]):
        for m in doc.methods:
            name = m.name
            if name in seen:
                if doc.cells.get(name) == merged.cells.get(name):
                    continue  # the same row (e.g. reused cached cells): show it once
                new_name = f"{name} [{doc.run_id}]"
                notes.append(f"'{name}' is in several runs with different numbers; the one from {src} is shown "
                             f"as '{new_name}'.")
            else:
                new_name = name
            seen.add(new_name)
            merged.methods.append(m.model_copy(update={"name": new_name}))
            merged.cells[new_name] = doc.cells[name]
            merged.averages[new_name] = doc.averages[name]
            merged.per_image += [r.model_copy(update={"method": new_name}) for r in doc.per_image if r.method == name]
    merged.compared_runs = [d.run_id for d in docs]
    merged.notes = list(merged.notes) + notes
    return merged, notes


def paired_table(doc: RunResults, new_methods: list[str], baselines: list[str]) -> Table | None:
    """Per column, the mean paired difference (new − baseline) of each metric; ``*`` = significant."""
    from harness.stats import paired_comparison

    if not new_methods or not baselines:
        return None
    protocols = [get_protocol(m) for m in doc.metrics]
    by_metric = {p.name: per_image_means(doc, p.name) for p in protocols}
    rows, counts = [], set()
    for new in new_methods:
        for base in baselines:
            cells = []
            for c in doc.columns:
                ids = sorted(set(by_metric[protocols[0].name].get((new, c.id), {}))
                             & set(by_metric[protocols[0].name].get((base, c.id), {})))
                counts.add(len(ids))
                cell = []
                for p in protocols:
                    a, b = by_metric[p.name].get((new, c.id), {}), by_metric[p.name].get((base, c.id), {})
                    if len(ids) < 2:
                        cell.append(Mark("–"))
                        continue
                    cmp = paired_comparison([a[i] for i in ids], [b[i] for i in ids])
                    cell.append(Mark(f"{cmp.mean_diff:+.{p.decimals}f}" + ("*" if cmp.significant() else "")))
                cells.append(cell)
            rows.append(Row(f"{new} − {base}", cells, kind="delta"))
    names = [p.display for p in protocols]
    n = ", ".join(str(c) for c in sorted(counts))
    caption = (f"Paired per-image differences, new method minus reproduced row, mean over each column's images "
               f"({' / '.join(names)}; n = {n} images per column). *: significant — the 95% paired bootstrap "
               "interval of the mean difference excludes 0 and the Wilcoxon signed-rank p < 0.05.")
    smallest = min(c for c in counts if c >= 2) if any(c >= 2 for c in counts) else 0
    if 2 <= smallest < 6:
        caption += (f" With {smallest} images the smallest possible two-sided Wilcoxon p is "
                    f"{2 / 2 ** smallest:.3g}, so no difference can be marked significant: more test images are needed.")
    return Table(title=f"{doc.title} — paired significance of the new methods", caption=caption,
                 label=doc.profile_label, groups=header_groups(doc.columns),
                 column_labels=[c.label for c in doc.columns], rows=rows, show_params=False, corner="New − reproduced")


def compare(docs: list[RunResults], *, against: str | None = None, new: list[str] | None = None,
            sources: list[str] | None = None) -> Comparison:
    if not docs:
        raise HarnessError("compare needs at least one run")
    if against not in (None, "paper"):
        raise HarnessError(f"--against takes 'paper', got '{against}'")
    merged, notes = merge(docs, sources)
    names = [m.name for m in merged.methods]
    if new:
        unknown = [n for n in new if n not in names]
        if unknown:
            raise HarnessError(f"--new names {unknown}, which the runs do not have; rows: {', '.join(names)}")
        new_methods = list(new)
    else:
        suite = docs[0].suite_model()
        official = {m.name for m in suite.methods} | {r.method for r in suite.reported}
        new_methods = [n for n in names if n not in official]
    if against == "paper" and not merged.reported:
        raise HarnessError(f"suite '{merged.suite}' of {merged.run_id} prints no rows from the paper (reported: is empty)")
    baselines = [n for n in names if n not in new_methods]
    paired = paired_table(merged, new_methods, baselines)
    tables = run_tables(merged, with_paper=against == "paper", new_methods=new_methods,
                        extra=[paired] if paired is not None else [])
    return Comparison(merged, new_methods, tables, notes)


def compare_runs(paths: list[str | pathlib.Path], **kw) -> Comparison:
    """Load run folders (or results.json files, or folders with a LATEST pointer) and compare them."""
    docs = [load(find_run(p)) for p in paths]
    return compare(docs, sources=[str(p) for p in paths], **kw)
