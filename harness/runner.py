"""The runner: suite → data → methods → train/evaluate → store → render.

For each method row it gets the model from the provider (checkpoint, weights trained earlier
from identical inputs, or training on the mixture of the table's degradations, the paper's
protocol), evaluates every column not already cached, and stores per-image metrics. Everything
the user could get wrong (suite, options, profile, method ids, data, the results folder) is
checked before any compute is spent — by :func:`check_suite`, the same function
``dacode-bench validate`` runs.
"""
from __future__ import annotations

import contextlib
import pathlib
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from pydantic import ValidationError

from harness import methods as registry
from harness import provider
from harness.data.sources import prepare as prepare_data
from harness.data.sources import validate_columns
from harness.errors import HarnessError
from harness.evaluate import EvalLog, evaluate, evaluate_outputs
from harness.results import Cell, ImageScore, MethodResult, RunResults, dumps
from harness.store import (
    DB_FILE,
    ResultsDB,
    RunWriter,
    check_results_root,
    code_fingerprint,
    new_run_id,
    provenance,
    versions,
)
from harness.suite import InferencePolicy, MethodEntry, Suite, load_suite_document, suite_sha256
from harness.train import distributed_context


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
    results: RunResults
    text_table: str
    timings: Timings


# -- before any compute ---------------------------------------------------------------------------


def check_suite(suite: Suite) -> None:
    """Every check of a suite that ``run`` makes before compute, whatever the profile: columns
    against the dataset catalogue, method rows (ids, builders, outputs folders, checkpoints)."""
    validate_columns(suite)
    for entry in suite.methods:
        registry.check_entry(entry)
        for name, profile in suite.profiles.items():
            entry.train_config(name, profile.train)  # a bad per-row training override is named now
            registry.check_constructor(entry, registry.row_kwargs(entry, name, profile))


def check_options(*, seed: int, steps: int | None, device: str | None, micro_batch: int | None = None,
                  workers: int | None = None, tile: int | None = None, noise_seeds: int | None = None) -> None:
    if not 0 <= seed < 2**63:
        raise HarnessError(f"--seed {seed}: a seed is an integer from 0 to 2**63 - 1")
    if steps is not None and steps < 1:
        raise HarnessError(f"--steps {steps}: train at least one step (or give every row a checkpoint)")
    for flag, value in (("--micro-batch", micro_batch), ("--tile", tile), ("--noise-seeds", noise_seeds)):
        if value is not None and value < 1:
            raise HarnessError(f"{flag} {value}: must be at least 1")
    if workers is not None and workers < 0:
        raise HarnessError(f"--workers {workers}: must be 0 (load in the main process) or more")
    if device is not None:
        check_device(device)


def check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise HarnessError(f"--device '{device}': not a device; use cpu or cuda[:N]") from None
    if dev.type not in ("cpu", "cuda"):
        raise HarnessError(f"--device '{device}': dacode-bench runs on cpu or cuda[:N]")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise HarnessError(f"--device {device}: no CUDA device is available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise HarnessError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def select_methods(suite: Suite, names: list[str] | None, profile: str) -> list[MethodEntry]:
    if not names:
        subset = suite.profiles[profile].methods
        return [m for m in suite.methods if subset is None or m.name in subset]
    by_name = {m.name.lower(): m for m in suite.methods}
    by_model = {m.model.lower(): m for m in suite.methods if m.model}
    chosen: list[MethodEntry] = []
    for name in names:
        entry = by_name.get(name.lower()) or by_model.get(name.lower())
        if entry is None:
            allowed = ", ".join(m.name for m in suite.methods)
            raise HarnessError(f"suite '{suite.name}' has no method '{name}'; allowed: {allowed}")
        if entry not in chosen:
            chosen.append(entry)
    return chosen


def _with_checkpoints(entries: list[MethodEntry], checkpoints: dict[str, str]) -> list[MethodEntry]:
    entries = list(entries)
    for name, path in checkpoints.items():
        matches = [i for i, e in enumerate(entries) if e.name.lower() == name.lower()]
        if not matches:
            raise HarnessError(f"--checkpoints names row '{name}', which this run does not have; rows: "
                               f"{', '.join(e.name for e in entries)}")
        if entries[matches[0]].outputs:
            raise HarnessError(f"--checkpoints names row '{name}', which scores an outputs folder, not a model")
        entries[matches[0]] = entries[matches[0]].model_copy(update={"checkpoint": path})
    return entries


def _warn_if_shadowing(suite: Suite, document: dict, path: pathlib.Path) -> None:
    """A copy that keeps a bundled suite's name publishes beside its runs (and moves its LATEST): say so."""
    import warnings

    from harness.suite import SUITES_DIR, available_suites

    if path.resolve().parent == SUITES_DIR or suite.name not in available_suites():
        return
    if suite_sha256(load_suite_document(suite.name)[1]) != suite_sha256(document):
        warnings.warn(f"{path} is named '{suite.name}' like the bundled suite but differs from it; its runs are "
                      f"published beside the bundled suite's (results/{suite.name}/, LATEST included): give the copy "
                      "a name of its own to keep them apart", UserWarning, stacklevel=3)


@contextlib.contextmanager
def _deterministic():
    """Deterministic kernels for this run only (the caller's setting is restored after)."""
    before, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn)


