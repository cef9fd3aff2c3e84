"""The offline mini profile: clean images bundled with scikit-image, synthetic degradations.

Not comparable with the paper: the images are not the benchmark sets and the degradations
are synthetic stand-ins. Everything is seeded, so the same seed gives the same pixels.
Train and test use disjoint source images.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.data import Pair, TestSet, dihedral
from harness.data.degradations import degrade, seed_for
from harness.data.images import bundled_image, center_square, resize_short_side

# Colour photographs for testing; everything else (textures, microscopy, stereo views) trains.
TEST_IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
TRAIN_IMAGES = (
    "immunohistochemistry", "retina", "stereo_motorcycle", "camera", "brick", "grass",
    "gravel", "coins", "clock", "moon", "cell", "page", "text",
)
TEST_SIZE = 128
TRAIN_SHORT_SIDE = 192

LABEL = "mini profile — synthetic degradations of bundled images, not comparable with the paper"


@lru_cache(maxsize=None)
def clean_test_images(size: int = TEST_SIZE) -> tuple[tuple[str, np.ndarray], ...]:
    return tuple((name, center_square(bundled_image(name), size)) for name in TEST_IMAGES)


@lru_cache(maxsize=None)
def clean_train_images(short_side: int = TRAIN_SHORT_SIDE) -> tuple[np.ndarray, ...]:
    return tuple(resize_short_side(bundled_image(name), short_side) for name in TRAIN_IMAGES)


def test_set(column_id: str, dataset_id: str, task: str, sigma: float | None, seed: int = 0) -> TestSet:
    pairs = []
    for image_id, clean in clean_test_images():
        rng = np.random.default_rng(seed_for("mini", dataset_id, image_id, task, sigma, seed))
        pairs.append(Pair(image_id, degrade(task, clean, rng, sigma=sigma), clean))
    return TestSet(column_id, f"mini/{dataset_id}", pairs, notes={"source": LABEL})


class MiniPatchSampler:
    """Random clean patches (8 flip/rotate variants), degraded on the fly.

    Each patch picks one of the suite's columns uniformly, so the mixture matches the
    table: e.g. Table 1 trains on haze, rain and noise at sigma 15/25/50.
    """

    def __init__(self, column_tasks: list[tuple[str, float | None]]):
        if not column_tasks:
            raise ValueError("a sampler needs at least one (task, sigma) column")
        self.column_tasks = column_tasks
        self.images = clean_train_images()

    def sample(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        degraded, clean = [], []
        for _ in range(batch_size):
            img = self.images[int(rng.integers(len(self.images)))]
            h, w = img.shape[:2]
            top = int(rng.integers(h - patch_size + 1))
            left = int(rng.integers(w - patch_size + 1))
            patch = dihedral(img[top : top + patch_size, left : left + patch_size], int(rng.integers(8)))
            task, sigma = self.column_tasks[int(rng.integers(len(self.column_tasks)))]
            degraded.append(degrade(task, patch, rng, sigma=sigma))
            clean.append(patch)
        return np.stack(degraded), np.stack(clean)
