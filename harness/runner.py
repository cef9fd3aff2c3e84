"""The runner: suite → data → (train) → evaluate → store → render.

For each method row it builds the model with the profile's overrides, trains one
all-in-one model on the mixture of the table's degradations (the paper's protocol),
evaluates every column, and stores per-image metrics. Everything the user could get
wrong (suite, profile, method ids, data) is checked before any compute is spent.
"""
from __future__ import annotations

import hashlib
import pathlib
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from harness import methods as method_registry
from harness import report
from harness.data import TestSet
from harness.data import mini as mini_data
from harness.errors import HarnessError
from harness.metrics import get_protocol, score
from harness.profile import count_parameters, format_params
from harness.store import SCHEMA_VERSION, RunWriter, new_run_id, provenance
from harness.suite import MethodEntry, Suite, load_suite, resolve_suite_path
from harness.train import to_tensor, train


@dataclass
class Timings:
    data: float = 0.0
    train: float = 0.0
    eval: float = 0.0
    metrics: float = 0.0
    render: float = 0.0
    per_method: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "data_s": round(self.data, 3), "train_s": round(self.train, 3), "eval_s": round(self.eval, 3),
            "metrics_s": round(self.metrics, 3), "render_s": round(self.render, 3), "per_method": self.per_method,
        }


@dataclass
class RunOutcome:
    run_dir: pathlib.Path
    results: dict
    text_table: str
    timings: Timings


def _select_methods(suite: Suite, names: list[str] | None) -> list[MethodEntry]:
    if not names:
        return list(suite.methods)
    by_name = {m.name.lower(): m for m in suite.methods}
    by_model = {m.model.lower(): m for m in suite.methods}
    chosen = []
    for name in names:
        entry = by_name.get(name.lower()) or by_model.get(name.lower())
        if entry is None:
            allowed = ", ".join(m.name for m in suite.methods)
            raise HarnessError(f"suite '{suite.name}' has no method '{name}'; allowed: {allowed}")
        chosen.append(entry)
    return chosen


def _column_tasks(suite: Suite) -> list[tuple[str, float | None]]:
    return [(c.task, c.sigma) for c in suite.columns]


def _prepare_data(suite: Suite, profile: str, data_root: pathlib.Path | None, seed: int):
    if profile == "mini":
        test_sets = [mini_data.test_set(c.id, c.dataset, c.task, c.sigma, seed=seed) for c in suite.columns]
        return test_sets, mini_data.MiniPatchSampler(_column_tasks(suite)), mini_data.LABEL
    from harness.data import paper as paper_data

    for c in suite.columns:
        paper_data.require_known(c.dataset, c.task)
    paper_data.check_data_root(data_root, [c.dataset for c in suite.columns], [c.task for c in suite.columns])
    test_sets = [paper_data.test_set(data_root, c.id, c.dataset, c.sigma, seed=seed) for c in suite.columns]
    label = suite.profiles[profile].description
    return test_sets, paper_data.PaperPatchSampler(data_root, _column_tasks(suite)), label


