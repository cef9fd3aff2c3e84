"""The offline mini profile: clean images bundled with scikit-image, synthetic degradations.

Not comparable with the paper: the images are not the benchmark sets and the degradations
are synthetic stand-ins (``harness.data.degradations``): haze for SOTS, rain streaks for
Rain100L, Gaussian noise exactly as the protocol adds it for BSD68, motion blur for GoPro,
low light for LOL-v1 and the composites (haze+rain, low+haze+snow, ...) for CDD-11.

Every column of the three protocols (Table 1 3-task, Table 2 5-task, Table 3 CDD-11) builds
from the same four 128×128 test photographs; training patches come from thirteen other
bundled images (disjoint from the test images). Everything is seeded — the same seed gives
the same pixels — and the generated test sets are cached on disk by content hash under
``$DACODE_BENCH_CACHE`` (default ``~/.cache/dacode-bench``): the key covers the clean pixels,
the column's parameters, the seed, the noise mode and the source of the degradation code, so
an edit to a generator never serves stale images.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
from functools import lru_cache

import numpy as np

from harness import atomic
from harness.data import Pair, TestSet, center_crop_multiple, dihedral
from harness.data.degradations import check_legacy_sigma, degrade, legacy_noise_stream, seed_for
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

CACHE_ENV = "DACODE_BENCH_CACHE"
# Bump when the meaning of a cached file changes in a way the key below does not capture.
CACHE_VERSION = "mini-1"
_DEGRADATIONS_SOURCE = pathlib.Path(__file__).with_name("degradations.py")


def cache_root() -> pathlib.Path:
    """``$DACODE_BENCH_CACHE`` or ``~/.cache/dacode-bench`` (read on every call)."""
    env = os.environ.get(CACHE_ENV)
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache" / "dacode-bench"


@lru_cache(maxsize=None)
def _code_hash() -> str:
    return hashlib.sha256(_DEGRADATIONS_SOURCE.read_bytes()).hexdigest()


def _key(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _load(path: pathlib.Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError):
        return None  # absent or damaged: regenerate


def _save(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        atomic.write_bytes(path, buffer.getvalue())
    except OSError:
        pass  # a read-only cache only costs time


def _cached(name: str, key_doc: dict, build) -> dict[str, np.ndarray]:
    key = _key({"version": CACHE_VERSION, **key_doc})
    path = cache_root() / "mini" / key[:2] / f"{name}-{key}.npz"
    arrays = _load(path)
    if arrays is None:
        arrays = build()
        _save(path, arrays)
    return arrays


@lru_cache(maxsize=None)
def clean_test_images(size: int = TEST_SIZE) -> tuple[tuple[str, np.ndarray], ...]:
    """The four test photographs, centre-cropped and resized to size×size (cached on disk)."""
    import cv2
    import skimage

    arrays = _cached("clean", {"images": TEST_IMAGES, "size": size, "skimage": skimage.__version__,
                               "cv2": cv2.__version__},
                     lambda: {name: center_square(bundled_image(name), size) for name in TEST_IMAGES})
    return tuple((name, arrays[name]) for name in TEST_IMAGES)


@lru_cache(maxsize=None)
def clean_train_images(short_side: int = TRAIN_SHORT_SIDE) -> tuple[np.ndarray, ...]:
    """The thirteen training images, short side resized to ``short_side`` (cached on disk)."""
    import cv2
    import skimage

    arrays = _cached("train", {"images": TRAIN_IMAGES, "short_side": short_side, "skimage": skimage.__version__,
                               "cv2": cv2.__version__},
                     lambda: {name: resize_short_side(bundled_image(name), short_side) for name in TRAIN_IMAGES})
    return tuple(arrays[name] for name in TRAIN_IMAGES)


def _noise_seed(dataset_id: str, image_id: str, task: str, sigma, parts: str | None, seed: int) -> int:
    # (dataset, image id, σ) plus the task and run seed; parts only for composites, so the
    # Table 1 columns keep the pixels they had before composites existed.
    extra = (parts,) if parts else ()
    return seed_for("mini", dataset_id, image_id, task, sigma, *extra, seed)


def test_set(
    column_id: str,
    dataset_id: str,
    task: str,
    sigma: float | None = None,
    seed: int = 0,
    *,
    parts: str | None = None,
    noise: str = "per_image",
    crop_multiple: int | None = None,
) -> TestSet:
    """One mini column: the four test images, degraded by the column's task.

    ``noise='legacy_stream'`` replays the official stream (seed 0, σ 15 → 25 → 50 over the
    images sorted by id) instead of one seed per image; the run seed does not enter it.
    """
    cleans = clean_test_images()
    if crop_multiple:
        cleans = tuple((name, center_crop_multiple(img, crop_multiple)) for name, img in cleans)
    legacy = task == "denoise" and noise == "legacy_stream"
    key_doc = {
        "dataset": dataset_id, "task": task, "sigma": None if sigma is None else float(sigma), "parts": parts,
        "seed": None if legacy else seed, "noise": noise if task == "denoise" else None,
        "code": _code_hash(), "clean": [hashlib.sha256(img.tobytes()).hexdigest() + str(img.shape) for _, img in cleans],
    }

    def build() -> dict[str, np.ndarray]:
        if legacy:
            check_legacy_sigma(column_id, sigma)
            stream = legacy_noise_stream(sorted(cleans, key=lambda c: c[0]), keep={float(sigma)})
            return {image_id: stream[(float(sigma), image_id)] for image_id, _ in cleans}
        out = {}
        for image_id, clean in cleans:
            rng = np.random.default_rng(_noise_seed(dataset_id, image_id, task, sigma, parts, seed))
            out[image_id] = degrade(task, clean, rng, sigma=sigma, parts=parts)
        return out

    degraded = _cached("testset", key_doc, build)
    pairs = [Pair(image_id, degraded[image_id], clean) for image_id, clean in cleans]
    notes = {"source": LABEL, "crop": f"centre crop to a multiple of {crop_multiple}" if crop_multiple else "none"}
    if task == "denoise":
        notes["noise"] = noise
    if parts:
        notes["parts"] = parts
    return TestSet(column_id, f"mini/{dataset_id}", pairs, notes=notes)


class MiniPatchSampler:
    """Random clean patches (8 flip/rotate variants), degraded on the fly.

    Each patch picks one of the suite's columns uniformly, so the mixture matches the
    table: e.g. Table 1 trains on haze, rain and noise at sigma 15/25/50. (The paper's
    repetition factors are relative to the real sets' sizes and do not carry over to one
    shared pool of thirteen images; ``harness.data.training`` applies them on real data.)
    ``column_tasks`` holds (task, sigma) or (task, sigma, parts) per column.
    """

    def __init__(self, column_tasks: list[tuple]):
        if not column_tasks:
            raise ValueError("a sampler needs at least one (task, sigma) column")
        self.column_tasks = [tuple(c) + (None,) * (3 - len(c)) for c in column_tasks]
        self.images = clean_train_images()

    def sample(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        degraded, clean = [], []
        for _ in range(batch_size):
            img = self.images[int(rng.integers(len(self.images)))]
            h, w = img.shape[:2]
            top = int(rng.integers(h - patch_size + 1))
            left = int(rng.integers(w - patch_size + 1))
            patch = dihedral(img[top : top + patch_size, left : left + patch_size], int(rng.integers(8)))
            task, sigma, parts = self.column_tasks[int(rng.integers(len(self.column_tasks)))]
            degraded.append(degrade(task, patch, rng, sigma=sigma, parts=parts))
            clean.append(patch)
        return np.stack(degraded), np.stack(clean)


def clear_memory_cache() -> None:
    """Forget the in-process copies (the disk cache stays): for timing a cached build."""
    clean_test_images.cache_clear()
    clean_train_images.cache_clear()
