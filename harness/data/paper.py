"""Test sets from the real benchmark folders (any layout in ``harness.data.layouts``).

Protocol (baselines.md §3.1, protocols.md §0.4–0.5):

- test images are centre-cropped to a multiple of ``crop_multiple`` (PromptIR family:
  ``crop_img(base=16)``, so Rain100L 481×321 is scored at 480×320; CDD-11: no crop), input
  and target alike;
- BSD68 is clean only; its noisy inputs are made here, after the crop: ``per_image`` draws
  from a seed derived from (dataset, image id, σ, run seed), independent of file order,
  worker count and which σ ran before; ``legacy_stream`` replays the official single stream
  (``harness.data.degradations.legacy_noise_stream``) over the images sorted by id.
- image ids are input file stems (SOTS: ``0001_0.8_0.2``), unique per set.
"""
from __future__ import annotations

import pathlib

import numpy as np

from harness.data import Pair, TestSet, center_crop_multiple
from harness.data.catalog import ColumnData
from harness.data.check import DatasetCheck
from harness.data.degradations import LEGACY_SIGMAS, add_gaussian_noise, legacy_noise_stream, seed_for
from harness.data.errors import ColumnDataError, DataIntegrityError
from harness.data.images import read_rgb_hashed


class ImageReader:
    """Reads each file once per prepare: decoded pixels and the sha256 of the bytes."""

    def __init__(self) -> None:
        self.pixels: dict[pathlib.Path, np.ndarray] = {}
        self.sha256: dict[pathlib.Path, str] = {}

    def __call__(self, path: pathlib.Path) -> np.ndarray:
        if path not in self.pixels:
            self.pixels[path], self.sha256[path] = read_rgb_hashed(path, warn=False)
        return self.pixels[path]


def crop(img: np.ndarray, multiple: int | None, path: pathlib.Path) -> np.ndarray:
    if not multiple:
        return img
    h, w = img.shape[:2]
    if h < multiple or w < multiple:
        raise DataIntegrityError(f"{path}: image {w}×{h} is smaller than the crop multiple {multiple}; remove it")
    return center_crop_multiple(img, multiple)


def crop_note(multiple: int | None) -> str:
    return f"centre crop to a multiple of {multiple}" if multiple else "none"


def build_test_set(
    check: DatasetCheck,
    column: ColumnData,
    *,
    crop_multiple: int | None,
    noise: str,
    seed: int,
    reader: ImageReader,
    legacy_cache: dict,
) -> TestSet:
    info = check.info
    items = check.items[column.parts or ""]
    pairs: list[Pair] = []
    if info.kind == "clean":
        cleans = [(item.image_id, crop(reader(item.input), crop_multiple, item.input)) for item in items]
        if noise == "legacy_stream":
            if column.sigma not in LEGACY_SIGMAS:
                raise ColumnDataError(f"column '{column.column_id}': the legacy stream has σ 15/25/50 only, "
                                      f"not {column.sigma:g}; use noise: per_image")
            if (info.id, crop_multiple) not in legacy_cache:
                legacy_cache[(info.id, crop_multiple)] = legacy_noise_stream(sorted(cleans, key=lambda c: c[0]))
            stream = legacy_cache[(info.id, crop_multiple)]
            pairs = [Pair(i, stream[(column.sigma, i)], c) for i, c in cleans]
        else:
            for image_id, clean in cleans:
                rng = np.random.default_rng(seed_for(info.id, image_id, column.sigma, seed))
                pairs.append(Pair(image_id, add_gaussian_noise(clean, column.sigma, rng), clean))
    else:
        for item in items:
            degraded, clean = reader(item.input), reader(item.target)
            if degraded.shape != clean.shape:
                raise DataIntegrityError(
                    f"{item.input}: size {degraded.shape[1]}×{degraded.shape[0]} differs from its target {item.target} "
                    f"{clean.shape[1]}×{clean.shape[0]}; fix or remove the pair"
                )
            pairs.append(Pair(item.image_id, crop(degraded, crop_multiple, item.input), crop(clean, crop_multiple, item.target)))
    notes = {"crop": crop_note(crop_multiple)}
    if info.task == "denoise":
        notes["noise"] = (f"legacy_stream (seed 0, σ {'→'.join(f'{s:g}' for s in LEGACY_SIGMAS)}, images sorted by id)"
                          if noise == "legacy_stream" else "per_image (seed from dataset, image id, σ, run seed)")
    if column.parts:
        notes["parts"] = column.parts
    return TestSet(column.column_id, info.id, pairs, notes=notes)


def test_set(
    data_root,
    column_id: str,
    dataset_id: str,
    sigma: float | None = None,
    seed: int = 0,
    *,
    parts: str | None = None,
    crop_multiple: int | None = 16,
    noise: str = "per_image",
    counts: str | None = None,
) -> TestSet:
    """One column's test set straight from a data root or config (checks included); for scripts and tests."""
    from types import SimpleNamespace

    from harness.data import catalog, check as checks, config
    from harness.data.errors import DataMissingError
    from harness.data.sources import raise_if_bad, warn_about

    info = catalog.get(dataset_id)
    column = catalog.column_data(SimpleNamespace(id=column_id, task=info.task, dataset=dataset_id, sigma=sigma, parts=parts))
    sources = config.resolve(data_root)
    found = checks.start(sources.locate(dataset_id), (column.parts,) if column.parts else None)
    if found.structural:
        raise DataMissingError(f"{sources.description}: " + "; ".join(found.errors))
    checks.complete(found, crop_multiple=crop_multiple, counts_policy=counts or sources.counts)
    raise_if_bad([found], sources)
    warn_about([found])
    return build_test_set(found, column, crop_multiple=crop_multiple, noise=noise, seed=seed, reader=ImageReader(),
                          legacy_cache={})
