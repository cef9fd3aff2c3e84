"""Training data as the paper's mixtures: repetition factors, paired random crops, 7 flips/rotations.

The mixture (docs/protocols.md#training-mixture: PromptIR ``train.py``; AdaIR/MoCE-IR for the 5-task
setting, docs/protocols.md#the-5-task-setting):

- one epoch is the concatenation of every source's list repeated by its factor — denoise
  (BSD400+WED) ×3 *per σ*, Rain100L-train ×120, RESIDE-OTS ×1, GoPro-train ×5, LOL-v1-train
  ×20, each CDD-11 type ×1 (no factor is published for CDD-11) — so the 3-task epoch is
  5,144·3·3 + 200·120 + 72,135 = 142,431 samples (docs/protocols.md#training-mixture);
- a sample is a random ``patch_size`` crop taken at the same place in input and target, then
  one of the 7 non-identity flip/rotate variants (PromptIR ``random_augmentation`` draws
  ``randint(1, 7)``: the identity is never chosen), then — for denoising — Gaussian noise on
  the uint8 patch with the test formula (clip, truncating cast).

``MixtureSampler.sample(rng, batch, patch)`` draws uniformly from the epoch list, so each
source's share equals its share of an epoch (sampling with replacement instead of PromptIR's
shuffled pass; the expected mixture is the same). ``patch_at(index, rng, patch)`` gives
epoch entry ``index``, for the map-style torch dataset in ``harness.data.torch_dataset``.
PromptIR also centre-crops each training image to a multiple of 16 before the random crop;
that only narrows the crop positions by < 16 px and is not reproduced.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from harness.data import dihedral
from harness.data.catalog import ColumnData, get
from harness.data.check import Item
from harness.data.degradations import add_gaussian_noise
from harness.data.errors import DataIntegrityError, HarnessError
from harness.data.images import read_rgb


@dataclass(frozen=True)
class MixturePart:
    """One source of the mixture before its files are known."""

    dataset_id: str
    task: str
    sigma: float | None
    parts: str | None
    repeat: int

    @property
    def key(self) -> str:
        return self.dataset_id + (f"/σ{self.sigma:g}" if self.sigma is not None else "") + (f"/{self.parts}" if self.parts else "")


def mixture_for(columns: list[ColumnData], train_sigmas: tuple[float, ...] | None = None) -> list[MixturePart]:
    """The training mixture of a table: one part per training set (per σ, per CDD-11 type).

    ``train_sigmas``: the noise levels to train on (default: the suite's denoise columns'
    σ). The PromptIR family trains 3-task models on σ 15/25/50; AdaIR's 5-task models too,
    although the 5-task table reports σ 25 only (docs/protocols.md#the-5-task-setting).
    """
    parts: list[MixturePart] = []
    seen: set[str] = set()
    sigmas = tuple(float(s) for s in train_sigmas) if train_sigmas else None
    for column in columns:
        train = get(get(column.dataset_id).train_set)
        if column.task == "denoise":
            levels = sigmas or (column.sigma,)
        else:
            levels = (None,)
        for sigma in levels:
            part = MixturePart(train.id, train.task, sigma, column.parts, train.repeat)
            if part.key not in seen:
                seen.add(part.key)
                parts.append(part)
    return parts


@dataclass
class TrainSource:
    part: MixturePart
    items: list[Item]

    @property
    def samples(self) -> int:
        return len(self.items) * self.part.repeat


class MixtureSampler:
    """Paired training patches from the real training sets, mixed with the paper's factors."""

    def __init__(self, sources: list[TrainSource]):
        sources = [s for s in sources if s.items]
        if not sources:
            raise HarnessError("the training mixture is empty: no training pairs were found")
        self.sources = sources
        self._ends = list(np.cumsum([s.samples for s in sources]))

    def __len__(self) -> int:
        """Samples per epoch (the repeated lists' total)."""
        return int(self._ends[-1])

    @property
    def pairs(self) -> dict[str, list[Item]]:
        """Each source's epoch list (items × repeat): their lengths sum to one epoch."""
        return {s.part.key: s.items * s.part.repeat for s in self.sources}

    def describe(self) -> list[dict]:
        return [{"source": s.part.key, "dataset": s.part.dataset_id, "task": s.part.task, "sigma": s.part.sigma,
                 "parts": s.part.parts, "images": len(s.items), "repeat": s.part.repeat, "samples": s.samples}
                for s in self.sources]

    def entry(self, index: int) -> tuple[TrainSource, Item]:
        index = int(index) % len(self)
        k = bisect.bisect_right(self._ends, index)
        start = self._ends[k - 1] if k else 0
        source = self.sources[k]
        return source, source.items[(index - start) % len(source.items)]

    def patch_at(self, index: int, rng: np.random.Generator, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        source, item = self.entry(index)
        a = read_rgb(item.input, warn=False)
        b = a if item.target is None else read_rgb(item.target, warn=False)
        if a.shape != b.shape:
            raise DataIntegrityError(f"{item.input}: size {a.shape[1]}×{a.shape[0]} differs from its target "
                                     f"{item.target} {b.shape[1]}×{b.shape[0]}; fix or remove the pair")
        h, w = a.shape[:2]
        if h < patch_size or w < patch_size:
            raise DataIntegrityError(f"{item.input}: image {w}×{h} is smaller than the {patch_size}px training patch; "
                                     "remove it or lower patch_size")
        top, left = int(rng.integers(h - patch_size + 1)), int(rng.integers(w - patch_size + 1))
        k = int(rng.integers(1, 8))  # one of the 7 non-identity flips/rotations
        pa = dihedral(a[top : top + patch_size, left : left + patch_size], k)
        pb = dihedral(b[top : top + patch_size, left : left + patch_size], k)
        if source.part.task == "denoise":
            pa = add_gaussian_noise(pb, source.part.sigma, rng)
        return pa, pb

    def sample(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        degraded, clean = [], []
        for _ in range(batch_size):
            pa, pb = self.patch_at(int(rng.integers(len(self))), rng, patch_size)
            degraded.append(pa)
            clean.append(pb)
        return np.stack(degraded), np.stack(clean)


class NoTrainingData:
    """Stands in for a sampler when every row loads a checkpoint or scores an outputs folder."""

    pairs: dict = {}

    def __len__(self) -> int:
        return 0

    def sample(self, rng, batch_size, patch_size):
        raise HarnessError("no training data was prepared (every row loads a checkpoint or scores outputs); "
                           "call prepare(..., need_training=True) to train")
