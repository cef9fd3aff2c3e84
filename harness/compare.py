"""Comparison tables for new methods: ``dacode-bench compare RUN... [--against paper]``.

A new method is scored by running a suite file with its row added (``model:``, ``build:`` or
``outputs:``); ``compare`` then puts its row beside the reproduced rows of other runs of the
same table and, with ``--against paper``, beside the rows printed in the paper:

- the runs must share profile, columns and metrics, and their test images (the data manifest
  hash), since the per-image significance pairs images by id;
- rows are grouped as "As printed in the paper" (italic), "Reproduced here" and "New methods";
  ranking follows :mod:`harness.report` (a non-comparable profile is never ranked against the
  paper rows);
- the best cell carries † when a paired test on the per-image results cannot separate it from
  the runner-up, and a second table gives, per new method and reproduced row, the mean paired
  difference per column with ``*`` where it is significant (paired bootstrap 95% interval
  excludes 0 and Wilcoxon p < 0.05);
- with ``--against paper``, the Δ-vs-paper view for rows printed in the paper too.

A row is "new" when its name is neither one of the suite's own rows nor printed in the paper,
or when named with ``--new``.
"""
from __future__ import annotations

import copy
import pathlib
from dataclasses import dataclass, field

from harness import report
from harness.errors import HarnessError


