"""Suite files: declarative descriptions of one paper table (what to run, how to show it).

A suite names datasets, degradations, methods and the table layout; it never contains
code. Files live in ``suites/<name>.yaml`` and are validated here with pydantic so a
mistake is reported as ``<file>: <key path>: <problem>``.

``include:`` (one path or a list, relative to the including file, else to the bundled
``suites/`` folder, so a copy of a bundled suite elsewhere still finds its fragments) reads
other YAML files first and lays this file over them: mappings merge key by key (recursively), anything else
— lists included — is replaced. Files whose name starts with ``_`` are such fragments and
are not suites of their own (``suites/_three_task.yaml`` holds the 3-task columns and
profiles that Tables 1, 4 and 5 share). YAML anchors (``&name`` / ``*name``) work within
one file.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import suites as _suites_package
from harness.errors import HarnessError

SUITES_DIR = pathlib.Path(_suites_package.__file__).resolve().parent

Task = Literal["denoise", "derain", "dehaze", "deblur", "lowlight", "desnow", "composite"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    """One result column of the table, e.g. BSD68 at sigma=25."""

    id: str
    group: str = Field(description="header over the column, e.g. 'Denoising on BSD68'")
    label: str = Field(description="sub-header, e.g. 'SOTS' or 'σ = 25'")
    task: Task
    dataset: str = Field(description="dataset id resolved by harness.data")
    sigma: float | None = Field(default=None, description="noise level for denoising columns")
    parts: str | None = Field(default=None, description="composite degradation, e.g. 'low_haze_rain' (CDD-11)")

    @model_validator(mode="after")
    def _task_parameters(self) -> "Column":
        if self.task == "denoise" and self.sigma is None:
            raise ValueError(f"column '{self.id}': a denoise column needs 'sigma'")
        if self.task == "composite" and not self.parts:
            raise ValueError(f"column '{self.id}': a composite column needs 'parts', e.g. 'haze_rain'")
        return self


class DataProtocol(_Strict):
    """How test images are prepared; recorded with every result.

    - ``crop_multiple``: centre-crop test images to a multiple of this (PromptIR family: 16,
      docs/protocols.md#test-images-crop); ``null`` for no crop (CDD-11 as MoCE-IR/OneRestore evaluate it).
    - ``noise``: ``per_image`` draws denoising noise from a seed derived from (dataset, image
      id, sigma); ``legacy_stream`` replays the official scripts' single global stream
      (seed 0 once, sigma 15 → 25 → 50, file order), for parity with published numbers.
    """

    crop_multiple: int | None = Field(default=16, gt=0)
    noise: Literal["per_image", "legacy_stream"] = "per_image"


class InferencePolicy(_Strict):
    """How test images go through a model; part of every cell's cache key and every footnote.

    - ``tile``: None runs each image whole (the official test scripts' default); an int runs
      overlapping tiles of that size (a multiple of the model's ``pad_multiple``), averaged where
      they overlap by ``overlap`` pixels. Global operators (MDTA, AdaIR's FFT mask, DACode's
      codebook attention) see less of the image, so tiles change the numbers.
    - ``pixel_budget``: images of one size are batched until a batch holds this many pixels.
    - ``noise_seeds``: stochastic models (MoCE-IR's noisy router) are evaluated K times with
      per-image seeds; cells show the mean and the standard deviation over the K draws.
    """

    tile: int | None = Field(default=None, gt=0)
    overlap: int = Field(default=32, ge=0)
    pixel_budget: int = Field(default=8 * 256 * 256, gt=0)
    noise_seeds: int = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _overlap_fits(self) -> "InferencePolicy":
        if self.tile is not None and self.overlap >= self.tile:
            raise ValueError(f"inference.overlap {self.overlap} must be smaller than inference.tile {self.tile}")
        return self

    def describe(self) -> str:
        whole = "whole images" if self.tile is None else f"overlapping {self.tile}px tiles (overlap {self.overlap}px, averaged)"
        seeds = f"; stochastic models: mean ± std over {self.noise_seeds} noise seeds" if self.noise_seeds > 1 else ""
        return f"inference on {whole}{seeds}"


class TrainConfig(_Strict):
    """Training budget and optimiser (DACode §4.2: AdamW, lr 2e-4, cosine to zero, L1).

    ``weight_decay`` defaults to AdamW's own 0.01, which the official codes leave unchanged.
    ``schedule: promptir_warmup`` is PromptIR's 15-epoch linear warm-up then cosine, per epoch.
    ``micro_batch``: run each global batch as micro-batches of this many samples and accumulate
    the gradients (the same update as one batch, except for BatchNorm statistics).
    """

    steps: int | None = Field(default=None, gt=0)
    epochs: int | None = Field(default=None, gt=0)
    batch_size: int = Field(gt=0)
    patch_size: int = Field(gt=0)
    lr: float = Field(gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_steps: int = Field(default=0, ge=0)
    schedule: Literal["cosine", "promptir_warmup"] = "cosine"
    warmup_epochs: int = Field(default=15, ge=0)
    micro_batch: int | None = Field(default=None, gt=0)
    bf16: bool = Field(default=True, description="bf16 autocast on a GPU")
    channels_last: bool = Field(default=True, description="channels_last memory format on a GPU")
    compile: bool = Field(default=False, description="torch.compile the training step")

    @model_validator(mode="after")
    def _one_budget(self) -> "TrainConfig":
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of 'steps' or 'epochs'")
        return self


class Profile(_Strict):
    """How to run the suite, e.g. 'mini' (offline, synthetic) or 'paper' (real benchmark data).

    ``data_source``: where test and training images come from (``harness.data.sources.DATA_SOURCES``):
    ``mini`` (bundled images, synthetic degradations) or ``benchmark`` (``--data-root``).
    Default: ``mini`` for a profile named mini, else ``benchmark``.
    ``model_size``: ``mini`` builds every registered model in its registered mini configuration
    (below the row's own ``kwargs`` and ``overrides``); ``released`` in its released one.
    """

    description: str
    comparable_with_paper: bool
    train: TrainConfig
    data_source: Literal["mini", "benchmark"] = "benchmark"
    model_size: Literal["released", "mini"] = "released"
    requires_checkpoints: bool = Field(
        default=False, description="every row loads weights (checkpoint or --checkpoints); nothing trains")
    methods: list[str] | None = Field(
        default=None, description="rows this profile runs (names); default all (mini sweeps are scaled down)"
    )


class Layout(_Strict):
    """How the table is drawn (a name in ``reports.layouts.LAYOUTS``)."""

    kind: str = "table"
    transpose: bool = False
    header: str = "Method"

    @field_validator("kind")
    @classmethod
    def _known_layout(cls, kind: str) -> str:
        from reports.layouts import LAYOUTS

        if kind not in LAYOUTS:
            raise ValueError(f"unknown layout '{kind}'; allowed: {', '.join(sorted(LAYOUTS))}")
        return kind


class MethodEntry(_Strict):
    """A table row. Exactly one source of restored images:

    - ``model``: a method id — built-in (``dacode``, ``promptir``, …) or registered by an
      installed package under the entry-point group ``dacode_bench.methods``;
    - ``build``: a dotted path ``package.module:function`` returning an ``nn.Module``;
    - ``outputs``: a folder of already restored images, ``<outputs>/<column id>/<image id>.png``,
      scored without running any model.
    ``checkpoint`` loads weights instead of training (built-in or dotted-path methods).
    ``official_metrics``: the protocols the method's own paper reports (the ``protocols``
    layout shows them beside the suite's Y protocol).
    """

    name: str = Field(description="row label in the table")
    model: str | None = Field(default=None, description="method id, e.g. 'dacode'")
    build: str | None = Field(default=None, description="dotted path 'pkg.module:function'")
    outputs: str | None = Field(default=None, description="folder of restored images per column")
    checkpoint: str | None = None
    trust_pickle: bool = Field(default=False, description="allow a checkpoint that needs full unpickling")
    citation: str | None = None
    official_metrics: list[str] | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict, description="constructor keywords for every profile")
    train: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-profile training overrides, e.g. {paper: {schedule: promptir_warmup}}"
    )
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-profile keyword overrides, applied over kwargs"
    )

    @model_validator(mode="after")
    def _one_source(self) -> "MethodEntry":
        sources = [k for k in ("model", "build", "outputs") if getattr(self, k)]
        if len(sources) != 1:
            raise ValueError(
                f"method '{self.name}' needs exactly one of 'model', 'build' or 'outputs' (got {sources or 'none'})"
            )
        if self.outputs and self.checkpoint:
            raise ValueError(f"method '{self.name}': an 'outputs' folder takes no checkpoint")
        return self

    @property
    def label(self) -> str:
        """What the row runs, for messages: its model id, builder or outputs folder."""
        return self.model or self.build or f"outputs {self.outputs}"

    def train_config(self, profile: str, base: TrainConfig) -> TrainConfig:
        """The profile's training settings with this row's overrides (validated)."""
        overrides = self.train.get(profile, {})
        if not overrides:
            return base
        try:
            return TrainConfig.model_validate({**base.model_dump(), **overrides})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise HarnessError(f"method '{self.name}': train.{profile}.{_format_loc(first['loc'])}: "
                               f"{first['msg'].removeprefix('Value error, ')}") from None

    def constructor_kwargs(self, profile: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
        """Keywords for the builder: ``base`` (a registered mini configuration), then ``kwargs``,
        then this profile's ``overrides``."""
        return {**(base or {}), **self.kwargs, **self.overrides.get(profile, {})}


class ReportedRow(_Strict):
    """A row as printed in a paper: one value per metric, per column id. ``metrics`` names the
    protocols its numbers are in (default: the suite's metrics, in order); a row printed under
    another protocol than the table's (an RGB paper in a Y-protocol table) says so here."""

    method: str
    citation: str | None = None
    metrics: list[str] | None = None
    cells: dict[str, tuple[float, ...]] = Field(default_factory=dict)
    average: tuple[float, ...] | None = None
    params: str | None = None


class Claim(_Strict):
    """A number the paper's text states about its own table, e.g. "a drop of 1.83 dB"."""

    where: str = Field(description="where the text says it, e.g. '§5.1'")
    statement: str
    minuend: str = Field(description="reported row whose average is the larger term")
    subtrahend: str
    metric: int = Field(default=0, ge=0, description="index into the suite's metrics: 0 = the first (PSNR)")
    value: float


class Suite(_Strict):
    name: str
    title: str
    source: str = Field(description="where the table comes from, e.g. 'DACode paper, Table 1'")
    caption: str
    metrics: tuple[str, ...] = ("psnr_y", "ssim_y")
    data: DataProtocol = Field(default_factory=DataProtocol)
    inference: InferencePolicy = Field(default_factory=InferencePolicy)
    columns: list[Column]
    show_params: bool = True
    layout: Layout = Field(default_factory=Layout)
    methods: list[MethodEntry]
    profiles: dict[str, Profile]
    reported: list[ReportedRow] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, raw: Any) -> Any:
        # A profile named 'mini' reads the bundled data unless it says otherwise (older suite copies).
        if isinstance(raw, dict) and isinstance(raw.get("profiles"), dict):
            profiles = {}
            for name, prof in raw["profiles"].items():
                if isinstance(prof, dict) and "data_source" not in prof:
                    prof = {**prof, "data_source": "mini" if name == "mini" else "benchmark"}
                profiles[name] = prof
            raw = {**raw, "profiles": profiles}
        return raw

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: tuple[str, ...]) -> tuple[str, ...]:
        from harness.metrics import PROTOCOLS

        if not metrics:
            raise ValueError("name at least one metric protocol")
        unknown = [m for m in metrics if m not in PROTOCOLS]
        if unknown:
            raise ValueError(f"unknown metric protocol(s) {unknown}; allowed: {', '.join(PROTOCOLS)}")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"metric protocols repeat: {list(metrics)}")
        return metrics

    @model_validator(mode="after")
    def _consistent(self) -> "Suite":
        if not self.profiles:
            raise ValueError("a suite needs at least one profile (profiles is empty)")
        if not self.columns:
            raise ValueError("a suite needs at least one column")
        if not self.methods:
            raise ValueError("a suite needs at least one method row (methods is empty)")
        ids = [c.id for c in self.columns]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate column ids in {ids}")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate method names in {names}")
        n_metrics = len(self.metrics)
        for row in self.reported:
            unknown = set(row.cells) - set(ids)
            if unknown:
                raise ValueError(f"reported row '{row.method}' names unknown columns {sorted(unknown)}")
            row_metrics = list(row.metrics or self.metrics)
            foreign = set(row_metrics) - set(self.metrics)
            if foreign:
                raise ValueError(f"reported row '{row.method}': metrics {sorted(foreign)} are not among the suite's "
                                 f"metrics {list(self.metrics)}")
            for where, values in [*row.cells.items(), *([("average", row.average)] if row.average else [])]:
                if len(values) != len(row_metrics):
                    raise ValueError(f"reported row '{row.method}', {where}: {len(values)} values for "
                                     f"{len(row_metrics)} metrics {row_metrics}")
        reported_names = {r.method for r in self.reported}
        for claim in self.claims:
            unknown = {claim.minuend, claim.subtrahend} - reported_names
            if unknown:
                raise ValueError(f"claim at {claim.where} names rows {sorted(unknown)} that are not reported")
            if claim.metric >= n_metrics:
                raise ValueError(f"claim at {claim.where}: metric {claim.metric} but the suite has {n_metrics} metrics")
        for pname, prof in self.profiles.items():
            unknown = set(prof.methods or []) - set(names)
            if unknown:
                raise ValueError(f"profile '{pname}' runs unknown methods {sorted(unknown)}; methods are {names}")
        for m in self.methods:
            unknown = (set(m.overrides) | set(m.train)) - set(self.profiles)
            if unknown:
                raise ValueError(
                    f"method '{m.name}' has overrides for unknown profiles {sorted(unknown)}; "
                    f"profiles are {sorted(self.profiles)}"
                )
            missing = set(m.official_metrics or ()) - set(self.metrics)
            if missing:
                raise ValueError(f"method '{m.name}': official_metrics {sorted(missing)} are not among the suite's "
                                 f"metrics {list(self.metrics)}")
        return self

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise HarnessError(
                f"suite '{self.name}': unknown profile '{name}'; allowed: {', '.join(sorted(self.profiles))}"
            )
        return self.profiles[name]


# -- files ------------------------------------------------------------------------------------


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml") if not p.name.startswith("_"))


def resolve_suite_path(name_or_path: str) -> pathlib.Path:
    """A suite is named by id (``table1_three_task``) or by a path to a YAML file."""
    candidate = pathlib.Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if candidate.is_dir():
            raise HarnessError(f"suite '{candidate}' is a directory; give a suite YAML file or a suite id")
        if not candidate.is_file():
            raise HarnessError(f"suite file '{candidate}' does not exist")
        return candidate
    path = SUITES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise HarnessError(
            f"unknown suite '{name_or_path}'; available: {', '.join(available_suites()) or '(none)'}"
            f" (looked in {SUITES_DIR})"
        )
    return path


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _read_yaml(path: pathlib.Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not a text file (a suite is UTF-8 YAML)") from None
    except OSError as exc:
        raise HarnessError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HarnessError(f"{path}: {where}malformed YAML ({problem})") from None


def _merge(base: Any, over: Any) -> Any:
    """``over`` laid on ``base``: mappings merge recursively, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return over


def _resolve_includes(path: pathlib.Path, chain: tuple[pathlib.Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in chain:
        cycle = " → ".join(p.name for p in (*chain, path))
        raise HarnessError(f"{path}: include cycle ({cycle})")
    raw = _read_yaml(path)
    if raw is None:
        raise HarnessError(f"{path}: the file is empty; a suite file is a mapping of keys (name, columns, methods, ...)")
    if not isinstance(raw, dict):
        raise HarnessError(f"{path}: a suite file must be a mapping of keys, got {type(raw).__name__}")
    includes = raw.pop("include", None)
    if includes is None:
        return raw
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise HarnessError(f"{path}: include: expected a file name or a list of file names")
    merged: dict = {}
    for name in includes:
        candidates = [(path.parent / name).expanduser(), SUITES_DIR / name]
        target = next((c for c in candidates if c.is_file()), None)
        if target is None:
            raise HarnessError(f"{path}: include: '{name}' does not exist (looked in {path.parent} and {SUITES_DIR})")
        merged = _merge(merged, _resolve_includes(target, (*chain, path)))
    return _merge(merged, raw)


def suite_sha256(document: dict) -> str:
    """The suite's identity: sha256 of its resolved content as canonical JSON (comments and
    key order do not matter; any value does)."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode("utf-8")).hexdigest()


REMOVED_KEYS = {"average": "the Average column is always the mean of the column means; delete the key"}


def _relative_to_suite(raw: dict, folder: pathlib.Path) -> dict:
    """A row's relative ``outputs:`` and ``checkpoint:`` paths mean paths beside the suite file."""
    methods = raw.get("methods")
    if not isinstance(methods, list):
        return raw
    rows = []
    for row in methods:
        if isinstance(row, dict):
            row = dict(row)
            for key in ("outputs", "checkpoint"):
                value = row.get(key)
                if isinstance(value, str) and value and not pathlib.Path(value).expanduser().is_absolute():
                    row[key] = str((folder / value).resolve())
        rows.append(row)
    return {**raw, "methods": rows}


def load_suite_document(name_or_path: str) -> tuple[Suite, dict, pathlib.Path]:
    """(validated suite, the resolved mapping it was validated from, its file).

    Relative ``outputs:``/``checkpoint:`` paths of a row are taken relative to the suite file's
    folder (and stored resolved, so a run's stored suite means the same files wherever it is read)."""
    path = resolve_suite_path(name_or_path)
    raw = _relative_to_suite(_resolve_includes(path), path.resolve().parent)
    for key, why in REMOVED_KEYS.items():
        if key in raw:
            raise HarnessError(f"{path}: {key}: this key was removed ({why})")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise HarnessError(f"{path}: {_format_loc(first['loc'])}: {msg}{more}") from None
    return suite, raw, path


def load_suite(name_or_path: str) -> Suite:
    return load_suite_document(name_or_path)[0]
