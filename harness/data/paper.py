"""Test sets from the real benchmark folders (any layout in ``harness.data.layouts``).

Protocol (docs/protocols.md#test-images-crop; loading: docs/protocols.md#test-images-loading;
noise: docs/protocols.md#denoising-noise):

- test images are centre-cropped to a multiple of ``crop_multiple`` (PromptIR family:
  ``crop_img(base=16)``, so Rain100L 481×321 is scored at 480×320; CDD-11: no crop), input
  and target alike;
- BSD68 is clean only; its noisy inputs are made here, after the crop: ``per_image`` draws
  from a seed derived from (dataset, image id, σ, run seed), independent of file order,
  worker count and which σ ran before; ``legacy_stream`` replays the official single stream
  (``harness.data.degradations.legacy_noise_stream``) over the images sorted by id.
- image ids are input file stems (SOTS: ``0001_0.8_0.2``), unique per set.

Test sets are lazy (:class:`harness.data.TestItem`): an image is read, cropped and degraded
when evaluation reaches its batch. Each test file's sha256 is taken once at prepare time (the
run's manifest) and checked again when the file is decoded, so a file that changes during a run
stops it instead of being scored.
"""
from __future__ import annotations

import hashlib
import pathlib
import threading

import numpy as np

from harness.data import Pair, TestItem, TestSet, center_crop_multiple
from harness.data.catalog import ColumnData
from harness.data.check import DatasetCheck
from harness.data.degradations import add_gaussian_noise, check_legacy_sigma, legacy_noise_stream, seed_for
from harness.data.errors import DataIntegrityError, ImageReadError
from harness.data.images import decode_rgb, read_header


class TestFiles:
    """The sha256 of every test file a run reads, taken before any compute (streamed, nothing kept),
    and the decoder that checks it again when the pixels are needed."""

    def __init__(self) -> None:
        self.sha256: dict[pathlib.Path, str] = {}
        self._lock = threading.Lock()

    def _bytes(self, path: pathlib.Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ImageReadError(f"cannot read image '{path}': {exc.strerror or exc}; check the file") from None

    def hash(self, path: pathlib.Path) -> str:
        if path not in self.sha256:
            digest = hashlib.sha256(self._bytes(path)).hexdigest()
            with self._lock:
                self.sha256[path] = digest
        return self.sha256[path]

    def read(self, path: pathlib.Path) -> np.ndarray:
        data = self._bytes(path)
        recorded = self.sha256.get(path)
        if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
            raise DataIntegrityError(f"{path} changed while the run was using it (sha256 differs from the one "
                                     "recorded when the run started); rerun once the data are stable")
        return decode_rgb(data, path, warn=False)


def crop(img: np.ndarray, multiple: int | None, path: pathlib.Path) -> np.ndarray:
    if not multiple:
        return img
    h, w = img.shape[:2]
    if h < multiple or w < multiple:
        raise DataIntegrityError(f"{path}: image {w}×{h} is smaller than the crop multiple {multiple}; remove it")
    return center_crop_multiple(img, multiple)


def cropped_shape(height: int, width: int, multiple: int | None) -> tuple[int, int]:
    if not multiple:
        return height, width
    return height - height % multiple, width - width % multiple


def crop_note(multiple: int | None) -> str:
    return f"centre crop to a multiple of {multiple}" if multiple else "none"


def _shape(check: DatasetCheck, path: pathlib.Path, multiple: int | None) -> tuple[int, int]:
    header = check.headers.get(path) or read_header(path)
    return cropped_shape(header.height, header.width, multiple)


def build_test_set(
    check: DatasetCheck,
    column: ColumnData,
    *,
    crop_multiple: int | None,
    noise: str,
    seed: int,
    files: TestFiles,
    legacy_cache: dict,
) -> TestSet:
    """One column's lazy test set; every file it will read is hashed into ``files`` now."""
    info = check.info
    entries = check.items[column.parts or ""]
    items: list[TestItem] = []
    for entry in entries:
        files.hash(entry.input)
        if entry.target is not None:
            files.hash(entry.target)
    if info.kind_spec.synthesised_input:
        if noise == "legacy_stream":
            check_legacy_sigma(column.column_id, column.sigma)
            key = (info.id, crop_multiple)
            if key not in legacy_cache:
                # one stream over every image, σ 15 → 25 → 50: it must be drawn whole and in order
                cleans = sorted(((e.image_id, crop(files.read(e.input), crop_multiple, e.input)) for e in entries),
                                key=lambda c: c[0])
                legacy_cache[key] = (dict(cleans), legacy_noise_stream(cleans))
            cleans, stream = legacy_cache[key]
            for e in entries:
                def load(e=e, sigma=column.sigma):
                    return Pair(e.image_id, stream[(sigma, e.image_id)], cleans[e.image_id])

                items.append(TestItem(e.image_id, _shape(check, e.input, crop_multiple), load))
        else:
            for e in entries:
                def load(e=e, sigma=column.sigma):
                    clean = crop(files.read(e.input), crop_multiple, e.input)
                    rng = np.random.default_rng(seed_for(info.id, e.image_id, sigma, seed))
                    return Pair(e.image_id, add_gaussian_noise(clean, sigma, rng), clean)

                items.append(TestItem(e.image_id, _shape(check, e.input, crop_multiple), load))
    else:
        for e in entries:
            def load(e=e):
                degraded, clean = files.read(e.input), files.read(e.target)
                if degraded.shape != clean.shape:
                    raise DataIntegrityError(
                        f"{e.input}: size {degraded.shape[1]}×{degraded.shape[0]} differs from its target {e.target} "
                        f"{clean.shape[1]}×{clean.shape[0]}; fix or remove the pair"
                    )
                return Pair(e.image_id, crop(degraded, crop_multiple, e.input), crop(clean, crop_multiple, e.target))

            items.append(TestItem(e.image_id, _shape(check, e.input, crop_multiple), load))
    notes = {"crop": crop_note(crop_multiple)}
    if info.task == "denoise":
        notes["noise"] = ("legacy_stream (seed 0, σ 15→25→50, images sorted by id)" if noise == "legacy_stream"
                          else "per_image (seed from dataset, image id, σ, run seed)")
    if column.parts:
        notes["parts"] = column.parts
    return TestSet(column.column_id, info.id, notes=notes, items=items)


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

    from harness.data import catalog, config
    from harness.data import check as checks

    info = catalog.get(dataset_id)
    column = catalog.column_data(SimpleNamespace(id=column_id, task=info.task, dataset=dataset_id, sigma=sigma, parts=parts))
    sources = config.resolve(data_root)
    found = checks.start(sources.locate(dataset_id), (column.parts,) if column.parts else None)
    checks.raise_if_missing([found], sources)
    checks.complete(found, crop_multiple=crop_multiple, counts_policy=counts or sources.counts)
    checks.raise_if_bad([found], sources)
    checks.warn_about([found])
    return build_test_set(found, column, crop_multiple=crop_multiple, noise=noise, seed=seed, files=TestFiles(),
                          legacy_cache={})
