"""Where the data are: ``--data-root`` (a folder in a known layout, or a config file).

``--data-root`` (or ``$DACODE_BENCH_DATA`` when the option is absent) is one of:

1. a folder in one of the known layouts (``harness.data.layouts``), detected per dataset: a
   dataset is read from the first layout whose folders for it all exist;
2. a folder holding ``dacode-bench-data.yaml``, or
3. the path of such a YAML file, which maps dataset ids to folders once::

    # dacode-bench-data.yaml — relative paths are relative to this file
    roots:                          # trees in a known layout (default: this file's folder)
      - {path: /data/promptir, layout: adair}   # layout optional: detected per dataset
      - {path: ~/datasets, layout: moce}
    datasets:                       # explicit folders per dataset id; win over the roots
      sots_outdoor: {input: /data/SOTS/outdoor/hazy, target: /data/SOTS/outdoor/gt}
      bsd68: {clean: /data/CBSD68/original_png}
      bsd400_wed: {clean: [/data/BSD400, /data/WED]}
      cdd11: {root: /data/CDD-11/test}            # holds clear/ and the eleven type folders
    counts: strict                  # 'warn': accept sets whose counts differ (a subset);
                                    # the run's label then says so
    manifest: dacode-bench-manifest.json   # default: this name next to the file, if present

Roles per dataset kind: clean sets (bsd68, bsd400_wed) take ``clean`` (one folder or a
list); paired sets take ``input`` (one or a list) and ``target``; CDD-11 takes ``root``.
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.data import catalog, layouts
from harness.data.catalog import DatasetInfo
from harness.data.errors import DataConfigError, DataMissingError

CONFIG_NAME = "dacode-bench-data.yaml"
MANIFEST_NAME = "dacode-bench-manifest.json"
DATA_ENV = "DACODE_BENCH_DATA"



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RootEntry(_Strict):
    path: str
    layout: str | None = None


class DatasetEntry(_Strict):
    clean: str | list[str] | None = None
    input: str | list[str] | None = None
    target: str | None = None
    root: str | None = None


class DataConfig(_Strict):
    roots: list[RootEntry | str] | None = None
    datasets: dict[str, DatasetEntry] = {}
    counts: Literal["strict", "warn"] = "strict"
    manifest: str | None = None


@dataclass
class DatasetFolders:
    """One dataset's folders, resolved: role → absolute folders, and where they came from."""

    info: DatasetInfo
    roles: dict[str, list[pathlib.Path]]
    origin: str  # "config <file>" or "layout <name> under <root>"
    layout: str | None = None

    @property
    def folders(self) -> list[pathlib.Path]:
        return [p for role in layouts.ROLE_ORDER for p in self.roles.get(role, [])]

    def missing(self) -> list[pathlib.Path]:
        return [p for p in self.folders if not p.is_dir()]


@dataclass
class DataSources:
    """The user's mapping from dataset ids to folders."""

    description: str  # for messages and provenance
    roots: list[tuple[pathlib.Path, layouts.Layout | None]] = field(default_factory=list)
    explicit: dict[str, dict[str, list[pathlib.Path]]] = field(default_factory=dict)
    counts: str = "strict"
    config_path: pathlib.Path | None = None
    manifest_path: pathlib.Path | None = None
    _detected: dict = field(default_factory=dict, repr=False)

    def locate(self, dataset_id: str) -> DatasetFolders:
        info = catalog.get(dataset_id)
        if dataset_id in self.explicit:
            return DatasetFolders(info, self.explicit[dataset_id], f"config {self.config_path}")
        fallback: DatasetFolders | None = None
        for root, fixed in self.roots:
            if fixed:
                candidates = [fixed]
            else:  # the root's own layout first, so shared folders are reported under its name
                best = self._detected.setdefault(root, layouts.detect(root))
                candidates = [best, *(lay for lay in layouts.LAYOUTS.values() if lay is not best)]
            for layout in candidates:
                if dataset_id not in layout.folders:
                    continue
                found = self._from_layout(info, root, layout)
                if not found.missing():
                    return found
            if fallback is None:
                guess = fixed or self._detected[root]
                if dataset_id not in guess.folders:
                    guess = next(lay for lay in layouts.LAYOUTS.values() if dataset_id in lay.folders)
                fallback = self._from_layout(info, root, guess)
        if fallback is None:
            raise DataMissingError(f"{self.description}: no folder is given for dataset '{dataset_id}'")
        return fallback

    @staticmethod
    def _from_layout(info: DatasetInfo, root: pathlib.Path, layout: layouts.Layout) -> DatasetFolders:
        roles = {role: [root / rel for rel in rels] for role, rels in layout.folders[info.id].items()}
        return DatasetFolders(info, roles, f"layout {layout.name} under {root}", layout.name)


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _path(base: pathlib.Path, text: str) -> pathlib.Path:
    path = pathlib.Path(os.path.expandvars(text)).expanduser()
    return path if path.is_absolute() else (base / path)


