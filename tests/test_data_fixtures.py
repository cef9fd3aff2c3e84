"""Builders for small fake data roots in every known layout (imported by the data tests; no tests here)."""
from __future__ import annotations

import pathlib

import numpy as np
import yaml
from PIL import Image
from suite_helpers import resolved

from harness.data import catalog, layouts

TEST_SIZE = (40, 52)  # h, w: not multiples of 16, so the crop shows
TRAIN_SIZE = (48, 48)


def save(path: pathlib.Path, img: np.ndarray, mode: str | None = None) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, mode=mode).save(path) if mode else Image.fromarray(img).save(path)
    return path


def image(rng: np.random.Generator, size=TEST_SIZE) -> np.ndarray:
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def names(dataset_id: str, i: int) -> tuple[str, str | None]:
    """(input file name, target file name) of item ``i`` following the set's pairing rule."""
    info = catalog.get(dataset_id)
    if info.kind == "clean":
        return f"img{i}.png", None
    if info.pairing == "haze_prefix":
        return f"{i:04d}_0.8_0.2.png", f"{i:04d}.png"
    if dataset_id == "rain100l_train":
        return f"rain-{i}.png", f"norain-{i}.png"
    return f"{i}.png", f"{i}.png"


def write_dataset(root: pathlib.Path, layout: str, dataset_id: str, n: int = 2, seed: int = 0,
                  types: tuple[str, ...] = catalog.CDD11_TYPES) -> dict[str, list[pathlib.Path]]:
    """Write ``n`` items of a dataset under ``root`` in ``layout``; returns role → folders."""
    rng = np.random.default_rng(seed)
    info = catalog.get(dataset_id)
    size = TEST_SIZE if info.split == "test" else TRAIN_SIZE
    roles = {role: [root / rel for rel in rels] for role, rels in layouts.LAYOUTS[layout].folders[dataset_id].items()}
    for i in range(1, n + 1):
        if info.kind == "cdd11":
            base = roles["root"][0]
            save(base / "clear" / f"{i:06d}.png", image(rng, size))
            for t in types:
                save(base / t / f"{i:06d}.png", image(rng, size))
            continue
        inp, tgt = names(dataset_id, i)
        # a role with several folders (MoCE-IR: BSD400 + WaterlooED, RESIDE part1..4) gets items in each
        for k, folder in enumerate(roles["clean" if info.kind == "clean" else "input"]):
            name = inp if k == 0 else inp.replace("0.2.", f"0.{k + 2}.").replace("img", f"img{k}_")
            if dataset_id == "reside_ots" and layout != "moce":
                folder = folder / "part1"  # RESIDE-OTS keeps hazy images in part1..4
            save(folder / name, image(rng, size))
        if tgt:
            save(roles["target"][0] / tgt, image(rng, size))
    return roles


def make_root(root: pathlib.Path, layout: str = "promptir", datasets=None, n: int = 2, counts: str | None = "warn",
              **config) -> pathlib.Path:
    """A data root holding ``datasets`` (default: all the layout knows) and, when ``counts`` or other
    config keys are given, a dacode-bench-data.yaml saying so."""
    for k, dataset_id in enumerate(datasets or layouts.LAYOUTS[layout].folders):
        write_dataset(root, layout, dataset_id, n=n, seed=k)
    doc = {**({"counts": counts} if counts else {}), **config}
    if doc:
        (root / "dacode-bench-data.yaml").write_text(yaml.safe_dump(doc))
    return root


def suite_file(tmp_path: pathlib.Path, base: str = "table1_three_task", columns=None, **changes) -> pathlib.Path:
    """A copy of a bundled suite with one tiny trainable row and a 32 px patch, optionally other columns."""

    doc = resolved(base)
    doc["methods"] = [{"name": "Tiny", "model": "tiny"}]
    doc["reported"], doc["claims"] = [], []
    for profile in doc["profiles"].values():
        profile["train"] = {"steps": 2, "batch_size": 2, "patch_size": 32, "lr": 1e-3}
        profile.pop("methods", None)
    if columns is not None:
        doc["columns"] = columns
    doc.update(changes)
    path = tmp_path / f"{base}_tiny.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path
