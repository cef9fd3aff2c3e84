"""The trainer, faithful to DACode §4.2: AdamW, L1 loss, cosine learning-rate decay to zero.

- Schedules: ``cosine`` (optional linear warm-up in steps, then cosine to exactly zero) and
  ``promptir_warmup`` (PromptIR's LinearWarmupCosineAnnealingLR stepped once per epoch:
  lr(e) = base·e/(W−1) for e < W, then base/2·(1 + cos(π(e−W)/(E−W))); W = 15, E = 150;
  docs/protocols.md#promptirs-warm-up-cosine).
- Patches: each step draws one seed per sample of the *global* batch from the run's seed,
  and every sample is generated from its own seed. A process only generates its slice, so
  training on 1 process or on N (``torchrun``, DistributedDataParallel) sees the same patches
  and the same averaged gradient, and the batches do not depend on the number of DataLoader
  workers that generate them.
- Data: a ``DataLoader`` over the per-sample seeds (``workers`` processes decode and degrade
  ahead of the model; pinned memory and non-blocking copies on a GPU).
- Micro-batches: ``micro_batch`` splits each global batch, accumulating the gradients; the
  update equals one large batch's except where a model has BatchNorm (statistics per micro-batch).
- The loss is read back from the device every ``log_every`` steps only; a NaN/Inf loss stops
  training with the step it first appeared at and the last finite loss (nothing is saved).
- Checkpoints hold model, optimiser, step and RNG state; resuming continues identically.
- On a GPU: bf16 autocast and channels_last (both switchable); optional ``torch.compile``.
- Deterministic on the CPU: the same seed gives bit-identical weights.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import pathlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from harness.data import PatchSampler
from harness.errors import NonFiniteError


@dataclass
class TrainResult:
    steps: int
    final_loss: float | None
    seconds: float
    images_per_second: float
    resumed_from: int | None = None
    data_wait_s: float = 0.0  # time the loop waited for the next batch
    losses: list[float] = field(default_factory=list)  # every step's loss, read back every log_every steps


def to_tensor(batch) -> torch.Tensor:
    """B×H×W×3 uint8 (numpy or tensor) → B×3×H×W float32 in [0, 1]."""
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(np.ascontiguousarray(batch))
    return batch.permute(0, 3, 1, 2).float().div_(255.0)


def cosine_lr(step: int, total: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine annealing to exactly zero at ``total``."""
    if warmup and step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def promptir_lr(epoch: int, base_lr: float, warmup_epochs: int = 15, max_epochs: int = 150) -> float:
    """PromptIR's per-epoch schedule (lr(0) = 0, peak at epoch W−1... W, zero at max_epochs)."""
    if epoch < warmup_epochs:
        return base_lr * epoch / max(1, warmup_epochs - 1)
    progress = (epoch - warmup_epochs) / max(1, max_epochs - warmup_epochs)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclass(frozen=True)
