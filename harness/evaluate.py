"""Evaluation: restored images and their per-image metrics for one (method, column).

- **Streaming.** Images are loaded (read, cropped, degraded) one batch at a time; a batch holds
  images of one size up to ``pixel_budget`` pixels, so peak memory follows the largest batch,
  not the size of the test set.
- **Inference policy** (``harness.suite.InferencePolicy``, recorded with every number): whole
  images (the official test scripts' default) or overlapping tiles (:func:`tiled_forward`).
- **Out of GPU memory**: the batch is halved, then the image is tiled (512, 256, 128 px);
  every such step is recorded (``EvalLog.events``: results.json and the table footnotes).
- **Stochastic models** (``model.stochastic``, MoCE-IR's noisy router): one image per forward,
  torch's global RNG seeded from (dataset, image id, run seed, noise seed k) before each, for
  k in 0..K-1, so a number depends neither on file order nor on batch composition.
- **Contract checks**: an output of another shape, or a NaN/Inf in it, stops the row with a
  message naming the method, the column and the image; nothing of it is stored.
"""
from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from harness.data import Pair, TestItem, TestSet
from harness.data.degradations import seed_for
from harness.data.images import IMAGE_SUFFIXES, read_rgb
from harness.errors import HarnessError, NonFiniteError
from harness.metrics import score
from harness.suite import InferencePolicy
from harness.train import to_tensor

FALLBACK_TILES = (512, 256, 128)  # tile sizes tried, in order, when a whole image does not fit
FALLBACK_OVERLAP = 32


@dataclass
class EvalLog:
    """Where the time went and what evaluation had to do differently than asked."""

    model_s: float = 0.0
    metrics_s: float = 0.0
    events: list[str] = field(default_factory=list)


