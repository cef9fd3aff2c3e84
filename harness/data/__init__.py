"""Benchmark data: test sets per table column and training patch samplers.

Two sources implement the same interface:
- ``harness.data.mini``  — the offline mini profile built from bundled images;
- ``harness.data.paper`` — the published benchmark sets in the PromptIR/AirNet layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Pair:
    """One test image: degraded input and clean target, both H×W×3 uint8 RGB."""

    image_id: str
    degraded: np.ndarray
    clean: np.ndarray


@dataclass
class TestSet:
    column_id: str
    dataset_id: str
    pairs: list[Pair]
    notes: dict[str, str] = field(default_factory=dict)


class PatchSampler(Protocol):
    """Draws paired training patches from the suite's degradation mixture."""

    def sample(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (degraded, clean) uint8 arrays of shape B×P×P×3."""


def dihedral(img: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flip/rotate variants (k=0 is the identity)."""
    out = np.rot90(img, k % 4, axes=(0, 1))
    if k >= 4:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def center_crop_multiple(img: np.ndarray, base: int) -> np.ndarray:
    """Crop to a multiple of ``base`` as the PromptIR family does (crop_img(base=16)):
    the excess h % base is split with the smaller half on top (baselines.md §3.1)."""
    h, w = img.shape[:2]
    ch, cw = h % base, w % base
    return img[ch // 2 : h - ch + ch // 2, cw // 2 : w - cw + cw // 2]