# -- one row ---------------------------------------------------------------------------------------


def _method_result(entry: MethodEntry, ctx: provider.RowContext) -> dict:
    return {"name": entry.name, "model": entry.model, "build": entry.build, "outputs": entry.outputs,
            "citation": entry.citation, "overrides": provider.kwargs_of(entry, ctx) if not entry.outputs else {},
            "checkpoint": entry.checkpoint, "code": registry.code_identity(entry)}


def _run_method(entry: MethodEntry, ctx: provider.RowContext, test_sets, run_id: str, timings: Timings,
                eval_log: EvalLog) -> tuple[dict[str, list[dict]], dict]:
    """One row: reuse cached cells, else get the model (checkpoint, cached weights or training) or
    read its outputs folder, and score every missing column, storing each as soon as it is done."""
    suite, policy = ctx.suite, ctx.inference
    summary = _method_result(entry, ctx)
    model_before, metrics_before, train_before = eval_log.model_s, eval_log.metrics_s, ctx.train_seconds
    rows_by_column: dict[str, list[dict]] = {}
    if entry.outputs:  # scoring files is cheap and the files may change: never cached
        folder = pathlib.Path(entry.outputs).expanduser()
        ctx.log(f"[{entry.name}] scoring restored images from {folder}")
        for test_set in test_sets:
            rows_by_column[test_set.column_id] = evaluate_outputs(folder, test_set, suite.metrics, method=entry.name,
                                                                  log=eval_log)
    else:
        plan = provider.plan_row(entry, ctx)
        if plan.all_cached:
            ctx.log(f"[{entry.name}] all {len(plan.cell_keys)} columns already computed from identical inputs; reused")
            summary = {**plan.cached_doc, "name": entry.name, "citation": entry.citation}
            # the method document is shared by policies; the cells were computed under this run's
            summary["noise_seeds"] = policy.noise_seeds if summary.get("stochastic") else 1
            rows_by_column = dict(plan.cached_cells)
        else:
            rows_by_column = dict(plan.cached_cells)
            model = provider.obtain(plan, ctx, summary)
            summary["noise_seeds"] = policy.noise_seeds if summary.get("stochastic") else 1
            ctx.db.put_method(plan.key, entry.name, summary)
            for test_set in test_sets:
                if test_set.column_id in rows_by_column:
                    continue
                rows = evaluate(model, test_set, suite.metrics, policy, method=entry.name, seed=ctx.seed, log=eval_log)
                ctx.db.put_cell(plan.cell_keys[test_set.column_id], plan.key, run_id, entry.name, test_set.column_id,
                                rows, replace=ctx.recompute)
                rows_by_column[test_set.column_id] = rows
        summary["method_key"] = plan.key
    timings.per_method[entry.name] = {
        "train_s": round(ctx.train_seconds - train_before, 3),
        "eval_s": round(eval_log.model_s - model_before, 3),
        "metrics_s": round(eval_log.metrics_s - metrics_before, 3),
    }
    return rows_by_column, summary


# -- the document -----------------------------------------------------------------------------------