@dataclass
class Comparison:
    doc: dict  # the merged results document
    new_methods: list[str]
    tables: list[report.Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_compatible(docs: list[dict], sources: list[str]) -> list[str]:
    first, notes = docs[0], []
    for doc, src in zip(docs[1:], sources[1:]):
        if doc["profile"] != first["profile"]:
            raise HarnessError(
                f"{src} is a '{doc['profile']}' run but {sources[0]} is '{first['profile']}': runs of different "
                "profiles are never compared (their data and model sizes differ)")
        if [c["id"] for c in doc["columns"]] != [c["id"] for c in first["columns"]]:
            raise HarnessError(f"{src} has columns {[c['id'] for c in doc['columns']]}, {sources[0]} has "
                               f"{[c['id'] for c in first['columns']]}: compare runs of the same table")
        if list(doc["metrics"]) != list(first["metrics"]):
            raise HarnessError(f"{src} uses metrics {doc['metrics']}, {sources[0]} uses {first['metrics']}")
        a = (first.get("data") or {}).get("manifest_sha256")
        b = (doc.get("data") or {}).get("manifest_sha256")
        if a and b and a != b:
            raise HarnessError(
                f"{src} was scored on other test images than {sources[0]} (data manifest {b[:12]} vs {a[:12]}; "
                "a different seed or data root?): per-image significance needs the same images")
        if doc["suite"] != first["suite"]:
            notes.append(f"runs of suites '{first['suite']}' and '{doc['suite']}' (same columns) are compared.")
    return notes


def _suite_rows(doc: dict) -> set[str]:
    from harness.suite import load_suite

    try:
        suite = load_suite(doc["suite"])
    except HarnessError:
        return set()
    return {m.name for m in suite.methods} | {r.method for r in suite.reported}


def merge(docs: list[dict], sources: list[str] | None = None) -> tuple[dict, list[str]]:
    """One results document holding every run's rows (renaming a clash with different numbers)."""
    sources = sources or [d.get("run_id", f"run {i}") for i, d in enumerate(docs)]
    notes = _check_compatible(docs, sources)
    merged = copy.deepcopy(docs[0])
    seen = {m["name"] for m in merged["methods"]}
    for doc, src in zip(docs[1:], sources[1:]):
        for m in doc["methods"]:
            name = m["name"]
            if name in seen:
                if doc["cells"].get(name) == merged["cells"].get(name):
                    continue  # the same row (e.g. reused cached cells): show it once
                new_name = f"{name} [{doc.get('run_id', src)}]"
                notes.append(f"'{name}' is in several runs with different numbers; the one from {src} is shown "
                             f"as '{new_name}'.")
            else:
                new_name = name
            seen.add(new_name)
            merged["methods"].append({**m, "name": new_name})
            merged["cells"][new_name] = doc["cells"][name]
            merged["averages"][new_name] = doc["averages"][name]
            merged.setdefault("per_image", [])
            merged["per_image"] += [{**r, "method": new_name} for r in doc.get("per_image", []) if r["method"] == name]
    merged["compared_runs"] = [d.get("run_id") for d in docs]
    return merged, notes


def paired_table(doc: dict, new_methods: list[str], baselines: list[str]) -> report.Table | None:
    """Per column, the mean paired difference (new − baseline) of each metric; ``*`` = significant."""
    from harness.stats import paired_comparison

    if not new_methods or not baselines:
        return None
    keys = list(doc["metrics"])
    names = [report._metric_names(doc)[k] for k in range(len(keys))]
    decimals = [report._DECIMALS.get(n, 3) for n in names]
    by = {}
    for rec in doc.get("per_image", []):
        by.setdefault((rec["method"], rec["column"]), {})[rec["image_id"]] = rec
    rows, counts = [], set()
    for new in new_methods:
        for base in baselines:
            cells = []
            for c in doc["columns"]:
                a, b = by.get((new, c["id"]), {}), by.get((base, c["id"]), {})
                ids = sorted(set(a) & set(b))
                counts.add(len(ids))
                cell = []
                for k, key in enumerate(keys):
                    if len(ids) < 2:
                        cell.append(report.Mark("–"))
                        continue
                    cmp = paired_comparison([a[i][key] for i in ids], [b[i][key] for i in ids])
                    cell.append(report.Mark(f"{cmp.mean_diff:+.{decimals[k]}f}" + ("*" if cmp.significant() else "")))
                cells.append(cell)
            rows.append(report.Row(f"{new} − {base}", cells, kind="delta"))
    from itertools import groupby

    groups = [(g, len(list(items))) for g, items in groupby(c["group"] for c in doc["columns"])]
    n = ", ".join(str(c) for c in sorted(counts))
    caption = (f"Paired per-image differences, new method minus reproduced row, mean over each column's images "
               f"({' / '.join(names)}; n = {n} images per column). *: significant — the 95% paired bootstrap "
               "interval of the mean difference excludes 0 and the Wilcoxon signed-rank p < 0.05.")
    smallest = min(c for c in counts if c >= 2) if any(c >= 2 for c in counts) else 0
    if 2 <= smallest < 6:
        caption += (f" With {smallest} images the smallest possible two-sided Wilcoxon p is "
                    f"{2 / 2 ** smallest:.3g}, so no difference can be marked significant: more test images are needed.")
    return report.Table(title=f"{doc['title']} — paired significance of the new methods", caption=caption,
                        label=doc["profile_label"], groups=groups, column_labels=[c["label"] for c in doc["columns"]],
                        rows=rows, show_params=False, corner="New − reproduced")


def compare(docs: list[dict], *, against: str | None = None, new: list[str] | None = None,
            sources: list[str] | None = None) -> Comparison:
    if not docs:
        raise HarnessError("compare needs at least one run")
    if against not in (None, "paper"):
        raise HarnessError(f"--against takes 'paper', got '{against}'")
    merged, notes = merge(docs, sources)
    names = [m["name"] for m in merged["methods"]]
    if new:
        unknown = [n for n in new if n not in names]
        if unknown:
            raise HarnessError(f"--new names {unknown}, which the runs do not have; rows: {', '.join(names)}")
        new_methods = list(new)
    else:
        official = _suite_rows(merged)
        if official:
            new_methods = [n for n in names if n not in official]
        else:  # the suite is not known by name: rows the first run lacks are the new ones
            first = {m["name"] for m in docs[0]["methods"]}
            new_methods = [n for n in names if n not in first]
    merged["footnotes"] = list(merged.get("footnotes", [])) + notes
    paper = report.paper_rows(merged) if against == "paper" else None
    if against == "paper" and not paper:
        raise HarnessError(f"suite '{merged['suite']}' has no rows printed in the paper (or is not a known suite id)")
    tables = report.build_tables(merged, paper=paper, new_methods=new_methods)
    baselines = [n for n in names if n not in new_methods]
    paired = paired_table(merged, new_methods, baselines)
    if paired is not None:
        tables.append(paired)
    if paper:
        delta = report.build_delta_table(merged, paper)
        if delta is not None:
            tables.append(delta)
    return Comparison(merged, new_methods, tables, notes)


def compare_runs(paths: list[str | pathlib.Path], **kw) -> Comparison:
    """Load run folders (or results.json files, or folders with a LATEST pointer) and compare them."""
    from harness.gate import resolve_run

    docs = [resolve_run(p) for p in paths]
    return compare(docs, sources=[str(p) for p in paths], **kw)


FORMATS = ("text", "markdown", "latex", "html")


def render(comparison: Comparison, fmt: str = "text") -> str:
    tables = comparison.tables
    if fmt == "text":
        return "\n".join(report.render_text(t) for t in tables)
    if fmt == "markdown":
        return "\n".join(report.render_markdown(t) for t in tables)
    if fmt == "latex":
        return "\n".join(report.render_latex(t) for t in tables)
    if fmt == "html":
        return report.render_html(*tables)
    raise HarnessError(f"unknown format '{fmt}'; allowed: {', '.join(FORMATS)}")
