"""The trainer: AdamW, L1 loss, cosine learning-rate decay to zero (DACode §4.2).

Deterministic on the CPU: the model is initialised and the patches are drawn from seeds,
so the same suite, seed and inputs give bit-identical weights.
"""
from __future__ import annotations

import math
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
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)


def cosine_lr(step: int, total: int, base_lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine annealing to exactly zero at ``total``."""
    if warmup and step < warmup:
        return base_lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def training_loss(model: torch.nn.Module, degraded: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    custom = getattr(model, "training_loss", None)
    if callable(custom):
        return custom(degraded, clean)
    return F.l1_loss(model(degraded), clean)


def save_training_state(path: pathlib.Path, model, optimiser, step: int, rng: np.random.Generator, loss: float) -> None:
    """Everything needed to continue exactly where training stopped, written atomically."""
    import io

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
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    seed: int = 0,
    progress: bool = False,
    label: str = "",
    checkpoint_path: pathlib.Path | None = None,
    checkpoint_every: int = 50,
) -> TrainResult:
    """Train for ``steps`` optimiser steps; with ``checkpoint_path``, save the full training
    state every ``checkpoint_every`` steps and resume from it, so an interrupted run continues
    exactly (same weights as an uninterrupted one)."""
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    start = time.perf_counter()
    loss_value = float("nan")
    first_step = 0
    if checkpoint_path is not None and pathlib.Path(checkpoint_path).is_file():
        first_step, loss_value = load_training_state(pathlib.Path(checkpoint_path), model, optimiser, rng)
    bar = None
    if progress:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (CI logs stay readable)
        bar = tqdm(total=steps, initial=first_step, desc=f"train {label}".strip(), leave=False,
                   dynamic_ncols=True, disable=None)
    for step in range(first_step, steps):
        for group in optimiser.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup_steps)
        degraded, clean = sampler.sample(rng, batch_size, patch_size)
        loss = training_loss(model, to_tensor(degraded), to_tensor(clean))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        loss_value = float(loss.detach())
        if checkpoint_path is not None and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
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
