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
from harness.data.images import IMAGE_SUFFIXES, read_rgb
from harness.data.sources import prepare as prepare_data
from harness.errors import HarnessError
from harness.metrics import get_protocol, score
from harness.profile import count_parameters, format_params
from harness.store import (
    SCHEMA_VERSION, ResultsDB, RunWriter, code_fingerprint, file_sha256, new_run_id, provenance, stable_hash,
)
from harness.suite import MethodEntry, Suite, load_suite, resolve_suite_path
from harness.train import Schedule, distributed_context, to_tensor, train


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


def _select_methods(suite: Suite, names: list[str] | None, profile: str) -> list[MethodEntry]:
    if not names:
        subset = suite.profiles[profile].methods
        return [m for m in suite.methods if subset is None or m.name in subset]
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


def _steps_per_epoch(train_cfg, sampler) -> int:
    """Optimiser steps in one pass over the training mixture (with its repetition factors)."""
    try:
        samples = len(sampler)
    except TypeError:
        samples = sum(len(v) for v in getattr(sampler, "pairs", {}).values())
    return max(1, samples // train_cfg.batch_size)


def _steps_for(train_cfg, sampler) -> int:
    if train_cfg.steps is not None:
        return train_cfg.steps
    return train_cfg.epochs * _steps_per_epoch(train_cfg, sampler)


def _group_by_shape(pairs) -> list[list]:
    groups: dict[tuple[int, ...], list] = {}
    for pair in pairs:
        groups.setdefault(pair.clean.shape, []).append(pair)
    return list(groups.values())


def _score(restored: torch.Tensor, clean: torch.Tensor, pairs, metric_names, timings: Timings) -> list[dict]:
    t0 = time.perf_counter()
    values = {name: score(name, restored, clean) for name in metric_names}
    timings.metrics += time.perf_counter() - t0
    return [{"image_id": p.image_id, **{k: float(v[i]) for k, v in values.items()}} for i, p in enumerate(pairs)]


EVAL_BATCH = 8  # images of equal size per forward; bounds memory on full-size models


def evaluate(model: torch.nn.Module, test_set: TestSet, metric_names: tuple[str, ...], timings: Timings) -> list[dict]:
    """Per-image metrics for one column. Images of equal size are batched, and the metrics
    run on the device the model ran on (pyiqa's and our SSIM are torch ops)."""
    rows: list[dict] = []
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    for group in _group_by_shape(test_set.pairs):
        for start in range(0, len(group), EVAL_BATCH):
            pairs = group[start : start + EVAL_BATCH]
            degraded = to_tensor(np.stack([p.degraded for p in pairs])).to(device)
            clean = to_tensor(np.stack([p.clean for p in pairs])).to(device)
            t0 = time.perf_counter()
            with torch.no_grad():
                restored = model(degraded).float().clamp(0.0, 1.0)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            timings.eval += time.perf_counter() - t0
            rows += _score(restored, clean, pairs, metric_names, timings)
    return rows


def evaluate_outputs(folder: pathlib.Path, test_set: TestSet, metric_names: tuple[str, ...], timings: Timings) -> list[dict]:
    """Score already restored images ``<folder>/<column id>/<image id>.<ext>`` without a model."""
    column_dir = folder / test_set.column_id
    found = {p.stem: p for p in column_dir.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES} if column_dir.is_dir() else {}
    missing = [p.image_id for p in test_set.pairs if p.image_id not in found]
    if missing:
        raise HarnessError(
            f"outputs folder '{column_dir}' lacks {len(missing)} of {len(test_set.pairs)} restored images "
            f"(e.g. {', '.join(missing[:3])}); expected <image id>.png per test image"
        )
    rows: list[dict] = []
    for pairs in _group_by_shape(test_set.pairs):
        restored_imgs = []
        for pair in pairs:
            img = read_rgb(found[pair.image_id])
            if img.shape != pair.clean.shape:
                raise HarnessError(
                    f"{found[pair.image_id]}: size {img.shape[1]}×{img.shape[0]} differs from the target's "
                    f"{pair.clean.shape[1]}×{pair.clean.shape[0]} (the protocol's crop: {test_set.notes.get('crop', 'none')})"
                )
            restored_imgs.append(img)
        rows += _score(to_tensor(np.stack(restored_imgs)), to_tensor(np.stack([p.clean for p in pairs])),
                       pairs, metric_names, timings)
    return rows


@dataclass
class RunContext:
    """What every row of one run shares."""

    suite: Suite
    profile: str
    test_sets: list[TestSet]
    sampler: object
    train_cfg: object
    n_steps: int
    seed: int
    progress: bool
    log: object
    timings: Timings
    db: ResultsDB
    run_id: str
    inputs: dict  # code fingerprint, data provenance: part of every cache key
    checkpoint_every: int = 50
    device: str = "cpu"


def _method_key(entry: MethodEntry, ctx: RunContext) -> str:
    checkpoint = entry.checkpoint and file_sha256(pathlib.Path(entry.checkpoint).expanduser())
    return stable_hash({
        "entry": entry.model_dump(exclude={"name", "citation"}), "kwargs": entry.constructor_kwargs(ctx.profile),
        "checkpoint_sha256": checkpoint, "profile": ctx.profile, "seed": ctx.seed, "steps": ctx.n_steps,
        "train": entry.train_config(ctx.profile, ctx.train_cfg).model_dump(), "inputs": ctx.inputs,
        "device": ctx.device,
    })


def _cell_key(method_key: str, column, ctx: RunContext) -> str:
    return stable_hash({"method": method_key, "column": column.model_dump(), "metrics": list(ctx.suite.metrics),
                        "data": ctx.suite.data.model_dump()})


def _obtain_model(entry: MethodEntry, method_key: str, ctx: RunContext, doc: dict) -> torch.nn.Module:
    """Build the row's model: released/own checkpoint, cached trained weights, or train (resumably)."""
    torch.manual_seed(ctx.seed)
    model, loaded = method_registry.instantiate(entry, ctx.profile)
    n_params, _ = count_parameters(model)
    doc["params"], doc["params_display"] = n_params, format_params(n_params)
    if loaded:
        doc["checkpoint_sha256"] = file_sha256(pathlib.Path(entry.checkpoint).expanduser())
        ctx.log(f"[{entry.name}] {format_params(n_params)} parameters; loaded {entry.checkpoint}")
        return model
    if not getattr(model, "can_train", True):
        raise HarnessError(f"method '{entry.name}' cannot train (can_train = False); give it a 'checkpoint'")
    weights = ctx.db.weights_path(method_key)
    cached = ctx.db.method_doc(method_key)
    if cached is not None and weights.is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(weights)))
        doc["train"] = cached.get("train")
        ctx.log(f"[{entry.name}] reusing weights trained earlier from identical inputs ({weights.name})")
        return model.eval()
    _, n_steps = _row_training(entry, ctx)
    ctx.log(f"[{entry.name}] {format_params(n_params)} parameters; training {n_steps} steps on {ctx.device}")
    t_train = time.perf_counter()
    result = _train_row(model, entry, method_key, ctx, progress=ctx.progress)
    train_s = time.perf_counter() - t_train
    ctx.timings.train += train_s
    doc["train"] = {"steps": result.steps, "final_loss": result.final_loss,
                    "images_per_second": round(result.images_per_second, 2), "seconds": round(train_s, 3)}
    _save_weights(model, weights)
    ctx.db.training_checkpoint_path(method_key).unlink(missing_ok=True)
    ctx.log(f"[{entry.name}] trained in {train_s:.1f}s (final loss {result.final_loss:.4f}, "
            f"{result.images_per_second:.1f} img/s)")
    return model