def batches(items: list[TestItem], pixel_budget: int) -> Iterator[list[TestItem]]:
    """Items grouped by size (in order of first appearance), each group cut into batches of at
    most ``pixel_budget`` pixels (at least one image)."""
    groups: dict[tuple[int, int], list[TestItem]] = {}
    for item in items:
        groups.setdefault(tuple(item.shape), []).append(item)
    for (h, w), group in groups.items():
        per_batch = max(1, pixel_budget // max(1, h * w))
        for start in range(0, len(group), per_batch):
            yield group[start:start + per_batch]


def _positions(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def tiled_forward(model: torch.nn.Module, x: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """The model on overlapping ``tile``×``tile`` crops of ``x``, stitched back.

    Each tile gives up a band of ``overlap // 2`` pixels on every side that lies inside the
    image (where it saw the least context); the kept regions cover the image and are averaged
    where they still overlap. A model whose receptive field reaches at most ``overlap // 2``
    pixels therefore gives exactly its whole-image output; a global one (MDTA, AdaIR's FFT mask,
    DACode's codebook attention) does not. (Restormer's demo averages whole tiles instead.)
    """
    n, c, h, w = x.shape
    if h <= tile and w <= tile:
        return model(x)
    margin = overlap // 2
    out = None
    weight = torch.zeros(1, 1, h, w, dtype=torch.float32, device=x.device)
    for top in _positions(h, tile, overlap):
        for left in _positions(w, tile, overlap):
            th, tw = min(tile, h), min(tile, w)
            y = model(x[..., top:top + th, left:left + tw])
            if out is None:
                out = torch.zeros(n, y.shape[1], h, w, dtype=y.dtype, device=x.device)
            # keep the tile's interior: drop `margin` on sides that are not image borders
            t0 = margin if top > 0 else 0
            l0 = margin if left > 0 else 0
            t1 = th - (margin if top + th < h else 0)
            l1 = tw - (margin if left + tw < w else 0)
            out[..., top + t0:top + t1, left + l0:left + l1] += y[..., t0:t1, l0:l1]
            weight[..., top + t0:top + t1, left + l0:left + l1] += 1
    return out / weight.to(out.dtype)


def _forward(model: torch.nn.Module, x: torch.Tensor, tile: int | None, overlap: int) -> torch.Tensor:
    with torch.no_grad():
        y = model(x) if tile is None else tiled_forward(model, x, tile, overlap)
    return y


def _oom_errors() -> tuple[type[BaseException], ...]:
    return (torch.OutOfMemoryError,) if hasattr(torch, "OutOfMemoryError") else (torch.cuda.OutOfMemoryError,)


def restore(model: torch.nn.Module, degraded: torch.Tensor, policy: InferencePolicy, log: EvalLog,
            where: str) -> torch.Tensor:
    """Restore one batch under the policy; on out-of-memory, smaller batches, then tiles (recorded)."""
    try:
        return _forward(model, degraded, policy.tile, policy.overlap)
    except _oom_errors():
        _free(degraded.device)
    n = degraded.shape[0]
    if n > 1:
        half = (n + 1) // 2
        log.events.append(f"{where}: out of GPU memory at batch {n}; retried as batches of {half}")
        return torch.cat([restore(model, part, policy, log, where) for part in degraded.split(half)])
    for tile in FALLBACK_TILES:
        if policy.tile is not None and tile >= policy.tile:
            continue
        if tile >= max(degraded.shape[-2:]):
            continue
        try:
            y = _forward(model, degraded, tile, FALLBACK_OVERLAP)
            log.events.append(f"{where}: out of GPU memory on the whole image; restored in {tile}px tiles "
                              f"(overlap {FALLBACK_OVERLAP}px) instead")
            return y
        except _oom_errors():
            _free(degraded.device)
    raise HarnessError(f"{where}: out of GPU memory even in {FALLBACK_TILES[-1]}px tiles; use a larger GPU "
                       "or --device cpu")


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _check_output(method: str, column: str, items: list[TestItem], x: torch.Tensor, y) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise HarnessError(f"method '{method}' returned {type(y).__name__}, not a tensor, for input "
                           f"{'×'.join(map(str, x.shape))}")
    if tuple(y.shape) != tuple(x.shape):
        raise HarnessError(f"method '{method}' returned {'×'.join(map(str, y.shape))} for input "
                           f"{'×'.join(map(str, x.shape))} (column '{column}'); a method must return N×3×H×W "
                           "of its input's size")
    finite = torch.isfinite(y).flatten(1).all(dim=1)
    if not bool(finite.all()):
        bad = items[int((~finite).nonzero()[0])].image_id
        raise NonFiniteError(f"method '{method}' restored column '{column}', image '{bad}' with NaN or Inf values; "
                             "nothing of this row was stored")
    return y.float().clamp(0.0, 1.0)


def _score_rows(restored, clean, items, metrics, log: EvalLog, noise_seed=None) -> list[dict]:
    t0 = time.perf_counter()
    values = {name: score(name, restored, clean) for name in metrics}
    log.metrics_s += time.perf_counter() - t0
    rows = []
    for i, item in enumerate(items):
        row = {"image_id": item.image_id, **{k: float(v[i]) for k, v in values.items()}}
        if noise_seed is not None:
            row["noise_seed"] = noise_seed
        rows.append(row)
    return rows


def evaluate(model: torch.nn.Module, test_set: TestSet, metrics: tuple[str, ...], policy: InferencePolicy, *,
             method: str, seed: int = 0, log: EvalLog | None = None) -> list[dict]:
    """Per-image metrics of one column: ``[{"image_id", <metric>: value, ...}]`` (plus
    ``noise_seed`` for stochastic models, K rows per image). Metrics run on the model's device."""
    log = log if log is not None else EvalLog()
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    stochastic = bool(getattr(model, "stochastic", False))
    budget = 1 if stochastic else policy.pixel_budget  # one image per forward: its noise is its own
    where = f"method '{method}', column '{test_set.column_id}'"
    rows: list[dict] = []
    for items in batches(test_set.items, budget):
        pairs: list[Pair] = [item.load() for item in items]
        degraded = to_tensor(np.stack([p.degraded for p in pairs])).to(device)
        clean = to_tensor(np.stack([p.clean for p in pairs])).to(device)
        for k in range(policy.noise_seeds if stochastic else 1):
            if stochastic:
                torch.manual_seed(seed_for("router-noise", test_set.dataset_id, items[0].image_id, seed, k))
            t0 = time.perf_counter()
            restored = restore(model, degraded, policy, log, where)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            log.model_s += time.perf_counter() - t0
            restored = _check_output(method, test_set.column_id, items, degraded, restored)
            rows += _score_rows(restored, clean, items, metrics, log, noise_seed=k if stochastic else None)
    return rows


def evaluate_outputs(folder: pathlib.Path, test_set: TestSet, metrics: tuple[str, ...], *, method: str,
                     log: EvalLog | None = None) -> list[dict]:
    """Score already restored images ``<folder>/<column id>/<image id>.<ext>`` without a model."""
    log = log if log is not None else EvalLog()
    column_dir = folder / test_set.column_id
    files = sorted(p for p in column_dir.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if column_dir.is_dir() else []
    found: dict[str, pathlib.Path] = {}
    for p in files:
        if p.stem in found:
            raise HarnessError(f"method '{method}': outputs folder '{column_dir}' holds two images for '{p.stem}' "
                               f"({found[p.stem].name}, {p.name}); keep one")
        found[p.stem] = p
    missing = [i for i in test_set.image_ids if i not in found]
    if missing:
        raise HarnessError(
            f"method '{method}': outputs folder '{column_dir}' lacks {len(missing)} of {len(test_set)} restored "
            f"images (e.g. {', '.join(missing[:3])}); expected <image id>.png per test image"
        )
    rows: list[dict] = []
    for items in batches(test_set.items, 8 * 256 * 256):
        pairs = [item.load() for item in items]
        restored_imgs = []
        for item, pair in zip(items, pairs):
            img = read_rgb(found[item.image_id])
            if img.shape != pair.clean.shape:
                raise HarnessError(
                    f"{found[item.image_id]}: size {img.shape[1]}×{img.shape[0]} differs from the target's "
                    f"{pair.clean.shape[1]}×{pair.clean.shape[0]} (the protocol's crop: {test_set.notes.get('crop', 'none')})"
                )
            restored_imgs.append(img)
        rows += _score_rows(to_tensor(np.stack(restored_imgs)), to_tensor(np.stack([p.clean for p in pairs])),
                            items, metrics, log)
    return rows