def load_config(path: pathlib.Path) -> DataSources:
    path = pathlib.Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise DataConfigError(f"cannot read data config '{path}': {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise DataConfigError(f"{path}: {where}malformed YAML ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(raw, dict):
        raise DataConfigError(f"{path}: a data config is a mapping (roots, datasets, counts, manifest)")
    try:
        cfg = DataConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise DataConfigError(f"{path}: {loc}: {first['msg']}") from None
    base = path.parent.resolve()
    roots: list[tuple[pathlib.Path, layouts.Layout | None]] = []
    for entry in cfg.roots if cfg.roots is not None else [RootEntry(path=".")]:
        entry = RootEntry(path=entry) if isinstance(entry, str) else entry
        layout = None
        if entry.layout:
            try:
                layout = layouts.get_layout(entry.layout)
            except DataConfigError as exc:
                raise DataConfigError(f"{path}: roots: {exc}") from None
        roots.append((_path(base, entry.path), layout))
    explicit: dict[str, dict[str, list[pathlib.Path]]] = {}
    for dataset_id, entry in cfg.datasets.items():
        try:
            info = catalog.get(dataset_id)
        except Exception as exc:  # UnknownDatasetError: name the file
            raise DataConfigError(f"{path}: datasets: {exc}") from None
        want = info.kind_spec.roles
        given = {role: _as_list(getattr(entry, role)) for role in ("clean", "input", "target", "root")}
        given = {role: v for role, v in given.items() if v}
        if set(given) != set(want):
            raise DataConfigError(
                f"{path}: datasets.{dataset_id}: a {info.kind} set takes {' and '.join(want)} "
                f"(got {', '.join(given) or 'nothing'})"
            )
        explicit[dataset_id] = {role: [_path(base, p) for p in v] for role, v in given.items()}
    manifest = _path(base, cfg.manifest) if cfg.manifest else base / MANIFEST_NAME
    return DataSources(f"data config '{path}'", roots, explicit, cfg.counts, path, manifest)


def resolve(data_root: str | os.PathLike | None) -> DataSources:
    """Turn ``--data-root`` (or ``$DACODE_BENCH_DATA``) into the user's data sources."""
    if data_root is None:
        env = os.environ.get(DATA_ENV)
        if not env:
            raise DataConfigError(
                f"the paper profile needs --data-root DIR (a folder in the PromptIR, AdaIR, MoCE-IR or OneRestore "
                f"layout, or a {CONFIG_NAME} file; ${DATA_ENV} is used when the option is absent)"
            )
        data_root = env
    root = pathlib.Path(data_root).expanduser().resolve()
    if root.is_file():
        return load_config(root)
    if not root.exists():
        raise DataConfigError(f"data root '{root}' does not exist; pass the folder holding the datasets")
    if (root / CONFIG_NAME).is_file():
        return load_config(root / CONFIG_NAME)
    return DataSources(f"data root '{root}'", [(root, None)], manifest_path=root / MANIFEST_NAME)