def _row_training(entry: MethodEntry, ctx: RunContext):
    """(training config, optimiser steps) of a row: the profile's, with the row's overrides."""
    cfg = entry.train_config(ctx.profile, ctx.train_cfg)
    return cfg, ctx.n_steps if cfg is ctx.train_cfg else _steps_for(cfg, ctx.sampler)


def _train_row(model: torch.nn.Module, entry: MethodEntry, method_key: str, ctx: RunContext, progress: bool):
    cfg, n_steps = _row_training(entry, ctx)
    per_epoch = _steps_per_epoch(cfg, ctx.sampler)
    schedule = Schedule(kind=cfg.schedule, warmup_steps=cfg.warmup_steps, steps_per_epoch=per_epoch,
                        warmup_epochs=cfg.warmup_epochs, max_epochs=cfg.epochs or max(1, n_steps // per_epoch))
    return train(
        model, ctx.sampler, steps=n_steps, batch_size=cfg.batch_size, patch_size=cfg.patch_size,
        lr=cfg.lr, weight_decay=cfg.weight_decay, schedule=schedule, seed=ctx.seed,
        progress=progress, label=entry.name, checkpoint_path=ctx.db.training_checkpoint_path(method_key),
        # the paper profile checkpoints every epoch; the short mini runs every 50 steps
        checkpoint_every=per_epoch if cfg.epochs else ctx.checkpoint_every,
        device=ctx.device, bf16=cfg.bf16, channels_last=cfg.channels_last, compile_model=cfg.compile,
    )


def _save_weights(model: torch.nn.Module, path: pathlib.Path) -> None:
    from safetensors.torch import save

    from harness import atomic

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    atomic.write_bytes(path, save(state))


def _run_method(entry: MethodEntry, ctx: RunContext) -> tuple[list[dict], dict]:
    """One row: reuse cached cells, else train or load the model (or read its outputs folder)
    and score every missing column, storing each column as soon as it is done."""
    suite, timings = ctx.suite, ctx.timings
    doc: dict = {"name": entry.name, "model": entry.model, "build": entry.build, "outputs": entry.outputs,
                 "citation": entry.citation, "overrides": entry.constructor_kwargs(ctx.profile),
                 "checkpoint": entry.checkpoint, "params": None, "params_display": "-", "train": None}
    eval_before, metrics_before, train_before = timings.eval, timings.metrics, timings.train
    rows_by_column: dict[str, list[dict]] = {}
    if entry.outputs:  # scoring files is cheap and the files may change: never cached
        folder = pathlib.Path(entry.outputs).expanduser()
        ctx.log(f"[{entry.name}] scoring restored images from {folder}")
        for test_set in ctx.test_sets:
            rows_by_column[test_set.column_id] = evaluate_outputs(folder, test_set, suite.metrics, timings)
    else:
        method_key = _method_key(entry, ctx)
        keys = {c.id: _cell_key(method_key, c, ctx) for c in suite.columns}
        for column_id, key in keys.items():
            cached = ctx.db.cell(key)
            if cached is not None:
                rows_by_column[column_id] = cached
        cached_doc = ctx.db.method_doc(method_key)
        if len(rows_by_column) == len(keys) and cached_doc is not None:
            ctx.log(f"[{entry.name}] all {len(keys)} columns already computed from identical inputs; reused")
            doc = {**cached_doc, "name": entry.name, "citation": entry.citation}
        else:
            model = _obtain_model(entry, method_key, ctx, doc)
            ctx.db.put_method(method_key, entry.name, doc)
            for test_set in ctx.test_sets:
                if test_set.column_id in rows_by_column:
                    continue
                rows = evaluate(model, test_set, suite.metrics, timings)
                ctx.db.put_cell(keys[test_set.column_id], method_key, ctx.run_id, entry.name, test_set.column_id, rows)
                rows_by_column[test_set.column_id] = rows
        doc["method_key"] = method_key
    timings.per_method[entry.name] = {
        "train_s": round(timings.train - train_before, 3),
        "eval_s": round(timings.eval - eval_before, 3),
        "metrics_s": round(timings.metrics - metrics_before, 3),
    }
    columns = {c.id: c for c in suite.columns}
    datasets = {ts.column_id: ts.dataset_id for ts in ctx.test_sets}
    per_image = [{"method": entry.name, "column": column_id, "dataset": datasets[column_id],
                  "task": columns[column_id].task, "sigma": columns[column_id].sigma, **r}
                 for column_id in (c.id for c in suite.columns) for r in rows_by_column[column_id]]
    return per_image, doc


def _follow_training(entries: list[MethodEntry], ctx: RunContext) -> None:
    """Under torchrun, ranks other than 0 only join the training loops (DistributedDataParallel
    needs every rank there); rank 0 evaluates and stores. Each rank decides, from the same
    files, exactly as rank 0 does whether a row needs training."""
    for entry in entries:
        if entry.outputs:
            continue
        method_key = _method_key(entry, ctx)
        all_cached = all(ctx.db.cell(_cell_key(method_key, c, ctx)) is not None for c in ctx.suite.columns)
        if all_cached and ctx.db.method_doc(method_key) is not None:
            continue
        torch.manual_seed(ctx.seed)
        model, loaded = method_registry.instantiate(entry, ctx.profile)
        if loaded or ctx.db.weights_path(method_key).is_file() and ctx.db.method_doc(method_key) is not None:
            continue
        _train_row(model, entry, method_key, ctx, progress=False)


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
    checkpoint_every: int = 50,
    device: str | None = None,
    checkpoints: dict[str, str] | None = None,
) -> RunOutcome | None:
    """Run one suite (under torchrun, ranks other than 0 train and return None).

    ``device`` defaults to the CPU for the mini profile (bit-identical metrics) and to the GPU,
    where there is one, for the paper profile. ``checkpoints`` maps row names
    to weight files that replace training (``--checkpoints NAME=PATH``)."""
    suite = load_suite(suite_name)
    suite_path = resolve_suite_path(suite_name)
    profile_cfg = suite.profile(profile)
    entries = _select_methods(suite, method_names, profile)
    for name, path in (checkpoints or {}).items():
        matches = [i for i, e in enumerate(entries) if e.name.lower() == name.lower()]
        if not matches:
            raise HarnessError(f"--checkpoints names row '{name}', which this run does not have; rows: "
                               f"{', '.join(e.name for e in entries)}")
        entries[matches[0]] = entries[matches[0]].model_copy(update={"checkpoint": path})
    if device is None:
        device = "cuda" if profile != "mini" and torch.cuda.is_available() else "cpu"
    for entry in entries:
        method_registry.check_entry(entry)
    for name in suite.metrics:
        get_protocol(name)
    root = pathlib.Path(data_root).expanduser().resolve() if data_root else None

    timings = Timings()
    t0 = time.perf_counter()
    prepared = prepare_data(suite, profile, root, seed)
    test_sets, sampler, label = prepared.test_sets, prepared.sampler, prepared.label
    timings.data = time.perf_counter() - t0
    train_cfg = profile_cfg.train
    n_steps = steps if steps is not None else _steps_for(train_cfg, sampler)

    torch.use_deterministic_algorithms(True, warn_only=True)
    suite_hash = hashlib.sha256(suite_path.read_bytes()).hexdigest()
    run_id = new_run_id(suite_hash)
    data_doc = {"protocol": suite.data.model_dump(), **prepared.provenance,
                "columns": {ts.column_id: {"dataset": ts.dataset_id, "n_images": len(ts.pairs), **ts.notes}
                            for ts in test_sets}}
    run_provenance = provenance()
    per_image: list[dict] = []
    method_docs: list[dict] = []
    rank, world = distributed_context()
    if rank != 0:
        with ResultsDB(pathlib.Path(results_root)) as db:
            ctx = RunContext(suite, profile, test_sets, sampler, train_cfg, n_steps, seed, False, lambda *a: None,
                             timings, db, run_id, inputs={"code": code_fingerprint(), "data": data_doc},
                             checkpoint_every=checkpoint_every, device=device)
            _follow_training(entries, ctx)
        return None
    with ResultsDB(pathlib.Path(results_root)) as db:
        db.start_run(run_id, suite.name, suite_hash, profile, seed, run_provenance, data_doc)
        ctx = RunContext(suite, profile, test_sets, sampler, train_cfg, n_steps, seed, progress, log, timings, db,
                         run_id, inputs={"code": code_fingerprint(), "data": data_doc}, checkpoint_every=checkpoint_every,
                         device=device)
        try:
            for entry in entries:
                rows, doc = _run_method(entry, ctx)
                per_image += rows
                method_docs.append(doc)
        except BaseException as exc:  # interrupted or failed: finished cells stay stored for the rerun
            db.end_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
            raise

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
        "layout": suite.layout.model_dump(),
        "columns": [c.model_dump() for c in suite.columns],
        "train": {**train_cfg.model_dump(), "steps_run": n_steps},
        "run_id": run_id, "data": data_doc,
        "methods": method_docs, "cells": cells, "averages": averages, "footnotes": footnotes,
        "provenance": run_provenance, "timings": None,
        "per_image": per_image,
    }
    t_render = time.perf_counter()
    # the paper's printed rows stand beside the reproduced ones (ranked apart on the mini profile)
    latex, html, text = report.render_all(results, paper=report.paper_rows(results))
    timings.render = time.perf_counter() - t_render
    results["timings"] = timings.as_dict()

    writer = RunWriter(pathlib.Path(results_root), suite.name, profile, run_id)
    with writer:
        writer.write_json("results.json", results)
        writer.write_csv("per_image.csv", frame)
        writer.write_text("table.tex", latex)
        writer.write_text("table.html", html)
        writer.write_text("table.txt", text)
    with ResultsDB(pathlib.Path(results_root)) as db:
        db.end_run(run_id, "complete", results["timings"])
    return RunOutcome(writer.final, results, text, timings)


def print_breakdown(outcome: RunOutcome, total_s: float, stream=sys.stdout) -> None:
    t = outcome.timings
    print(
        f"time: total {total_s:.1f}s = data {t.data:.1f}s + train {t.train:.1f}s + "
        f"eval {t.eval + t.metrics:.1f}s (model {t.eval:.1f}s, metrics {t.metrics:.1f}s) + render {t.render:.2f}s",
        file=stream,
    )
