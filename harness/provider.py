"""The model provider: how a row gets its model — a checkpoint, weights trained earlier from the
same inputs, or training now. Rank 0, the torchrun followers and the report figures all ask it.

A row's **method key** is the hash of everything that decides its trained model: the suite
entry and its constructor keywords, the training settings and step budget, the seed, the
checkpoint's sha256, the code behind the row (``harness.methods.code_identity``: the harness's
code fingerprint for built-ins, the builder's package files for ``build:`` rows, distribution
name, version and files for entry points), the data provenance, the torch/numpy/pyiqa versions
and the device. A **cell key** adds the column, the metric protocols, the data protocol and the
inference policy. Cached weights and cells are reused only under an identical key; ``--recompute``
ignores them and writes the new ones in their place.
"""
from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass, field

import torch

from harness import methods as registry
from harness.errors import HarnessError
from harness.memory import check_training_memory
from harness.profile import count_parameters, format_params
from harness.results import TrainSummary
from harness.store import ResultsDB, file_sha256, stable_hash
from harness.suite import InferencePolicy, MethodEntry, Suite, TrainConfig
from harness.train import Schedule, train


@dataclass
class RowContext:
    """What every row of one run shares (the provider's view of a run)."""

    suite: Suite
    profile: str
    sampler: object
    train_cfg: TrainConfig
    n_steps: int
    seed: int
    db: ResultsDB
    inputs: dict  # code fingerprint, library versions, data provenance: part of every key
    device: str = "cpu"
    checkpoint_every: int = 50
    micro_batch: int | None = None  # --micro-batch, over the suite's
    workers: int | None = None
    recompute: bool = False
    progress: bool = False
    log: object = print
    train_seconds: float = 0.0
    memory: dict = field(default_factory=dict)  # row → the training memory estimate
    policy: InferencePolicy | None = None  # the run's inference policy: the suite's with --tile/--noise-seeds over it

    @property
    def profile_cfg(self):
        return self.suite.profiles[self.profile]

    @property
    def inference(self) -> InferencePolicy:
        return self.policy if self.policy is not None else self.suite.inference


def kwargs_of(entry: MethodEntry, ctx: RowContext) -> dict:
    return registry.row_kwargs(entry, ctx.profile, ctx.profile_cfg)


def row_training(entry: MethodEntry, ctx: RowContext) -> tuple[TrainConfig, int]:
    """(training config, optimiser steps) of a row: the profile's, with the row's overrides."""
    cfg = entry.train_config(ctx.profile, ctx.train_cfg)
    if ctx.micro_batch is not None:
        cfg = cfg.model_copy(update={"micro_batch": ctx.micro_batch})
    return cfg, ctx.n_steps if entry.train.get(ctx.profile) is None else steps_for(cfg, ctx.sampler)


