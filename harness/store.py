"""Results store: one folder per run, written atomically, never overwriting an earlier run.

Layout::

    <results root>/<suite>/<profile>/<run id>/
        results.json     provenance, per-cell means, per-image metrics (schema below)
        per_image.csv    method, column, dataset, image id, degradation, every metric
        table.tex  table.html  table.txt
    <results root>/<suite>/<profile>/LATEST   the id of the newest complete run

A run is assembled in a hidden staging folder and renamed into place only when every
artefact is written, so an interrupted run leaves no half-written output behind.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import pathlib
import platform
import shutil
import subprocess
from importlib import metadata

import pandas as pd

from harness import atomic
from harness.errors import HarnessError

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"


def new_run_id(suite_hash: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{suite_hash[:8]}-{os.getpid()}"


def file_sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=pathlib.Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def provenance() -> dict:
    import torch

    return {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in ("dacode-bench", "torch", "pyiqa", "numpy", "scikit-image", "opencv-python-headless", "pillow")},
        "device": "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
    }


class RunWriter:
    """Stage a run's artefacts, then publish them all at once."""

    def __init__(self, root: pathlib.Path, suite: str, profile: str, run_id: str):
        self.base = pathlib.Path(root) / suite / profile
        self.run_id = run_id
        self.final = self.base / run_id
        self.staging = self.base / f".{run_id}.partial"
        if self.final.exists():
            raise HarnessError(f"results folder '{self.final}' already exists; refusing to overwrite it")

    def __enter__(self) -> "RunWriter":
        self.staging.mkdir(parents=True, exist_ok=False)
        return self

    def write_text(self, name: str, text: str) -> None:
        atomic.write_text(self.staging / name, text)

    def write_json(self, name: str, obj: dict) -> None:
        self.write_text(name, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")

    def write_csv(self, name: str, frame: pd.DataFrame) -> None:
        self.write_text(name, frame.to_csv(index=False))

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        os.replace(self.staging, self.final)
        atomic.write_text(self.base / "LATEST", self.run_id + "\n")


def latest_run(root: pathlib.Path, suite: str, profile: str) -> pathlib.Path:
    base = pathlib.Path(root) / suite / profile
    pointer = base / "LATEST"
    if not pointer.is_file():
        raise HarnessError(f"no complete run of suite '{suite}' profile '{profile}' under '{root}'")
    return base / pointer.read_text().strip()


def load_results(run_dir: pathlib.Path) -> dict:
    path = pathlib.Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise HarnessError(f"'{run_dir}' is not a run folder (no {RESULTS_FILE})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc})") from None
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise HarnessError(f"{path}: schema_version {doc.get('schema_version')} is not {SCHEMA_VERSION}")
    return doc