def _steps_for(train_cfg, sampler) -> int:
    if train_cfg.steps is not None:
        return train_cfg.steps
    n_images = sum(len(v) for v in getattr(sampler, "pairs", {}).values()) or 1
    return max(1, train_cfg.epochs * n_images // train_cfg.batch_size)


def evaluate(model: torch.nn.Module, test_set: TestSet, metric_names: tuple[str, ...], timings: Timings) -> list[dict]:
    """Per-image metrics for one column; images of equal size are batched."""
    rows: list[dict] = []
    by_shape: dict[tuple[int, ...], list] = {}
    for pair in test_set.pairs:
        by_shape.setdefault(pair.clean.shape, []).append(pair)
    model.eval()
    for pairs in by_shape.values():
        degraded = to_tensor(np.stack([p.degraded for p in pairs]))
        clean = to_tensor(np.stack([p.clean for p in pairs]))
        t0 = time.perf_counter()
        with torch.no_grad():
            restored = model(degraded).clamp(0.0, 1.0)
        t1 = time.perf_counter()
        values = {name: score(name, restored, clean) for name in metric_names}
        timings.metrics += time.perf_counter() - t1
        timings.eval += t1 - t0
        for i, pair in enumerate(pairs):
            rows.append({"image_id": pair.image_id, **{k: float(v[i]) for k, v in values.items()}})
    return rows


def run_suite(
    suite_name: str,
    *,
    profile: str = "mini",
    data_root: str | pathlib.Path | None = None,
    results_root: str | pathlib.Path = "results",
    seed: int = 0,
    method_names: list[str] | None = None,
    steps: int | None = None,
    progress: bool = True,
    log=print,
) -> RunOutcome:
    suite = load_suite(suite_name)
    suite_path = resolve_suite_path(suite_name)
    profile_cfg = suite.profile(profile)
    entries = _select_methods(suite, method_names)
    for entry in entries:
        method_registry.get_method(entry.model)
    for name in suite.metrics:
        get_protocol(name)
    root = pathlib.Path(data_root).expanduser().resolve() if data_root else None

    timings = Timings()
    t0 = time.perf_counter()
    test_sets, sampler, label = _prepare_data(suite, profile, root, seed)
    timings.data = time.perf_counter() - t0
    train_cfg = profile_cfg.train
    n_steps = steps if steps is not None else _steps_for(train_cfg, sampler)

    torch.use_deterministic_algorithms(True, warn_only=True)
    per_image: list[dict] = []
    method_docs: list[dict] = []
    for entry in entries:
        overrides = entry.overrides.get(profile, {})
        torch.manual_seed(seed)
        model = method_registry.build_model(entry.model, overrides)
        n_params, _ = count_parameters(model)
        log(f"[{entry.name}] {format_params(n_params)} parameters; training {n_steps} steps")
        t_train = time.perf_counter()
        result = train(
            model, sampler, steps=n_steps, batch_size=train_cfg.batch_size, patch_size=train_cfg.patch_size,
            lr=train_cfg.lr, weight_decay=train_cfg.weight_decay, warmup_steps=train_cfg.warmup_steps,
            seed=seed, progress=progress, label=entry.name,
        )
        train_s = time.perf_counter() - t_train
        timings.train += train_s
        eval_before, metrics_before = timings.eval, timings.metrics
        for column, test_set in zip(suite.columns, test_sets):
            for row in evaluate(model, test_set, suite.metrics, timings):
                per_image.append({
                    "method": entry.name, "column": column.id, "dataset": test_set.dataset_id,
                    "task": column.task, "sigma": column.sigma, **row,
                })
        timings.per_method[entry.name] = {
            "train_s": round(train_s, 3),
            "eval_s": round(timings.eval - eval_before, 3),
            "metrics_s": round(timings.metrics - metrics_before, 3),
        }
        method_docs.append({
            "name": entry.name, "model": entry.model, "citation": entry.citation, "overrides": overrides,
            "params": n_params, "params_display": format_params(n_params),
            "train": {"steps": result.steps, "final_loss": result.final_loss,
                      "images_per_second": round(result.images_per_second, 2)},
        })
        log(f"[{entry.name}] trained in {train_s:.1f}s (final L1 {result.final_loss:.4f}, "
            f"{result.images_per_second:.1f} img/s)")

    frame = pd.DataFrame(per_image)
    cells: dict[str, dict[str, dict[str, float]]] = {}
    averages: dict[str, dict[str, float]] = {}
    for entry in entries:
        sub = frame[frame["method"] == entry.name]
        cells[entry.name] = {
            c.id: {**{m: float(sub[sub["column"] == c.id][m].mean()) for m in suite.metrics},
                   "n_images": int((sub["column"] == c.id).sum())}
            for c in suite.columns
        }
        # The paper's Average is the mean of the column means (checked against Table 1).
        averages[entry.name] = {m: float(np.mean([cells[entry.name][c.id][m] for c in suite.columns])) for m in suite.metrics}

    suite_hash = hashlib.sha256(suite_path.read_bytes()).hexdigest()
    protocols = [get_protocol(m) for m in suite.metrics]
    footnotes = [
        f"{p.display}: protocol '{p.name}' — {p.channel}, {p.library}, window {p.window}, "
        f"{p.quantisation}, border crop {p.border_crop}." for p in protocols
    ]
    if not profile_cfg.comparable_with_paper:
        footnotes.append(f"{label}. Params are those of the small configurations trained here.")
    results = {
        "schema_version": SCHEMA_VERSION,
        "suite": suite.name, "suite_sha256": suite_hash, "source": suite.source,
        "title": f"{suite.source}: {suite.title}", "caption": suite.caption,
        "profile": profile, "profile_label": label, "comparable_with_paper": profile_cfg.comparable_with_paper,
        "seed": seed, "metrics": list(suite.metrics), "show_params": suite.show_params,
        "columns": [c.model_dump() for c in suite.columns],
        "train": {**train_cfg.model_dump(), "steps_run": n_steps},
        "data": {ts.column_id: {"dataset": ts.dataset_id, "n_images": len(ts.pairs), **ts.notes} for ts in test_sets},
        "methods": method_docs, "cells": cells, "averages": averages, "footnotes": footnotes,
        "provenance": provenance(), "timings": None,
        "per_image": per_image,
    }
    t_render = time.perf_counter()
    table = report.build_table(results)
    latex, html, text = report.render_latex(table), report.render_html(table), report.render_text(table)
    timings.render = time.perf_counter() - t_render
    results["timings"] = timings.as_dict()

    writer = RunWriter(pathlib.Path(results_root), suite.name, profile, new_run_id(suite_hash))
    with writer:
        writer.write_json("results.json", results)
        writer.write_csv("per_image.csv", frame)
        writer.write_text("table.tex", latex)
        writer.write_text("table.html", html)
        writer.write_text("table.txt", text)
    return RunOutcome(writer.final, results, text, timings)


def print_breakdown(outcome: RunOutcome, total_s: float, stream=sys.stdout) -> None:
    t = outcome.timings
    print(
        f"time: total {total_s:.1f}s = data {t.data:.1f}s + train {t.train:.1f}s + "
        f"eval {t.eval + t.metrics:.1f}s (model {t.eval:.1f}s, metrics {t.metrics:.1f}s) + render {t.render:.2f}s",
        file=stream,
    )
