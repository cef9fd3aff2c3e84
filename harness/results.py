"""The results document of one run (``results.json``): its schema, and the one place that writes and reads it.

Every reader — the gate, ``compare``, ``report``, the figures and the HTML page — works on a
:class:`RunResults`, never on raw keys. A file that does not validate is refused with a message
naming the first key that is missing or wrong; a file of another schema version is refused
with the version it has and the one this code reads.

The suite that ran is stored whole (``suite_document``, validated again on read), so a table
is always drawn from the rows and columns of the file the user ran — a copy with another name
or edited printed rows included — never from an installed suite looked up by name.

The schema (version 2, ``docs/results-schema.md`` has the field-by-field description):

- identity: ``run_id``, ``suite`` (its ``name``), ``suite_sha256`` (of the canonical JSON of the
  resolved suite), ``suite_file``, ``suite_document``, ``profile``, ``seed``;
- what the table shows: ``metrics`` (protocol names), ``columns``, ``methods`` (one
  :class:`MethodResult` per row), ``cells`` (method → column → :class:`Cell`), ``averages``;
- how the numbers were made: ``train``, ``inference``, ``data``, ``provenance``, ``timings``,
  ``notes`` (what happened during the run that a reader must know, e.g. an out-of-memory retry);
- the evidence: ``per_image`` (one :class:`ImageScore` per image, column, method and noise seed).

Numbers that do not exist (a loss that was never computed) are ``null``: the file is strict JSON.
"""
from __future__ import annotations

import json
import math
import pathlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import HarnessError
from harness.suite import Column, Layout, ReportedRow, Suite

SCHEMA_VERSION = 2
RESULTS_FILE = "results.json"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainSummary(_Doc):
    steps: int
    final_loss: float | None = None
    images_per_second: float | None = None
    seconds: float | None = None
    resumed_from_step: int | None = None
    micro_batch: int | None = None
    notes: list[str] = Field(default_factory=list)


class MethodResult(_Doc):
    """One table row: where its restored images came from and how its model was made."""

    name: str
    model: str | None = None
    build: str | None = None
    outputs: str | None = None
    citation: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    params: int | None = None
    params_display: str = "-"
    train: TrainSummary | None = None
    method_key: str | None = None
    code: dict[str, Any] = Field(default_factory=dict)  # what the cache key knew of the row's code
    records_codebook: bool = False  # the model can record its codebook activations (figures)
    stochastic: bool = False  # outputs depend on a seeded noise draw (per image, recorded in per_image)
    noise_seeds: int = 1


class Cell(_Doc):
    """A (method, column) cell: the column mean of every metric (mean over noise seeds when K > 1)."""

    n_images: int
    values: dict[str, float | None]
    spread: dict[str, float | None] | None = None  # standard deviation over the K noise seeds' column means
    n_seeds: int = 1


class ImageScore(_Doc):
    method: str
    column: str
    dataset: str
    task: str
    sigma: float | None = None
    image_id: str
    noise_seed: int | None = None  # stochastic models: which of the K draws
    values: dict[str, float]


class RunResults(_Doc):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    suite: str
    suite_sha256: str
    suite_file: str | None = None
    suite_document: dict[str, Any]
    title: str
    source: str
    caption: str
    profile: str
    profile_label: str
    comparable_with_paper: bool
    seed: int
    metrics: list[str]
    show_params: bool = True
    layout: Layout = Field(default_factory=Layout)
    columns: list[Column]
    train: dict[str, Any] = Field(default_factory=dict)
    inference: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    methods: list[MethodResult]
    cells: dict[str, dict[str, Cell]]
    averages: dict[str, dict[str, float | None]]
    notes: list[str] = Field(default_factory=list)
    provenance: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, Any] | None = None
    per_image: list[ImageScore] = Field(default_factory=list)
    compared_runs: list[str] | None = None

    # -- views ------------------------------------------------------------------------------------
    def suite_model(self) -> Suite:
        """The suite that ran, as it was (validated again)."""
        try:
            return Suite.model_validate(self.suite_document)
        except ValidationError as exc:
            raise HarnessError(f"run {self.run_id}: its stored suite no longer validates ({_first_error(exc)})") from None

    @property
    def reported(self) -> list[ReportedRow]:
        """The rows the suite that ran prints from the paper."""
        return list(self.suite_model().reported)

    def method(self, name: str) -> MethodResult | None:
        return next((m for m in self.methods if m.name == name), None)

    def cell_value(self, method: str, column: str, metric: str) -> float | None:
        cell = self.cells.get(method, {}).get(column)
        return None if cell is None else cell.values.get(metric)

    def per_image_records(self) -> list[dict[str, Any]]:
        """Flat rows (one per image score) for per_image.csv and pandas."""
        rows = []
        for s in self.per_image:
            row = s.model_dump(exclude={"values"})
            row.update(s.values)
            rows.append(row)
        return rows


# -- writing and reading ----------------------------------------------------------------------


def _finite_or_none(obj):
    """NaN and ±Inf become None, so the document is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def dumps(doc: RunResults) -> str:
    data = _finite_or_none(doc.model_dump(mode="json"))
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def strict_json(obj: Any, **kw) -> str:
    """``json.dumps`` that writes null for NaN/Inf instead of the non-JSON ``NaN``."""
    return json.dumps(_finite_or_none(obj), allow_nan=False, **kw)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {first['msg']}{more}"


def from_mapping(raw: Any, where: str) -> RunResults:
    """Validate a parsed document; ``where`` names it in the error message."""
    if not isinstance(raw, dict):
        raise HarnessError(f"{where}: a results document is a JSON object, not {type(raw).__name__}")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise HarnessError(
            f"{where}: schema_version {version!r} is not {SCHEMA_VERSION}, the version this dacode-bench reads "
            "(rerun the suite with this version to get a current document)"
        )
    try:
        return RunResults.model_validate(raw)
    except ValidationError as exc:
        raise HarnessError(f"{where}: not a valid results document: {_first_error(exc)}") from None


def load(path: str | pathlib.Path) -> RunResults:
    """Read ``results.json`` (or the one inside a run folder)."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise HarnessError(f"'{path.parent}' is not a run folder (no {RESULTS_FILE})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not a text file; expected a results.json written by dacode-bench") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc})") from None
    return from_mapping(raw, str(path))


def find_run(path: str | pathlib.Path) -> pathlib.Path:
    """The run folder meant by ``path``: a run folder, its results.json, or a folder with a LATEST pointer
    (``<root>/<suite>/<profile>``). Every command that takes a RUN argument resolves it here."""
    path = pathlib.Path(path)
    if path.is_file() and path.name == RESULTS_FILE:
        path = path.parent
    pointer = path / "LATEST"
    if pointer.is_file():
        target = path / pointer.read_text(encoding="utf-8", errors="replace").strip()
        if not (target / RESULTS_FILE).is_file():
            raise HarnessError(f"{pointer} names run '{target.name}', which has no {RESULTS_FILE}")
        path = target
    if not path.exists():
        raise HarnessError(f"'{path}' does not exist; give a run folder, its results.json or a folder with LATEST")
    if not (path / RESULTS_FILE).is_file():
        raise HarnessError(f"'{path}' is not a run folder (no {RESULTS_FILE}, no LATEST pointer)")
    return path


def load_run(path: str | pathlib.Path) -> RunResults:
    """``find_run`` then ``load``."""
    return load(find_run(path))
