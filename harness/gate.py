"""Regression gate: compare a run's cells with a golden results file, for CI.

A golden file holds, per (method, column), the mean of every metric and the image count.
``check`` lists every cell that drifted beyond the tolerances, is missing from the run, or
is new; CI fails on any of them. ``write_golden`` makes the file from a run.
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

from harness import atomic
from harness.errors import HarnessError
from harness.store import load_results, load_versioned_json

GOLDEN_VERSION = 1
DEFAULT_TOLERANCES = {"psnr": 0.05, "ssim": 0.002}


@dataclass(frozen=True)
class Drift:
    method: str
    column: str
    metric: str
    golden: float | None
    run: float | None

    def __str__(self) -> str:
        if self.run is None:
            return f"{self.method} / {self.column}: missing from the run (golden {self.metric} {self.golden:.4f})"
        if self.golden is None:
            return f"{self.method} / {self.column}: not in the golden file ({self.metric} {self.run:.4f})"
        return (f"{self.method} / {self.column} / {self.metric}: {self.run:.4f} vs golden {self.golden:.4f} "
                f"(Δ {self.run - self.golden:+.4f})")


def resolve_run(path: str | pathlib.Path) -> dict:
    """A run folder, its results.json, or a results root's LATEST pointer target."""
    path = pathlib.Path(path)
    if path.is_file() and path.name == "results.json":
        path = path.parent
    if (path / "LATEST").is_file():
        path = path / (path / "LATEST").read_text().strip()
    return load_results(path)


def golden_from_results(doc: dict) -> dict:
    cells = {m: {c: {k: v for k, v in vals.items()} for c, vals in cols.items()} for m, cols in doc["cells"].items()}
    return {
        "golden_version": GOLDEN_VERSION, "suite": doc["suite"], "profile": doc["profile"], "seed": doc["seed"],
        "metrics": doc["metrics"], "profile_label": doc["profile_label"],
        "source_run": doc.get("run_id"), "cells": cells,
    }


def write_golden(doc: dict, path: str | pathlib.Path) -> pathlib.Path:
    return atomic.write_text(path, json.dumps(golden_from_results(doc), indent=2, sort_keys=True) + "\n")


def load_golden(path: str | pathlib.Path) -> dict:
    path = pathlib.Path(path)
    return load_versioned_json(
        path, "golden_version", GOLDEN_VERSION,
        f"golden file '{path}' does not exist; create it with `dacode-bench gate RUN --golden {path} --update`",
    )


def _tolerance(metric: str, tolerances: dict[str, float]) -> float:
    for prefix, tol in tolerances.items():
        if metric.startswith(prefix):
            return tol
    raise HarnessError(f"no tolerance for metric '{metric}'; give one of {', '.join(tolerances)}")


def check(doc: dict, golden: dict, tolerances: dict[str, float] | None = None) -> list[Drift]:
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    if (doc["suite"], doc["profile"]) != (golden["suite"], golden["profile"]):
        raise HarnessError(
            f"the run is {doc['suite']}/{doc['profile']} but the golden file is {golden['suite']}/{golden['profile']}"
        )
    drifts: list[Drift] = []
    run_cells = doc["cells"]
    for method, columns in golden["cells"].items():
        for column, values in columns.items():
            got = run_cells.get(method, {}).get(column)
            for metric in golden["metrics"]:
                if got is None:
                    drifts.append(Drift(method, column, metric, values[metric], None))
                    break
                if abs(got[metric] - values[metric]) > _tolerance(metric, tolerances):
                    drifts.append(Drift(method, column, metric, values[metric], got[metric]))
    for method, columns in run_cells.items():
        for column, values in columns.items():
            if column not in golden["cells"].get(method, {}):
                drifts.append(Drift(method, column, golden["metrics"][0], None, values[golden["metrics"][0]]))
    return drifts
