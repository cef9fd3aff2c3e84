"""The published benchmark sets, read from the PromptIR/AirNet 3-task layout.

Layout under ``--data-root`` (PromptIR INSTALL.md, AirNet test/README.md; facts collected in
../shared/research/protocols.md §2.3 and baselines.md §3.1)::

    Train/Denoise/                 BSD400 (*.jpg) + WED (*.bmp) clean images
    Train/Derain/rainy/rain-N.png  Rain100L-train inputs  → Train/Derain/gt/norain-N.png
    Train/Dehaze/synthetic/**/0025_0.8_0.1.jpg (RESIDE-OTS) → Train/Dehaze/original/0025.jpg
    test/denoise/bsd68/            CBSD68 clean images (noise added per image, seeded)
    test/derain/Rain100L/{input,target}/   same file name in both
    test/dehaze/{input,target}/    SOTS-outdoor: input 0001_0.8_0.2.jpg → target 0001.png

Test images are centre-cropped to a multiple of 16 as the PromptIR family does
(``crop_img(base=16)``), so Rain100L 481×321 is scored at 480×320.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from harness.data import Pair, TestSet, center_crop_multiple, dihedral
from harness.data.degradations import add_gaussian_noise, seed_for
from harness.data.images import IMAGE_SUFFIXES, read_rgb
from harness.errors import DataMissingError, HarnessError

CROP_BASE = 16


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    title: str
    folders: tuple[str, ...]  # relative to the data root; all must exist
    expected_count: int | None
    published_at: str


TEST_DATASETS: dict[str, DatasetInfo] = {
    "sots_outdoor": DatasetInfo(
        "sots_outdoor", "SOTS-outdoor (RESIDE)", ("test/dehaze/input", "test/dehaze/target"), 500,
        "RESIDE, https://sites.google.com/view/reside-dehaze-datasets (SOTS outdoor)",
    ),
    "rain100l": DatasetInfo(
        "rain100l", "Rain100L test", ("test/derain/Rain100L/input", "test/derain/Rain100L/target"), 100,
        "Yang et al. 2017 (JORDER), https://www.icst.pku.edu.cn/struct/Projects/joint_rain_removal.html",
    ),
    "bsd68": DatasetInfo(
        "bsd68", "CBSD68", ("test/denoise/bsd68",), 68,
        "CBSD68, https://github.com/clausmichele/CBSD68-dataset (CBSD68/original)",
    ),
}

TRAIN_DATASETS: dict[str, DatasetInfo] = {
    "denoise": DatasetInfo(
        "denoise", "BSD400 + WED", ("Train/Denoise",), None,
        "BSD400: https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/ ; "
        "WED: https://ece.uwaterloo.ca/~k29ma/exploration/",
    ),
    "derain": DatasetInfo(
        "derain", "Rain100L-train (200 pairs)", ("Train/Derain/rainy", "Train/Derain/gt"), None,
        "Yang et al. 2017 (JORDER), https://www.icst.pku.edu.cn/struct/Projects/joint_rain_removal.html",
    ),
    "dehaze": DatasetInfo(
        "dehaze", "RESIDE-OTS", ("Train/Dehaze/synthetic", "Train/Dehaze/original"), None,
        "RESIDE, https://sites.google.com/view/reside-dehaze-datasets (OTS)",
    ),
}

TASK_TRAIN_SET = {"denoise": "denoise", "derain": "derain", "dehaze": "dehaze"}


def _images(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def check_data_root(root: pathlib.Path | None, test_ids: list[str], train_tasks: list[str]) -> None:
    """Raise DataMissingError naming every missing folder and where its dataset is published."""
    if root is None:
        raise DataMissingError("the paper profile needs --data-root DIR (the PromptIR/AirNet data layout)")
    needed = [TEST_DATASETS[i] for i in dict.fromkeys(test_ids)]
    needed += [TRAIN_DATASETS[TASK_TRAIN_SET[t]] for t in dict.fromkeys(train_tasks)]
    problems: dict[str, list[str]] = {}
    for info in needed:
        for rel in info.folders:
            folder = root / rel
            if not folder.is_dir():
                problems.setdefault(f"{info.title} (published at {info.published_at})", []).append(f"missing {folder}")
            elif not _images(folder):
                problems.setdefault(f"{info.title} (published at {info.published_at})", []).append(f"empty {folder}")
    if problems:
        lines = [f"  {dataset}: {', '.join(items)}" for dataset, items in problems.items()]
        raise DataMissingError(
            f"data root '{root}' is incomplete; nothing was trained. Fetch these datasets into the "
            "PromptIR/AirNet layout:\n" + "\n".join(lines)
        )


def require_known(dataset_id: str, task: str) -> None:
    if dataset_id not in TEST_DATASETS:
        raise HarnessError(f"unknown dataset '{dataset_id}'; known: {', '.join(TEST_DATASETS)}")
    if task not in TASK_TRAIN_SET:
        raise HarnessError(f"no paper training data for task '{task}'; known: {', '.join(TASK_TRAIN_SET)}")


def _sots_target(name: str) -> str:
    return name.split("_")[0]


def _paired(input_dir: pathlib.Path, target_dir: pathlib.Path, key) -> list[tuple[str, pathlib.Path, pathlib.Path]]:
    targets = {p.stem: p for p in _images(target_dir)}
    out, unpaired = [], []
    for inp in _images(input_dir):
        tgt = targets.get(key(inp.stem))
        if tgt is None:
            unpaired.append(inp.name)
        else:
            out.append((inp.stem, inp, tgt))
    if unpaired:
        raise HarnessError(
            f"{input_dir}: {len(unpaired)} input(s) without a target in {target_dir}, e.g. '{unpaired[0]}'"
        )
    return out


def test_set(root: pathlib.Path, column_id: str, dataset_id: str, sigma: float | None, seed: int = 0) -> TestSet:
    info = TEST_DATASETS[dataset_id]
    pairs: list[Pair] = []
    if dataset_id == "bsd68":
        for path in _images(root / info.folders[0]):
            clean = center_crop_multiple(read_rgb(path), CROP_BASE)
            rng = np.random.default_rng(seed_for(dataset_id, path.stem, sigma, seed))
            pairs.append(Pair(path.stem, add_gaussian_noise(clean, float(sigma), rng), clean))
    else:
        key = _sots_target if dataset_id == "sots_outdoor" else (lambda s: s)
        for stem, inp, tgt in _paired(root / info.folders[0], root / info.folders[1], key):
            degraded, clean = read_rgb(inp), read_rgb(tgt)
            if degraded.shape != clean.shape:
                raise HarnessError(f"{inp}: size {degraded.shape[:2]} differs from its target {tgt} {clean.shape[:2]}")
            pairs.append(Pair(stem, center_crop_multiple(degraded, CROP_BASE), center_crop_multiple(clean, CROP_BASE)))
    return TestSet(column_id, dataset_id, pairs, notes={"crop": f"centre crop to a multiple of {CROP_BASE}"})


class PaperPatchSampler:
    """Random paired 128×128-style crops from the training mixture, 8 flip/rotate variants.

    Each patch picks one of the suite's columns uniformly; denoising noise is drawn on the fly.
    (The paper's per-dataset repetition factors belong to the full trainer.)
    """

    def __init__(self, root: pathlib.Path, column_tasks: list[tuple[str, float | None]]):
        self.column_tasks = column_tasks
        self.pairs: dict[str, list[tuple[pathlib.Path, pathlib.Path | None]]] = {}
        for task in dict.fromkeys(t for t, _ in column_tasks):
            info = TRAIN_DATASETS[TASK_TRAIN_SET[task]]
            if task == "denoise":
                self.pairs[task] = [(p, None) for p in _images(root / info.folders[0])]
            elif task == "derain":
                key = lambda s: "no" + s if s.startswith("rain-") else s  # rain-N → norain-N
                self.pairs[task] = [(i, t) for _, i, t in _paired(root / info.folders[0], root / info.folders[1], key)]
            else:
                self.pairs[task] = [(i, t) for _, i, t in _paired(root / info.folders[0], root / info.folders[1], _sots_target)]

    def sample(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        degraded, clean = [], []
        for _ in range(batch_size):
            task, sigma = self.column_tasks[int(rng.integers(len(self.column_tasks)))]
            inp, tgt = self.pairs[task][int(rng.integers(len(self.pairs[task])))]
            a = read_rgb(inp)
            b = a if tgt is None else read_rgb(tgt)
            h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
            if h < patch_size or w < patch_size:
                raise HarnessError(f"{inp}: image {h}×{w} is smaller than the {patch_size}px training patch")
            top, left = int(rng.integers(h - patch_size + 1)), int(rng.integers(w - patch_size + 1))
            k = int(rng.integers(8))
            pa = dihedral(a[top : top + patch_size, left : left + patch_size], k)
            pb = dihedral(b[top : top + patch_size, left : left + patch_size], k)
            if task == "denoise":
                pa = add_gaussian_noise(pb, float(sigma), rng)
            degraded.append(pa)
            clean.append(pb)
        return np.stack(degraded), np.stack(clean)
