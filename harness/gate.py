"""Regression gate: compare a run's cells with a golden results file, for CI.

A golden file holds, per (method, column), the mean of every metric and the image count.
``check`` lists every cell that drifted beyond its metric's tolerance (the protocol's
``gate_tolerance``: PSNR 0.05 dB, SSIM 0.002, unless given), is missing from the run, or is
new; CI fails on any of them. ``write_golden`` makes the file from a run.
"""
from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass

from harness import atomic
from harness.errors import HarnessError
from harness.metrics import get_protocol
from harness.results import RunResults
from harness.store import load_versioned_json

GOLDEN_VERSION = 1


@dataclass(frozen=True)
class Drift:
    method: str
    column: str
    metric: str
    golden: float | None
    run: float | None

    def __str__(self) -> str:
        if self.metric == "n_images":
            return f"{self.method} / {self.column}: {self.run} images, the golden file has {self.golden}"
        if self.run is None:
            return f"{self.method} / {self.column}: missing from the run (golden {self.metric} {self.golden:.4f})"
        if self.golden is None:
            return f"{self.method} / {self.column}: not in the golden file ({self.metric} {self.run:.4f})"
        return (f"{self.method} / {self.column} / {self.metric}: {self.run:.4f} vs golden {self.golden:.4f} "
                f"(Δ {self.run - self.golden:+.4f})")


def golden_from_results(doc: RunResults) -> dict:
    cells = {m: {c: {**cell.values, "n_images": cell.n_images} for c, cell in cols.items()}
             for m, cols in doc.cells.items()}
    return {
        "golden_version": GOLDEN_VERSION, "suite": doc.suite, "profile": doc.profile, "seed": doc.seed,
        "metrics": list(doc.metrics), "profile_label": doc.profile_label, "source_run": doc.run_id, "cells": cells,
    }


def write_golden(doc: RunResults, path: str | pathlib.Path) -> pathlib.Path:
    return atomic.write_text(path, json.dumps(golden_from_results(doc), indent=2, sort_keys=True) + "\n")


def load_golden(path: str | pathlib.Path) -> dict:
    """Read and check a golden file: its version, its keys, at least one cell with a value per metric."""
    path = pathlib.Path(path)
    doc = load_versioned_json(
        path, "golden_version", GOLDEN_VERSION,
        f"golden file '{path}' does not exist; create it with `dacode-bench gate RUN --golden {path} --update`",
    )
    for key, kind in (("suite", str), ("profile", str), ("metrics", list), ("cells", dict)):
        if not isinstance(doc.get(key), kind):
            raise HarnessError(f"{path}: the golden file lacks '{key}' (a {kind.__name__}); rewrite it with "
                               "`dacode-bench gate RUN --golden FILE --update`")
    if not doc["metrics"]:
        raise HarnessError(f"{path}: 'metrics' is empty, so the gate would compare nothing")
    for name in doc["metrics"]:
        get_protocol(name)  # an unknown protocol is named
    n_cells = 0
    for method, columns in doc["cells"].items():
        if not isinstance(columns, dict):
            raise HarnessError(f"{path}: cells.{method} is not a mapping of columns")
        for column, values in columns.items():
            missing = [m for m in doc["metrics"] if not isinstance(values, dict)
                       or not isinstance(values.get(m), (int, float)) or not math.isfinite(values[m])]
            if missing:
                raise HarnessError(f"{path}: cells.{method}.{column} has no finite number for {', '.join(missing)}")
            n_cells += 1
    if n_cells == 0:
        raise HarnessError(f"{path}: the golden file holds no cells, so it cannot catch any drift; rewrite it "
                           "from a run with `dacode-bench gate RUN --golden FILE --update`")
    return doc


def tolerances_for(metrics: list[str], overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Each metric's tolerance: ``overrides`` by protocol name or by display name (``psnr``/``ssim``),
    else the protocol's own ``gate_tolerance``."""
    overrides = {k.lower(): v for k, v in (overrides or {}).items() if v is not None}
    out = {}
    for name in metrics:
        protocol = get_protocol(name)
        out[name] = overrides.get(name, overrides.get(protocol.display.lower(), protocol.gate_tolerance))
    return out


def check(doc: RunResults, golden: dict, tolerances: dict[str, float] | None = None) -> list[Drift]:
    if (doc.suite, doc.profile) != (golden["suite"], golden["profile"]):
        raise HarnessError(
            f"the run is {doc.suite}/{doc.profile} but the golden file is {golden['suite']}/{golden['profile']}"
        )
    if "seed" in golden and golden["seed"] != doc.seed:
        raise HarnessError(f"the run used --seed {doc.seed} but the golden file was made with seed {golden['seed']}")
    tol = tolerances_for(golden["metrics"], tolerances)
    drifts: list[Drift] = []
    for method, columns in golden["cells"].items():
        for column, values in columns.items():
            got = doc.cells.get(method, {}).get(column)
            for metric in golden["metrics"]:
                if got is None:
                    drifts.append(Drift(method, column, metric, values[metric], None))
                    break
                value = got.values.get(metric)
                if value is None or abs(value - values[metric]) > tol[metric]:
                    drifts.append(Drift(method, column, metric, values[metric], value))
            if got is not None and "n_images" in values and values["n_images"] != got.n_images:
                drifts.append(Drift(method, column, "n_images", values["n_images"], got.n_images))
    first = golden["metrics"][0]
    for method, columns in doc.cells.items():
        for column, cell in columns.items():
            if column not in golden["cells"].get(method, {}):
                drifts.append(Drift(method, column, first, None, cell.values.get(first)))
    return drifts
