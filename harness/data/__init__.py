"""Benchmark data: test sets per table column and training patch samplers.

The runner calls one function, ``harness.data.sources.prepare``. Behind it:

- ``catalog``   — every dataset id (test and training sets), expected counts, pairing rules,
                  repetition factors, where each set is published; the column convention;
- ``layouts``   — the folder layouts users have (PromptIR/AirNet, AdaIR, MoCE-IR, OneRestore);
- ``config``    — ``--data-root``: a layout folder or a ``dacode-bench-data.yaml`` mapping ids;
- ``check``     — pairing, counts and image checks shared by ``data check`` and ``prepare``;
- ``paper``     — test sets from the real folders (crop, per-image or legacy-stream noise);
- ``training``  — the paper's training mixtures (``MixtureSampler``); ``torch_dataset`` wraps
                  any sampler as a map-style torch Dataset for DataLoader workers;
- ``mini``      — the offline mini profile (bundled images, synthetic degradations, disk cache);
- ``degradations`` — the synthetic degradations and the denoising noise protocol;
- ``manifest``, ``hub`` — sha256 manifests; pinned, verified Hugging Face downloads;
- ``commands``  — ``dacode-bench data list|check|manifest|download``;
- ``errors``    — the HarnessError subclasses every data problem raises.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np


@dataclass(frozen=True)
class Pair:
    """One test image: degraded input and clean target, both H×W×3 uint8 RGB."""

    image_id: str
    degraded: np.ndarray
    clean: np.ndarray


@dataclass(frozen=True)
class TestItem:
    """One test image before it is read: its id, its size as scored (H, W) and how to load it."""

    __test__ = False  # not a pytest test class

    image_id: str
    shape: tuple[int, int]
    load: Callable[[], Pair]


class TestSet:
    """The test images of one table column.

    A set is a list of :class:`TestItem`: evaluation loads (reads, crops, degrades) the images of
    one batch at a time, so memory does not grow with the set (GoPro's 1,111 test pairs are about
    6 GB decoded). Small sets (the mini profile, tests) can be given as ready ``pairs``.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, column_id: str, dataset_id: str, pairs: list[Pair] | None = None,
                 notes: dict[str, str] | None = None, *, items: list[TestItem] | None = None):
        if (pairs is None) == (items is None):
            raise ValueError("give a TestSet either pairs or items")
        self.column_id = column_id
        self.dataset_id = dataset_id
        self.notes = dict(notes or {})
        if items is None:
            items = [TestItem(p.image_id, tuple(p.clean.shape[:2]), (lambda p=p: p)) for p in pairs]
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def image_ids(self) -> list[str]:
        return [i.image_id for i in self.items]

    @property
    def pairs(self) -> list[Pair]:
        """Every pair, loaded now (for small sets and scripts; evaluation streams ``items``)."""
        return [i.load() for i in self.items]

    def head(self, n: int | None) -> "TestSet":
        """The first ``n`` images (all when None), still lazy."""
        return TestSet(self.column_id, self.dataset_id, notes=self.notes, items=self.items[:n])


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
    the excess h % base is split with the smaller half on top (docs/protocols.md#test-images-crop)."""
    h, w = img.shape[:2]
    ch, cw = h % base, w % base
    return img[ch // 2 : h - ch + ch // 2, cw // 2 : w - cw + cw // 2]
