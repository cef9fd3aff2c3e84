"""Suite files: declarative descriptions of one paper table (what to run, how to show it).

A suite names datasets, degradations, methods and the table layout; it never contains
code. Files live in ``suites/<name>.yaml`` and are validated here with pydantic so a
mistake is reported as ``<file>: <key path>: <problem>``.
"""
from __future__ import annotations

import pathlib
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import HarnessError

import suites as _suites_package

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
      baselines.md §3.1); ``null`` for no crop (CDD-11 as MoCE-IR/OneRestore evaluate it).
    - ``noise``: ``per_image`` draws denoising noise from a seed derived from (dataset, image
      id, sigma); ``legacy_stream`` replays the official scripts' single global stream
      (seed 0 once, sigma 15 → 25 → 50, file order), for parity with published numbers.
    """

    crop_multiple: int | None = Field(default=16, gt=0)
    noise: Literal["per_image", "legacy_stream"] = "per_image"


class TrainConfig(_Strict):
    """Training budget and optimiser (DACode §4.2: AdamW, lr 2e-4, cosine to zero, L1).

    ``weight_decay`` defaults to AdamW's own 0.01, which the official codes leave unchanged.
    ``schedule: promptir_warmup`` is PromptIR's 15-epoch linear warm-up then cosine, per epoch.
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
    bf16: bool = Field(default=True, description="bf16 autocast on a GPU")
    channels_last: bool = Field(default=True, description="channels_last memory format on a GPU")
    compile: bool = Field(default=False, description="torch.compile the training step")

    @model_validator(mode="after")
    def _one_budget(self) -> "TrainConfig":
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of 'steps' or 'epochs'")
        return self


class Profile(_Strict):
    """How to run the suite: 'mini' (offline, synthetic) or 'paper' (real benchmark data)."""

    description: str
    comparable_with_paper: bool
    train: TrainConfig
    methods: list[str] | None = Field(
        default=None, description="rows this profile runs (names); default all (mini sweeps are scaled down)"
    )


class Layout(_Strict):
    """How the table is drawn (see harness.report.build_tables)."""

    kind: Literal["table", "split_metrics", "ablation"] = "table"
    transpose: bool = False
    header: str = "Method"


class MethodEntry(_Strict):
    """A table row. Exactly one source of restored images:

    - ``model``: a method id — built-in (``dacode``, ``promptir``, …) or registered by an
      installed package under the entry-point group ``dacode_bench.methods``;
    - ``build``: a dotted path ``package.module:function`` returning an ``nn.Module``;
    - ``outputs``: a folder of already restored images, ``<outputs>/<column id>/<image id>.png``,
      scored without running any model.
    ``checkpoint`` loads weights instead of training (built-in or dotted-path methods).
    """

    name: str = Field(description="row label in the table")
    model: str | None = Field(default=None, description="method id, e.g. 'dacode'")
    build: str | None = Field(default=None, description="dotted path 'pkg.module:function'")
    outputs: str | None = Field(default=None, description="folder of restored images per column")
    checkpoint: str | None = None
    trust_pickle: bool = Field(default=False, description="allow a checkpoint that needs full unpickling")
    citation: str | None = None
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

    def train_config(self, profile: str, base: TrainConfig) -> TrainConfig:
        """The profile's training settings with this row's overrides (validated)."""
        overrides = self.train.get(profile, {})
        return TrainConfig.model_validate({**base.model_dump(), **overrides}) if overrides else base

    def constructor_kwargs(self, profile: str) -> dict[str, Any]:
        return {**self.kwargs, **self.overrides.get(profile, {})}


class ReportedRow(_Strict):
    """A row as printed in the paper: cells are [PSNR, SSIM] per column id."""

    method: str
    citation: str | None = None
    cells: dict[str, tuple[float, float]] = Field(default_factory=dict)
    average: tuple[float, float] | None = None
    params: str | None = None


class Claim(_Strict):
    """A number the paper's text states about its own table, e.g. "a drop of 1.83 dB"."""

    where: str = Field(description="where the text says it, e.g. '§5.1'")
    statement: str
    minuend: str = Field(description="reported row whose average is the larger term")
    subtrahend: str
    metric: Literal[0, 1] = Field(default=0, description="0 = first metric (PSNR), 1 = second (SSIM)")
    value: float


class Suite(_Strict):
    name: str
    title: str
    source: str = Field(description="where the table comes from, e.g. 'DACode paper, Table 1'")
    caption: str
    metrics: tuple[str, str] = ("psnr_y", "ssim_y")
    data: DataProtocol = Field(default_factory=DataProtocol)
    columns: list[Column]
    average: Literal["mean_of_columns"] = "mean_of_columns"
    show_params: bool = True
    layout: Layout = Field(default_factory=Layout)
    methods: list[MethodEntry]
    profiles: dict[str, Profile]
    reported: list[ReportedRow] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "Suite":
        ids = [c.id for c in self.columns]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate column ids in {ids}")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate method names in {names}")
        for row in self.reported:
            unknown = set(row.cells) - set(ids)
            if unknown:
                raise ValueError(f"reported row '{row.method}' names unknown columns {sorted(unknown)}")
        reported_names = {r.method for r in self.reported}
        for claim in self.claims:
            unknown = {claim.minuend, claim.subtrahend} - reported_names
            if unknown:
                raise ValueError(f"claim at {claim.where} names rows {sorted(unknown)} that are not reported")
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
        return self

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise HarnessError(
                f"suite '{self.name}': unknown profile '{name}'; allowed: {', '.join(sorted(self.profiles))}"
            )
        return self.profiles[name]


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def resolve_suite_path(name_or_path: str) -> pathlib.Path:
    """A suite is named by id (``table1_three_task``) or by a path to a YAML file."""
    candidate = pathlib.Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
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


def load_suite(name_or_path: str) -> Suite:
    path = resolve_suite_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise HarnessError(f"{path}: {where}malformed YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise HarnessError(f"{path}: a suite file must be a mapping of keys, got {type(raw).__name__}")
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise HarnessError(f"{path}: {_format_loc(first['loc'])}: {first['msg']}{more}") from None
