"""The dataset catalogue: every dataset id a suite or the training mixture can name.

Facts and their sources (docs/datasets.md, docs/protocols.md#training-mixture):

- counts: docs/datasets.md#dataset-ids (BSD68 68, Rain100L 100, SOTS-outdoor 500 — InstructIR
  asserts 500, one user reports a 492-pair copy —, GoPro 1111 and LOL-v1 15 — InstructIR
  asserts —, CDD-11 11 types; 200 test scenes per type is third-party and unverified; training
  lists: 5,144 BSD400+WED, 200 Rain100L-train, 72,135 RESIDE-OTS); LOL-v1 train 485 from the
  HF card ``geekyrakshit/LoL-Dataset`` (docs/datasets.md#dataset-ids);
- pairing rules: PromptIR ``_get_gt_path`` / ``_get_gt_name`` / ``_get_nonhazy_name``
  (docs/datasets.md#pairing-rules); CDD-11 ``<type>/x.png`` ↔ ``clear/x.png``
  (OneRestore README, docs/datasets.md#onerestore-cdd-11);
- repetition factors of the training mixture: docs/protocols.md#training-mixture (denoise ×3
  per σ, rain ×120, haze ×1: PromptIR ``train.py``; GoPro ×5, LOL ×20: AdaIR and MoCE-IR).

Column convention (both profiles): a column's ``dataset`` names a *test* set below and its
``task`` must be the set's task. CDD-11 columns are ``task: composite, dataset: cdd11,
parts: <CDD-11 folder name>`` for all eleven types, single ones included (``parts: haze``);
parts may be written in any order (``haze_low`` = ``low_haze``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.data.errors import ColumnDataError, UnknownDatasetError

# CDD-11's eleven degradation folders, named as in OneRestore's data/{train,test}/ (docs/datasets.md#onerestore-cdd-11).
CDD11_TYPES = (
    "low", "haze", "rain", "snow",
    "low_haze", "low_rain", "low_snow", "haze_rain", "haze_snow",
    "low_haze_rain", "low_haze_snow",
)
CDD11_CLEAR = "clear"
# The order of parts inside a CDD-11 folder name (low → haze → rain/snow). The order in which a
# synthetic composite *applies* them is a different, physical one: harness.data.degradations.
CDD11_NAME_ORDER = ("low", "haze", "rain", "snow")

@dataclass(frozen=True)
class PairingRule:
    """How an input file's stem names its target's stem (targets match by stem, any suffix)."""

    name: str
    description: str
    targets: Callable[[str], tuple[str, ...]] | None  # input stem → candidate target stems, best first


def _rain_targets(stem: str) -> tuple[str, ...]:
    return ("no" + stem, stem) if stem.startswith("rain-") else (stem,)


PAIRING_RULES: dict[str, PairingRule] = {r.name: r for r in (
    PairingRule("clean_only", "clean images only; the degradation is synthesised (noise per image)", None),
    PairingRule("same_name", "input/x.png ↔ target/x.png (same stem)", lambda stem: (stem,)),
    PairingRule("haze_prefix", "input/0001_0.8_0.2.jpg → target/0001.png (stem up to the first '_'; PromptIR "
                "_get_gt_path)", lambda stem: (stem.split("_")[0],)),
    PairingRule("rain", "rainy/rain-N.png → gt/norain-N.png (PromptIR _get_gt_name), else the same stem",
                _rain_targets),
    PairingRule("cdd11", "<type>/x.png ↔ clear/x.png (OneRestore README)", lambda stem: (stem,)),
)}


def target_stems(rule: str, stem: str) -> tuple[str, ...]:
    """Candidate target stems for an input stem under a pairing rule, in order of preference."""
    targets = PAIRING_RULES[rule].targets
    if targets is None:
        raise ValueError(f"pairing rule '{rule}' has no targets")
    return targets(stem)


@dataclass(frozen=True)
class DatasetKind:
    """How a dataset is stored: which folders a config names, what one item is, whether the
    degraded input is made here and whether items come in groups (CDD-11's type folders).
    ``harness.data.check.COLLECTORS`` lists a kind's files; this says what they are."""

    name: str
    roles: tuple[str, ...]  # the folder roles a config entry gives (dacode-bench-data.yaml)
    unit: str  # "image" or "pair"
    synthesised_input: bool  # clean images only: the harness adds the degradation (noise)
    grouped: bool  # items in type folders beside a shared target folder
    description: str


DATASET_KINDS: dict[str, DatasetKind] = {k.name: k for k in (
    DatasetKind("clean", ("clean",), "image", True, False, "clean images only"),
    DatasetKind("paired", ("input", "target"), "pair", False, False, "an input folder and a target folder"),
    DatasetKind("cdd11", ("root",), "pair", False, True, "one folder per degradation type beside clear/"),
)}


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    title: str
    split: str  # "test" | "train"
    task: str  # the Column.task it serves
    kind: str  # key of DATASET_KINDS: "clean" | "paired" | "cdd11"
    pairing: str  # key of PAIRING_RULES
    expected_count: int | None  # pairs (paired), images (clean) or pairs per type (cdd11)
    count_verified: bool  # False: a mismatch is a warning, not an error
    count_source: str
    published_at: str
    train_set: str | None = None  # test sets: the training set of the paper's mixture
    repeat: int = 1  # training sets: repetition factor per epoch (per σ for denoising)
    repeat_source: str = ""

    @property
    def kind_spec(self) -> DatasetKind:
        return DATASET_KINDS[self.kind]


_RESIDE = "RESIDE, https://sites.google.com/view/reside-dehaze-datasets"
_RAIN = "Yang et al. 2017 (JORDER), https://www.icst.pku.edu.cn/struct/Projects/joint_rain_removal.html"
_GOPRO = "Nah et al. 2017, https://seungjunnah.github.io/Datasets/gopro"
_LOL = "Wei et al. 2018 (RetinexNet), https://daooshee.github.io/BMVC2018website/"
_CDD11 = "OneRestore (Guo et al. 2024), https://github.com/gy65896/OneRestore ; HF dataset gy65896/CDD-11"

DATASETS: dict[str, DatasetInfo] = {d.id: d for d in (
    # ---- test sets (the ids suites name) ----
    DatasetInfo("sots_outdoor", "SOTS-outdoor (RESIDE)", "test", "dehaze", "paired", "haze_prefix", 500, True,
                "docs/datasets.md#dataset-ids (InstructIR asserts 500; a 492-pair copy circulates)",
                _RESIDE + " (SOTS outdoor)", train_set="reside_ots"),
    DatasetInfo("rain100l", "Rain100L test", "test", "derain", "paired", "rain", 100, True,
                "docs/datasets.md#dataset-ids", _RAIN, train_set="rain100l_train"),
    DatasetInfo("bsd68", "CBSD68", "test", "denoise", "clean", "clean_only", 68, True,
                "docs/datasets.md#dataset-ids", "CBSD68, https://github.com/clausmichele/CBSD68-dataset (CBSD68/original)",
                train_set="bsd400_wed"),
    DatasetInfo("gopro", "GoPro test", "test", "deblur", "paired", "same_name", 1111, True,
                "docs/datasets.md#dataset-ids (InstructIR asserts 1111)", _GOPRO, train_set="gopro_train"),
    DatasetInfo("lol_v1", "LOL-v1 eval15", "test", "lowlight", "paired", "same_name", 15, True,
                "docs/datasets.md#dataset-ids (InstructIR asserts 15)", _LOL, train_set="lol_v1_train"),
    DatasetInfo("cdd11", "CDD-11 test", "test", "composite", "cdd11", "cdd11", 200, False,
                "docs/datasets.md#dataset-ids (200 scenes per type: third-party code, unverified)", _CDD11,
                train_set="cdd11_train"),
    # ---- training sets (the paper's mixtures) ----
    DatasetInfo("bsd400_wed", "BSD400 + WED", "train", "denoise", "clean", "clean_only", 5144, False,
                "docs/datasets.md#dataset-ids (noisy/denoise.txt: 400 BSD400 + 4,744 WED)",
                "BSD400: https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/ ; "
                "WED: https://ece.uwaterloo.ca/~k29ma/exploration/",
                repeat=3, repeat_source="docs/protocols.md#training-mixture (×3 per σ)"),
    DatasetInfo("rain100l_train", "Rain100L-train (200 pairs)", "train", "derain", "paired", "rain", 200, False,
                "docs/datasets.md#dataset-ids (rainTrain.txt)", _RAIN, repeat=120,
                repeat_source="docs/protocols.md#training-mixture (×120)"),
    DatasetInfo("reside_ots", "RESIDE-OTS", "train", "dehaze", "paired", "haze_prefix", 72135, False,
                "docs/datasets.md#dataset-ids (hazy_outside.txt)", _RESIDE + " (OTS)", repeat=1,
                repeat_source="docs/protocols.md#training-mixture (×1)"),
    DatasetInfo("gopro_train", "GoPro train", "train", "deblur", "paired", "same_name", None, False,
                "no public count recorded (docs/datasets.md#dataset-ids)", _GOPRO, repeat=5,
                repeat_source="docs/protocols.md#training-mixture (×5)"),
    DatasetInfo("lol_v1_train", "LOL-v1 train", "train", "lowlight", "paired", "same_name", 485, False,
                "HF card geekyrakshit/LoL-Dataset (docs/datasets.md#dataset-ids)", _LOL, repeat=20,
                repeat_source="docs/protocols.md#training-mixture (×20)"),
    DatasetInfo("cdd11_train", "CDD-11 train", "train", "composite", "cdd11", "cdd11", 1183, False,
                "docs/datasets.md#dataset-ids (1,183 scenes per type: third-party code, unverified)", _CDD11,
                repeat=1, repeat_source="no factor published; each type ×1"),
)}

TEST_IDS = tuple(i for i, d in DATASETS.items() if d.split == "test")


def get(dataset_id: str) -> DatasetInfo:
    if dataset_id not in DATASETS:
        raise UnknownDatasetError(
            f"unknown dataset '{dataset_id}'; test sets: {', '.join(TEST_IDS)}; "
            f"training sets: {', '.join(i for i in DATASETS if i not in TEST_IDS)} (`dacode-bench data list`)"
        )
    return DATASETS[dataset_id]


def canonical_parts(parts: str) -> str:
    """A CDD-11 folder name from parts in any order ('haze_low' → 'low_haze')."""
    names = [p for p in parts.split("_") if p]
    unknown = [n for n in names if n not in CDD11_NAME_ORDER]
    if unknown or not names or len(set(names)) != len(names):
        raise ColumnDataError(
            f"parts '{parts}' is not a CDD-11 type; the eleven types are {', '.join(CDD11_TYPES)}"
        )
    name = "_".join(sorted(names, key=CDD11_NAME_ORDER.index))
    if name not in CDD11_TYPES:
        raise ColumnDataError(f"parts '{parts}' is not a CDD-11 type; the eleven types are {', '.join(CDD11_TYPES)}")
    return name


@dataclass(frozen=True)
class ColumnData:
    """What the data layer needs of one suite column, validated against the catalogue."""

    column_id: str
    task: str
    dataset_id: str
    sigma: float | None
    parts: str | None  # canonical CDD-11 type for cdd11 columns, else None


def column_data(column) -> ColumnData:
    """Validate a suite Column (id, task, dataset, sigma, parts) against the catalogue."""
    info = get(column.dataset)
    where = f"column '{column.id}'"
    if info.split != "test":
        raise ColumnDataError(f"{where}: '{info.id}' is a training set; columns name test sets: {', '.join(TEST_IDS)}")
    if column.task != info.task:
        hint = " (CDD-11 columns use task 'composite' with parts '<type>', e.g. parts: haze)" if info.id == "cdd11" else ""
        raise ColumnDataError(f"{where}: dataset '{info.id}' is a {info.task} set, not {column.task}{hint}")
    parts = getattr(column, "parts", None)
    if info.kind_spec.grouped:
        if not parts:
            raise ColumnDataError(f"{where}: a cdd11 column needs 'parts', one of {', '.join(CDD11_TYPES)}")
        try:
            parts = canonical_parts(parts)
        except ColumnDataError as exc:
            raise ColumnDataError(f"{where}: {exc}") from None
    elif parts:
        raise ColumnDataError(f"{where}: 'parts' applies to cdd11 columns only, not to '{info.id}'")
    sigma = column.sigma
    if info.task == "denoise":
        if sigma is None or sigma <= 0:
            raise ColumnDataError(f"{where}: a denoise column needs a positive 'sigma'")
    elif sigma is not None:
        raise ColumnDataError(f"{where}: 'sigma' applies to denoise columns only")
    return ColumnData(column.id, column.task, info.id, None if sigma is None else float(sigma), parts)
