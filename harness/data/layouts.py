"""The folder layouts users already have, as relative folders per dataset id and role.

Roles: ``clean`` (one or more folders of clean images), ``input`` (one or more folders of
degraded images) with ``target`` (one folder), or ``root`` (CDD-11: a folder holding
``clear/`` and the type folders). Folders are searched recursively for images.

Sources (docs/datasets.md#folder-layouts):

- ``promptir`` — PromptIR ``INSTALL.md`` (3-task): ``Train/{Denoise,Derain/{rainy,gt},
  Dehaze/{synthetic,original}}``, ``test/{dehaze/{input,target}, denoise/bsd68,
  derain/Rain100L/{input,target}}``;
- ``airnet`` — AirNet ``test/README.md``: as promptir but ``test/derain/{input,target}``;
- ``adair`` — AdaIR ``INSTALL.md`` (5-task): promptir plus ``Train/{Deblur/{blur,sharp},
  Enhance/{low,gt}}`` and ``test/{deblur/gopro,enhance/lol}/{input,target}``;
- ``moce`` — MoCE-IR ``src/data/dataset_utils.py`` (``--data_file_dir``, default ``~/datasets``);
- ``onerestore`` — OneRestore README: ``{train,test}/{clear,<11 types>}`` (CDD-11).
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    source: str
    folders: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)


_PROMPTIR = {
    "sots_outdoor": {"input": ("test/dehaze/input",), "target": ("test/dehaze/target",)},
    "rain100l": {"input": ("test/derain/Rain100L/input",), "target": ("test/derain/Rain100L/target",)},
    "bsd68": {"clean": ("test/denoise/bsd68",)},
    "bsd400_wed": {"clean": ("Train/Denoise",)},
    "rain100l_train": {"input": ("Train/Derain/rainy",), "target": ("Train/Derain/gt",)},
    "reside_ots": {"input": ("Train/Dehaze/synthetic",), "target": ("Train/Dehaze/original",)},
}

LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (
    Layout("promptir", "PromptIR/AirNet 3-task", "PromptIR INSTALL.md; docs/datasets.md#promptir-and-airnet-3-task",
           dict(_PROMPTIR)),
    Layout("airnet", "AirNet 3-task (test/derain/{input,target})",
           "AirNet test/README.md; docs/datasets.md#promptir-and-airnet-3-task", {
        **_PROMPTIR,
        "rain100l": {"input": ("test/derain/input",), "target": ("test/derain/target",)},
    }),
    Layout("adair", "AdaIR 5-task", "AdaIR INSTALL.md; docs/datasets.md#adair-5-task", {
        **_PROMPTIR,
        "gopro": {"input": ("test/deblur/gopro/input",), "target": ("test/deblur/gopro/target",)},
        "lol_v1": {"input": ("test/enhance/lol/input",), "target": ("test/enhance/lol/target",)},
        "gopro_train": {"input": ("Train/Deblur/blur",), "target": ("Train/Deblur/sharp",)},
        "lol_v1_train": {"input": ("Train/Enhance/low",), "target": ("Train/Enhance/gt",)},
    }),
    Layout("moce", "MoCE-IR dataset root",
           "MoCE-IR src/data/dataset_utils.py; docs/datasets.md#moce-ir-dataset-root", {
        "bsd68": {"clean": ("denoising/cBSD68/original_png",)},
        "bsd400_wed": {"clean": ("denoising/BSD400", "denoising/WaterlooED")},
        "rain100l": {"input": ("deraining/Rain100L/rainy",), "target": ("deraining/Rain100L/gt",)},
        "rain100l_train": {"input": ("deraining/RainTrainL/rainy",), "target": ("deraining/RainTrainL/gt",)},
        "sots_outdoor": {"input": ("dehazing/SOTS/outdoor/hazy",), "target": ("dehazing/SOTS/outdoor/gt",)},
        "reside_ots": {"input": tuple(f"dehazing/RESIDE/part{k}" for k in (1, 2, 3, 4)),
                       "target": ("dehazing/RESIDE/clear",)},
        "gopro": {"input": ("deblurring/GoPro/test/input",), "target": ("deblurring/GoPro/test/target",)},
        "gopro_train": {"input": ("deblurring/GoPro/crop/train/input_crops",),
                        "target": ("deblurring/GoPro/crop/train/target_crops",)},
        "lol_v1": {"input": ("llie/LOLv1/Test/input",), "target": ("llie/LOLv1/Test/target",)},
        "lol_v1_train": {"input": ("llie/LOLv1/Train/input",), "target": ("llie/LOLv1/Train/target",)},
        "cdd11": {"root": ("cdd11/test",)},
        "cdd11_train": {"root": ("cdd11/train",)},
    }),
    Layout("onerestore", "OneRestore CDD-11", "OneRestore README; docs/datasets.md#onerestore-cdd-11", {
        "cdd11": {"root": ("test",)},
        "cdd11_train": {"root": ("train",)},
    }),
)}

ROLE_ORDER = ("clean", "input", "target", "root")


def get_layout(name: str) -> Layout:
    from harness.data.errors import DataConfigError

    if name not in LAYOUTS:
        raise DataConfigError(f"unknown layout '{name}'; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def present_fraction(layout: Layout, root: pathlib.Path, dataset_id: str) -> tuple[int, int]:
    """(folders that exist, folders the layout names) for one dataset under ``root``."""
    rels = [rel for role in layout.folders.get(dataset_id, {}).values() for rel in role]
    return sum((root / rel).is_dir() for rel in rels), len(rels)


def detect(root: pathlib.Path) -> Layout:
    """The layout with the most of its folders present under ``root`` (ties: catalogue order)."""
    best, best_score = LAYOUTS["promptir"], -1
    for layout in LAYOUTS.values():
        score = sum(present_fraction(layout, root, ds)[0] for ds in layout.folders)
        if score > best_score:
            best, best_score = layout, score
    return best