class Schedule:
    kind: str = "cosine"  # cosine | promptir_warmup
    warmup_steps: int = 0
    steps_per_epoch: int = 1
    warmup_epochs: int = 15
    max_epochs: int = 150

    def lr(self, step: int, total: int, base_lr: float) -> float:
        if self.kind == "promptir_warmup":
            return promptir_lr(step // self.steps_per_epoch, base_lr, self.warmup_epochs, self.max_epochs)
        return cosine_lr(step, total, base_lr, self.warmup_steps)


class _LossModule(torch.nn.Module):
    """Wraps the model so DistributedDataParallel sees the whole training objective."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, degraded: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        return training_loss(self.model, degraded, clean)


def training_loss(model: torch.nn.Module, degraded: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    custom = getattr(model, "training_loss", None)
    if callable(custom):
        return custom(degraded, clean)
    return F.l1_loss(model(degraded), clean)


def distributed_context() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when not distributed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def to_channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """channels_last for every 4-D parameter and buffer. ``model.to(memory_format=...)`` refuses a
    model holding any tensor of another rank (PromptIR's 5-D prompt components)."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return model


def default_workers(device: torch.device) -> int:
    """DataLoader workers when not given: on a GPU, half the cores (at most 8) decode ahead;
    on a small CPU-only machine none, since the cores are busy with the model itself."""
    cores = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cores // 2))
    return 0 if cores <= 4 else min(4, cores // 4)


class _SeededSamples(torch.utils.data.Dataset):
    """Sample ``seed`` of the mixture: a patch pair that depends on the seed alone."""

    def __init__(self, sampler: PatchSampler, patch_size: int):
        self.sampler = sampler
        self.patch_size = patch_size

    def __len__(self) -> int:  # seeds are not indices; the batch sampler hands them out
        return 2**62

    def __getitem__(self, seed: int):
        d, c = self.sampler.sample(np.random.default_rng(int(seed)), 1, self.patch_size)
        return d[0], c[0]


class _StepSeeds(torch.utils.data.Sampler):
    """The seeds of each step's micro-batches, for this rank: one list per micro-batch.

    Step s's global seeds are the s-th draw of ``batch_size`` integers from the run's generator,
    as they always were; resuming at step s fast-forwards the generator by s draws.
    """

    def __init__(self, seed: int, first_step: int, steps: int, batch_size: int, rank: int, world: int, micro: int):
        self.seed, self.first_step, self.steps = seed, first_step, steps
        self.batch_size, self.rank, self.world, self.micro = batch_size, rank, world, micro

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        per_rank = self.batch_size // self.world
        for step in range(self.steps):
            seeds = rng.integers(0, 2**63 - 1, size=self.batch_size)
            if step < self.first_step:
                continue
            mine = seeds[self.rank * per_rank:(self.rank + 1) * per_rank]
            for start in range(0, per_rank, self.micro):
                yield [int(s) for s in mine[start:start + self.micro]]

    def __len__(self) -> int:
        per_rank = self.batch_size // self.world
        return (self.steps - self.first_step) * math.ceil(per_rank / self.micro)


def sample_global_batch(sampler: PatchSampler, rng: np.random.Generator, batch_size: int, patch_size: int,
                        rank: int = 0, world: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """This process's slice of a global batch whose samples are each drawn from their own seed
    (the same patches the trainer's DataLoader yields for that step)."""
    seeds = rng.integers(0, 2**63 - 1, size=batch_size)
    per_rank = batch_size // world
    samples = _SeededSamples(sampler, patch_size)
    pairs = [samples[int(s)] for s in seeds[rank * per_rank:(rank + 1) * per_rank]]
    return np.stack([d for d, _ in pairs]), np.stack([c for _, c in pairs])


def save_training_state(path: pathlib.Path, model, optimiser, step: int, loss: float | None) -> None:
    """Everything needed to continue exactly where training stopped, written atomically."""
    from harness import atomic

    state = {
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "step": step,
        "torch_rng": torch.get_rng_state(),
        "loss": loss,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def load_training_state(path: pathlib.Path, model, optimiser) -> tuple[int, float | None]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), state.get("loss")


def require_grad(loss: torch.Tensor, label: str) -> None:
    """A loss that no trainable parameter feeds cannot train anything: say so, not autograd."""
    if not loss.requires_grad:
        from harness.errors import HarnessError

        raise HarnessError(f"training {label or 'the model'}: its loss does not depend on any trainable parameter "
                           "(does the forward use the model's parameters?); nothing was trained")


def _raise_non_finite(label: str, step: int, losses: list[float]) -> None:
    finite = [v for v in losses if math.isfinite(v)]
    last = f"{finite[-1]:.6g}" if finite else "none (the first loss was already non-finite)"
    raise NonFiniteError(
        f"training {label or 'the model'} stopped: the loss became non-finite at step {step + 1} "
        f"(last finite loss {last}); nothing was saved. Lower the learning rate or check the model"
    )


def train(
    model: torch.nn.Module,
    sampler: PatchSampler,
    *,
    steps: int,
    batch_size: int,
    patch_size: int,
    lr: float,
    weight_decay: float = 0.01,
    schedule: Schedule | None = None,
    seed: int = 0,
    progress: bool = False,
    label: str = "",
    checkpoint_path: pathlib.Path | None = None,
    checkpoint_every: int = 50,
    device: str | torch.device = "cpu",
    bf16: bool = True,
    channels_last: bool = True,
    compile_model: bool = False,
    micro_batch: int | None = None,
    workers: int | None = None,
    log_every: int = 25,
    log=None,
) -> TrainResult:
    """Train for ``steps`` optimiser steps of a global batch of ``batch_size`` patches.

    With ``checkpoint_path``, the full training state is saved every ``checkpoint_every``
    steps (by rank 0) and training resumes from it, so an interrupted run continues exactly.
    Under ``torchrun`` each process trains on its slice of the batch (DistributedDataParallel).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    rank, world = distributed_context()
    if batch_size % world:
        raise ValueError(f"global batch {batch_size} is not divisible by the {world} processes")
    per_rank = batch_size // world
    micro = min(micro_batch or per_rank, per_rank)
    schedule = schedule or Schedule()
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    model.to(device)
    if on_gpu and channels_last:
        to_channels_last(model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    first_step, loss_value = 0, None
    if checkpoint_path is not None and pathlib.Path(checkpoint_path).is_file():
        first_step, loss_value = load_training_state(pathlib.Path(checkpoint_path), model, optimiser)
        if log is not None and rank == 0:
            log(f"resuming {label or 'training'} from step {first_step} of {steps} ({checkpoint_path})")
    objective: torch.nn.Module = _LossModule(model)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        objective = DistributedDataParallel(objective, device_ids=[device.index] if on_gpu else None)
    if compile_model:
        objective = torch.compile(objective)
    n_workers = default_workers(device) if workers is None else workers
    loader = torch.utils.data.DataLoader(
        _SeededSamples(sampler, patch_size),
        batch_sampler=_StepSeeds(seed, first_step, steps, batch_size, rank, world, micro),
        num_workers=n_workers, pin_memory=on_gpu, prefetch_factor=4 if n_workers else None,
        persistent_workers=False,
        # its own generator: the loader's base seed must not consume torch's global RNG, which
        # models draw from in their training loss (AirNet's key crops)
        generator=torch.Generator().manual_seed(seed),
    )
    micro_per_step = math.ceil(per_rank / micro)
    model.train()
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (CI logs stay readable)
        bar = tqdm(total=steps, initial=first_step, desc=f"train {label}".strip(), leave=False,
                   dynamic_ncols=True, disable=None)
    pending: list[torch.Tensor] = []  # this window's losses, still on the device
    losses: list[float] = []
    window_start = first_step

    def flush(upto: int) -> None:
        """Read the window's losses back (one sync); stop at the first non-finite one."""
        nonlocal pending, window_start, loss_value
        if not pending:
            return
        values = torch.stack(pending).float().cpu().tolist()
        for offset, v in enumerate(values):
            if not math.isfinite(v):
                _raise_non_finite(label, window_start + offset, losses)
            losses.append(v)
        loss_value = losses[-1]
        pending, window_start = [], upto

    start = time.perf_counter()
    wait = 0.0
    batches = iter(loader)
    for step in range(first_step, steps):
        for group in optimiser.param_groups:
            group["lr"] = schedule.lr(step, steps, lr)
        optimiser.zero_grad(set_to_none=True)
        step_loss = None
        for m in range(micro_per_step):
            t_wait = time.perf_counter()
            degraded, clean = next(batches)
            wait += time.perf_counter() - t_wait
            x = to_tensor(degraded.to(device, non_blocking=True))
            y = to_tensor(clean.to(device, non_blocking=True))
            if on_gpu and channels_last:
                x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
            # only the last micro-batch of a step all-reduces the accumulated gradients
            sync = contextlib.nullcontext() if world == 1 or m == micro_per_step - 1 else objective.no_sync()
            with sync, torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=on_gpu and bf16):
                loss = objective(x, y)
                if micro_per_step > 1:  # the mean over the rank's samples, as one batch would give
                    loss = loss * (x.shape[0] / per_rank)
            require_grad(loss, label)
            loss.backward()
            part = loss.detach()
            step_loss = part if step_loss is None else step_loss + part
        optimiser.step()
        pending.append(step_loss)
        done = step + 1
        at_checkpoint = checkpoint_path is not None and rank == 0 and done % checkpoint_every == 0 and done < steps
        if done % log_every == 0 or at_checkpoint or done == steps:
            flush(done)  # a checkpoint is written only after its losses proved finite
        if at_checkpoint:
            save_training_state(pathlib.Path(checkpoint_path), model, optimiser, done, loss_value)
        if bar is not None:
            bar.update(1)
            if loss_value is not None and not pending:
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{optimiser.param_groups[0]['lr']:.2e}",
                                img_s=f"{(done - first_step) * batch_size / max(elapsed, 1e-9):.1f}")
    flush(steps)
    if bar is not None:
        bar.close()
    _check_weights(model, label)
    model.eval()
    seconds = time.perf_counter() - start
    done = steps - first_step
    return TrainResult(steps, loss_value, seconds, done * batch_size / max(seconds, 1e-9),
                       first_step or None, wait, losses)


def _check_weights(model: torch.nn.Module, label: str) -> None:
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise NonFiniteError(f"training {label or 'the model'} left non-finite values in '{name}'; "
                                 "nothing was saved. Lower the learning rate or check the model")