def aggregate(suite: Suite, entries: list[MethodEntry], rows: dict[str, dict[str, list[dict]]]
              ) -> tuple[dict[str, dict[str, Cell]], dict[str, dict[str, float]]]:
    """Cells (column mean of every metric; with noise seeds, the mean and standard deviation of the
    K seeds' column means) and the paper's Average: the mean of the column means."""
    cells: dict[str, dict[str, Cell]] = {}
    averages: dict[str, dict[str, float]] = {}
    for entry in entries:
        cells[entry.name] = {}
        for column in suite.columns:
            recs = rows[entry.name][column.id]
            by_seed: dict[int | None, list[dict]] = {}
            for r in recs:
                by_seed.setdefault(r.get("noise_seed"), []).append(r)
            means = {m: [float(np.mean([r[m] for r in group])) for group in by_seed.values()] for m in suite.metrics}
            k = len(by_seed)
            cells[entry.name][column.id] = Cell(
                n_images=len({r["image_id"] for r in recs}),
                values={m: float(np.mean(v)) for m, v in means.items()},
                spread={m: float(np.std(v, ddof=1)) for m, v in means.items()} if k > 1 else None,
                n_seeds=k,
            )
        averages[entry.name] = {m: float(np.mean([cells[entry.name][c.id].values[m] for c in suite.columns]))
                                for m in suite.metrics}
    return cells, averages


def _method_doc(summary: dict) -> MethodResult:
    # a summary cached by an earlier version may carry keys this schema no longer has
    return MethodResult.model_validate({k: v for k, v in summary.items() if k in MethodResult.model_fields})


def _image_scores(suite: Suite, test_sets, entries, rows) -> list[ImageScore]:
    columns = {c.id: c for c in suite.columns}
    datasets = {ts.column_id: ts.dataset_id for ts in test_sets}
    scores = []
    for entry in entries:
        for column_id in (c.id for c in suite.columns):
            for r in rows[entry.name][column_id]:
                scores.append(ImageScore(
                    method=entry.name, column=column_id, dataset=datasets[column_id], task=columns[column_id].task,
                    sigma=columns[column_id].sigma, image_id=r["image_id"], noise_seed=r.get("noise_seed"),
                    values={m: r[m] for m in suite.metrics}))
    return scores


