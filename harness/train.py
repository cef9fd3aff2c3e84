"""The trainer, faithful to DACode §4.2: AdamW, L1 loss, cosine learning-rate decay to zero.

- Schedules: ``cosine`` (optional linear warm-up in steps, then cosine to exactly zero) and
  ``promptir_warmup`` (PromptIR's LinearWarmupCosineAnnealingLR stepped once per epoch:
  lr(e) = base·e/(W−1) for e < W, then base/2·(1 + cos(π(e−W)/(E−W))); W = 15, E = 150;
  ../shared/research/baselines.md §4).
- Patches: each step draws one seed per sample of the *global* batch from the run's seed,
  and every sample is generated from its own seed. A process only generates its slice, so
  training on 1 process or on N (``torchrun``, DistributedDataParallel) sees the same patches
  and the same averaged gradient.
- Checkpoints hold model, optimiser, step and RNG state; resuming continues identically.
- On a GPU: bf16 autocast and channels_last (both switchable); optional ``torch.compile``.
- Deterministic on the CPU: the same seed gives bit-identical weights.
"""
from __future__ import annotations

import io
import math
import os
import pathlib
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from harness.data import PatchSampler


@dataclass
class TrainResult:
    steps: int
    final_loss: float
    seconds: float
    images_per_second: float


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """B×H×W×3 uint8 → B×3×H×W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div_(255.0)


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


def sample_global_batch(sampler: PatchSampler, rng: np.random.Generator, batch_size: int, patch_size: int,
                        rank: int = 0, world: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """This process's slice of a global batch whose samples are each drawn from their own seed."""
    seeds = rng.integers(0, 2**63 - 1, size=batch_size)
    per_rank = batch_size // world
    degraded, clean = [], []
    for seed in seeds[rank * per_rank : (rank + 1) * per_rank]:
        d, c = sampler.sample(np.random.default_rng(int(seed)), 1, patch_size)
        degraded.append(d[0])
        clean.append(c[0])
    return np.stack(degraded), np.stack(clean)


def save_training_state(path: pathlib.Path, model, optimiser, step: int, rng: np.random.Generator, loss: float) -> None:
    """Everything needed to continue exactly where training stopped, written atomically."""
    from harness import atomic

    state = {
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "step": step,
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "loss": loss,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def load_training_state(path: pathlib.Path, model, optimiser, rng: np.random.Generator) -> tuple[int, float]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), float(state["loss"])


def train(
    model: torch.nn.Module,
    sampler: PatchSampler,
    *,
    steps: int,
    batch_size: int,
    patch_size: int,
    lr: float,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
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
) -> TrainResult:
    """Train for ``steps`` optimiser steps of a global batch of ``batch_size`` patches.

    With ``checkpoint_path``, the full training state is saved every ``checkpoint_every``
    steps (by rank 0) and training resumes from it, so an interrupted run continues exactly.
    Under ``torchrun`` each process trains on its slice of the batch (DistributedDataParallel).
    """
    rank, world = distributed_context()
    if batch_size % world:
        raise ValueError(f"global batch {batch_size} is not divisible by the {world} processes")
    schedule = schedule or Schedule(warmup_steps=warmup_steps)
    device = torch.device(device)
    on_gpu = device.type == "cuda"
    model.to(device)
    if on_gpu and channels_last:
        model.to(memory_format=torch.channels_last)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    first_step, loss_value = 0, float("nan")
    if checkpoint_path is not None and pathlib.Path(checkpoint_path).is_file():
        first_step, loss_value = load_training_state(pathlib.Path(checkpoint_path), model, optimiser, rng)
    objective: torch.nn.Module = _LossModule(model)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        objective = DistributedDataParallel(objective, device_ids=[device.index] if on_gpu else None)
    if compile_model:
        objective = torch.compile(objective)
    model.train()
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (CI logs stay readable)
        bar = tqdm(total=steps, initial=first_step, desc=f"train {label}".strip(), leave=False,
                   dynamic_ncols=True, disable=None)
    start = time.perf_counter()
    for step in range(first_step, steps):
        for group in optimiser.param_groups:
            group["lr"] = schedule.lr(step, steps, lr)
        degraded, clean = sample_global_batch(sampler, rng, batch_size, patch_size, rank, world)
        x, y = to_tensor(degraded).to(device), to_tensor(clean).to(device)
        if on_gpu and channels_last:
            x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=on_gpu and bf16):
            loss = objective(x, y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        loss_value = float(loss.detach())
        if checkpoint_path is not None and rank == 0 and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            save_training_state(pathlib.Path(checkpoint_path), model, optimiser, step + 1, rng, loss_value)
        if bar is not None:
            bar.update(1)
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{optimiser.param_groups[0]['lr']:.2e}",
                            img_s=f"{(step + 1 - first_step) * batch_size / max(elapsed, 1e-9):.1f}")
    if bar is not None:
        bar.close()
    model.eval()
    seconds = time.perf_counter() - start
    done = steps - first_step
    return TrainResult(steps, loss_value, seconds, done * batch_size / max(seconds, 1e-9))