def steps_per_epoch(train_cfg: TrainConfig, sampler) -> int:
    """Optimiser steps in one pass over the training mixture (with its repetition factors)."""
    try:
        samples = len(sampler)
    except TypeError:
        samples = sum(len(v) for v in getattr(sampler, "pairs", {}).values())
    return max(1, samples // train_cfg.batch_size)


def steps_for(train_cfg: TrainConfig, sampler) -> int:
    if train_cfg.steps is not None:
        return train_cfg.steps
    return train_cfg.epochs * steps_per_epoch(train_cfg, sampler)


def method_key(entry: MethodEntry, ctx: RowContext) -> str:
    checkpoint = entry.checkpoint and file_sha256(pathlib.Path(entry.checkpoint).expanduser())
    cfg, steps = row_training(entry, ctx)
    return stable_hash({
        "entry": entry.model_dump(exclude={"name", "citation", "official_metrics"}), "kwargs": kwargs_of(entry, ctx),
        "checkpoint_sha256": checkpoint, "profile": ctx.profile, "seed": ctx.seed, "steps": steps,
        # micro-batching changes BatchNorm statistics only; it is recorded, and part of the key
        "train": cfg.model_dump(), "inputs": ctx.inputs, "code": registry.code_identity(entry),
        "device": ctx.device,
    })


def cell_key(method_key_: str, column, ctx: RowContext) -> str:
    return stable_hash({"method": method_key_, "column": column.model_dump(), "metrics": list(ctx.suite.metrics),
                        "data": ctx.suite.data.model_dump(), "inference": ctx.inference.model_dump()})


@dataclass
class RowPlan:
    """What the provider will do for a row, decided in one place."""

    entry: MethodEntry
    key: str | None  # None for outputs folders
    cell_keys: dict[str, str]
    cached_cells: dict[str, list[dict]]
    cached_doc: dict | None

    @property
    def all_cached(self) -> bool:
        return self.key is not None and len(self.cached_cells) == len(self.cell_keys) and self.cached_doc is not None


def plan_row(entry: MethodEntry, ctx: RowContext) -> RowPlan:
    if entry.outputs:
        return RowPlan(entry, None, {}, {}, None)
    key = method_key(entry, ctx)
    keys = {c.id: cell_key(key, c, ctx) for c in ctx.suite.columns}
    if ctx.recompute:
        return RowPlan(entry, key, keys, {}, None)
    cached = {cid: rows for cid, k in keys.items() if (rows := ctx.db.cell(k)) is not None}
    return RowPlan(entry, key, keys, cached, ctx.db.method_doc(key))


def needs_training(plan: RowPlan, ctx: RowContext) -> bool:
    """The one place that decides whether a row trains in this run."""
    entry = plan.entry
    if entry.outputs or entry.checkpoint or plan.all_cached:
        return False
    return ctx.recompute or not (ctx.db.weights_path(plan.key).is_file() and plan.cached_doc is not None)


def _save_weights(model: torch.nn.Module, path: pathlib.Path) -> None:
    from safetensors.torch import save

    from harness import atomic

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    atomic.write_bytes(path, save(state))


def _load_cached(model: torch.nn.Module, weights: pathlib.Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as exc:  # a damaged cache file: say which, never guess
        raise HarnessError(f"cached weights '{weights}' cannot be loaded ({str(exc).splitlines()[0][:120]}); "
                           "move the file aside (it is trained again) or use --recompute") from None
    return model.eval()


def build(entry: MethodEntry, ctx: RowContext) -> tuple[torch.nn.Module, bool]:
    torch.manual_seed(ctx.seed)
    return registry.instantiate(entry, kwargs_of(entry, ctx))


def _micro(cfg: TrainConfig, world: int) -> int:
    per_rank = cfg.batch_size // world
    return min(cfg.micro_batch or per_rank, per_rank)


def train_row(model: torch.nn.Module, plan: RowPlan, ctx: RowContext, *, progress: bool, log=None):
    """Train the row's model (resumably) after checking that it fits in memory."""
    from harness.train import distributed_context

    entry = plan.entry
    if not getattr(model, "can_train", True):
        raise HarnessError(f"method '{entry.name}' cannot train (can_train = False); give it a 'checkpoint'")
    cfg, n_steps = row_training(entry, ctx)
    _, world = distributed_context()
    micro = _micro(cfg, world)
    _check_contract(model, entry, cfg.patch_size)
    estimate = check_training_memory(model, label=entry.name, patch_size=cfg.patch_size, micro_batch=micro,
                                     batch_size=cfg.batch_size, device=ctx.device)
    if estimate is not None:
        ctx.memory[entry.name] = estimate.describe()
    per_epoch = steps_per_epoch(cfg, ctx.sampler)
    schedule = Schedule(kind=cfg.schedule, warmup_steps=cfg.warmup_steps, steps_per_epoch=per_epoch,
                        warmup_epochs=cfg.warmup_epochs, max_epochs=cfg.epochs or max(1, n_steps // per_epoch))
    checkpoint = ctx.db.training_checkpoint_path(plan.key)
    if ctx.recompute:
        checkpoint.unlink(missing_ok=True)  # start over: an earlier partial training is not reused either
    return train(
        model, ctx.sampler, steps=n_steps, batch_size=cfg.batch_size, patch_size=cfg.patch_size,
        lr=cfg.lr, weight_decay=cfg.weight_decay, schedule=schedule, seed=ctx.seed,
        progress=progress, label=entry.name, checkpoint_path=checkpoint,
        # the paper profile checkpoints every epoch; the short mini runs every 50 steps
        checkpoint_every=per_epoch if cfg.epochs else ctx.checkpoint_every,
        device=ctx.device, bf16=cfg.bf16, channels_last=cfg.channels_last, compile_model=cfg.compile,
        micro_batch=micro, workers=ctx.workers, log=log,
    ), micro


def _check_contract(model: torch.nn.Module, entry: MethodEntry, patch: int) -> None:
    """One forward before training: a plug-in returning the wrong shape is named here, not deep in L1."""
    x = torch.rand(1, 3, patch, patch, generator=torch.Generator().manual_seed(0))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model.eval()
        try:
            y = model(x.to(device))
        finally:
            model.train(was_training)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape):
        got = "×".join(map(str, y.shape)) if isinstance(y, torch.Tensor) else type(y).__name__
        raise HarnessError(f"method '{entry.name}' returned {got} for input 1×3×{patch}×{patch}; a method must "
                           "return N×3×H×W of its input's size")


def _batchnorm_note(model: torch.nn.Module, micro: int, batch: int) -> list[str]:
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and micro < batch:
        return [f"trained in micro-batches of {micro} (global batch {batch}): its BatchNorm layers saw "
                f"statistics of {micro} samples at a time, not {batch}"]
    return []


def obtain(plan: RowPlan, ctx: RowContext, summary: dict) -> torch.nn.Module:
    """The row's model: its checkpoint, cached trained weights, or trained now (resumably).

    ``summary`` receives what the results record of it (params, checkpoint sha256, training)."""
    entry = plan.entry
    model, loaded = build(entry, ctx)
    n_params, _ = count_parameters(model)
    summary["params"], summary["params_display"] = n_params, format_params(n_params)
    summary["stochastic"] = bool(getattr(model, "stochastic", False))
    summary["records_codebook"] = bool(getattr(model, "records_codebook", False))
    if loaded:
        summary["checkpoint_sha256"] = file_sha256(pathlib.Path(entry.checkpoint).expanduser())
        ctx.log(f"[{entry.name}] {format_params(n_params)} parameters; loaded {entry.checkpoint}")
        return model.to(ctx.device).eval()
    weights = ctx.db.weights_path(plan.key)
    if not needs_training(plan, ctx):
        model = _load_cached(model, weights)
        summary["train"] = (plan.cached_doc or {}).get("train")
        ctx.log(f"[{entry.name}] reusing weights trained earlier from identical inputs ({weights.name})")
        return model.to(ctx.device)
    cfg, n_steps = row_training(entry, ctx)
    ctx.log(f"[{entry.name}] {format_params(n_params)} parameters; training {n_steps} steps on {ctx.device}")
    t0 = time.perf_counter()
    result, micro = train_row(model, plan, ctx, progress=ctx.progress, log=ctx.log)
    seconds = time.perf_counter() - t0
    ctx.train_seconds += seconds
    summary["train"] = TrainSummary(
        steps=result.steps, final_loss=result.final_loss, images_per_second=round(result.images_per_second, 2),
        seconds=round(seconds, 3), resumed_from_step=result.resumed_from,
        micro_batch=micro if micro < cfg.batch_size else None,
        notes=_batchnorm_note(model, micro, cfg.batch_size) + (
            [f"memory check: {ctx.memory[entry.name]}"] if entry.name in ctx.memory else []),
    ).model_dump()
    _save_weights(model, weights)
    ctx.db.training_checkpoint_path(plan.key).unlink(missing_ok=True)
    loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4f}"
    ctx.log(f"[{entry.name}] trained in {seconds:.1f}s (final loss {loss}, {result.images_per_second:.1f} img/s)")
    return model


def follow(entries: list[MethodEntry], ctx: RowContext) -> None:
    """Under torchrun, ranks other than 0 only join the training loops (DistributedDataParallel
    needs every rank there); rank 0 evaluates and stores. Each rank decides from the same files,
    through :func:`needs_training`, exactly as rank 0 does."""
    for entry in entries:
        plan = plan_row(entry, ctx)
        if not needs_training(plan, ctx):
            continue
        model, _ = build(entry, ctx)
        train_row(model, plan, ctx, progress=False)


def load_for_report(entry: MethodEntry, method_key_: str | None, ctx: RowContext) -> torch.nn.Module | None:
    """A stored run's model for figures: its checkpoint or its cached weights; None when neither
    exists (figures never train)."""
    model, loaded = build(entry, ctx)
    if loaded:
        return model.eval()
    if not method_key_:
        return None
    weights = ctx.db.weights_path(method_key_)
    if not weights.is_file():
        return None
    return _load_cached(model, weights)