# -- the whole run ------------------------------------------------------------------------------------


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
    recompute: bool = False,
    micro_batch: int | None = None,
    workers: int | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    noise_seeds: int | None = None,
) -> RunOutcome | None:
    """Run one suite (under torchrun, ranks other than 0 train and return None).

    ``device`` defaults to the CPU for a profile on the bundled data (bit-identical metrics) and
    to the GPU, where there is one, otherwise. ``checkpoints`` maps row names to weight files that
    replace training (``--checkpoints NAME=PATH``); ``recompute`` ignores cached weights and cells."""
    check_options(seed=seed, steps=steps, device=device, micro_batch=micro_batch, workers=workers, tile=tile,
                  noise_seeds=noise_seeds)
    suite, document, suite_path = load_suite_document(suite_name)
    profile_cfg = suite.profile(profile)
    check_suite(suite)
    policy = suite.inference.model_copy(update={k: v for k, v in (
        ("tile", tile), ("overlap", overlap), ("noise_seeds", noise_seeds)) if v is not None})
    try:  # validate the combination of the suite's policy and the options
        policy = InferencePolicy.model_validate(policy.model_dump())
    except ValidationError as exc:
        raise HarnessError(f"inference policy: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    entries = _with_checkpoints(select_methods(suite, method_names, profile), checkpoints or {})
    if not entries:
        raise HarnessError(f"suite '{suite.name}', profile '{profile}': no method rows to run")
    if profile_cfg.requires_checkpoints:
        missing = [e.name for e in entries if not (e.checkpoint or e.outputs)]
        if missing:
            raise HarnessError(f"profile '{profile}' of suite '{suite.name}' evaluates given weights only and trains "
                               f"nothing; give them: --checkpoints {' '.join(f'{n}=FILE' for n in missing)}")
    for entry in entries:
        registry.check_entry(entry)
    _warn_if_shadowing(suite, document, suite_path)  # after validation: a broken copy gets its one error line only
    if device is None:
        device = "cuda" if profile_cfg.data_source != "mini" and torch.cuda.is_available() else "cpu"
    if data_root is not None and profile_cfg.data_source == "mini":
        raise HarnessError(f"--data-root is for a profile on benchmark data; profile '{profile}' uses the bundled "
                           "mini images (did you mean --profile paper?)")
    if not str(results_root).strip():
        raise HarnessError("--results is empty; give the folder for the results (default: ./results)")
    root = pathlib.Path(data_root).expanduser().resolve() if data_root else None
    results_root = pathlib.Path(results_root)

    check_results_root(results_root)  # a bad results folder is found before any compute
    if results_root.joinpath(DB_FILE).is_file():
        ResultsDB(results_root).close()  # ... and a damaged database too
    rank, world = distributed_context()
    timings = Timings()
    t0 = time.perf_counter()
    need_training = any(not (e.outputs or e.checkpoint) for e in entries)
    prepared = prepare_data(suite, profile, root, seed, need_training=need_training)
    test_sets = prepared.test_sets
    timings.data = time.perf_counter() - t0
    with ResultsDB(results_root) as db, _deterministic():
        train_cfg = profile_cfg.train
        n_steps = steps if steps is not None else provider.steps_for(train_cfg, prepared.sampler)
        data_doc = {"protocol": suite.data.model_dump(), **prepared.provenance,
                    "columns": {ts.column_id: {"dataset": ts.dataset_id, "n_images": len(ts), **ts.notes}
                                for ts in test_sets}}
        inputs = {"code": code_fingerprint(), "versions": versions(), "data": data_doc}
        ctx = provider.RowContext(suite, profile, prepared.sampler, train_cfg, n_steps, seed, db, inputs,
                                  device=device, checkpoint_every=checkpoint_every, micro_batch=micro_batch,
                                  workers=workers, recompute=recompute, progress=progress and rank == 0,
                                  log=log if rank == 0 else (lambda *a: None), policy=policy)
        if rank != 0:
            provider.follow(entries, ctx)
            return None
        sha = suite_sha256(document)
        run_id = new_run_id(sha)
        run_provenance = provenance()
        db.start_run(run_id, suite.name, sha, profile, seed, run_provenance, data_doc)
        eval_log = EvalLog()
        rows: dict[str, dict[str, list[dict]]] = {}
        summaries: list[dict] = []
        try:
            for entry in entries:
                rows[entry.name], summary = _run_method(entry, ctx, test_sets, run_id, timings, eval_log)
                summaries.append(summary)
        except BaseException as exc:  # interrupted or failed: finished cells stay stored for the rerun
            db.end_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
            raise
        timings.train, timings.eval, timings.metrics = ctx.train_seconds, eval_log.model_s, eval_log.metrics_s

        cells, averages = aggregate(suite, entries, rows)
        results = RunResults(
            run_id=run_id, suite=suite.name, suite_sha256=sha, suite_file=str(suite_path.resolve()),
            suite_document=document, title=f"{suite.source}: {suite.title}", source=suite.source,
            caption=suite.caption, profile=profile, profile_label=prepared.label,
            comparable_with_paper=profile_cfg.comparable_with_paper, seed=seed, metrics=list(suite.metrics),
            show_params=suite.show_params, layout=suite.layout, columns=suite.columns,
            train={**train_cfg.model_dump(), "steps_run": n_steps,
                   **({"micro_batch_override": micro_batch} if micro_batch else {})},
            inference={"policy": policy.model_dump(), "description": policy.describe(), "device": device,
                       "fallbacks": list(eval_log.events)},
            data=data_doc, methods=[_method_doc(s) for s in summaries], cells=cells,
            averages=averages, notes=list(eval_log.events), provenance=run_provenance,
            per_image=_image_scores(suite, test_sets, entries, rows),
        )
        t_render = time.perf_counter()
        from reports.formats import render
        from reports.tables import run_tables

        tables = run_tables(results)  # the paper's printed rows stand beside the reproduced ones
        latex, html, text = (render(fmt, tables) for fmt in ("latex", "html", "text"))
        timings.render = time.perf_counter() - t_render
        results.timings = timings.as_dict()

        writer = RunWriter(results_root, suite.name, profile, run_id)
        with writer:
            writer.write_text("results.json", dumps(results))
            import pandas as pd

            writer.write_csv("per_image.csv", pd.DataFrame(results.per_image_records()))
            writer.write_text("table.tex", latex)
            writer.write_text("table.html", html)
            writer.write_text("table.txt", text)
        db.end_run(run_id, "complete", results.timings)
    return RunOutcome(writer.final, results, text, timings)


def print_breakdown(outcome: RunOutcome, total_s: float, stream=sys.stdout) -> None:
    t = outcome.timings
    print(
        f"time: total {total_s:.1f}s = data {t.data:.1f}s + train {t.train:.1f}s + "
        f"eval {t.eval + t.metrics:.1f}s (model {t.eval:.1f}s, metrics {t.metrics:.1f}s) + render {t.render:.2f}s",
        file=stream,
    )
