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
import time
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


def load_versioned_json(path: pathlib.Path, version_key: str, version: int, missing: str) -> dict:
    """Read a JSON document we wrote, refusing a missing, broken or differently versioned file."""
    if not path.is_file():
        raise HarnessError(missing)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc})") from None
    if doc.get(version_key) != version:
        raise HarnessError(f"{path}: {version_key} {doc.get(version_key)} is not {version}")
    return doc


def load_results(run_dir: pathlib.Path) -> dict:
    path = pathlib.Path(run_dir) / RESULTS_FILE
    return load_versioned_json(path, "schema_version", SCHEMA_VERSION,
                               f"'{run_dir}' is not a run folder (no {RESULTS_FILE})")


# --------------------------------------------------------------------------------------
# The results database: what has been computed, from which inputs, so runs resume.
# --------------------------------------------------------------------------------------

DB_FILE = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    suite_sha256 TEXT NOT NULL,
    profile TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,            -- running | complete | failed | interrupted
    started_utc TEXT NOT NULL,
    finished_utc TEXT,
    provenance TEXT NOT NULL,        -- JSON: git commit, package versions, device, threads
    data TEXT,                       -- JSON: data protocol, manifest hash, sources
    timings TEXT                     -- JSON
);
CREATE TABLE IF NOT EXISTS methods (
    method_key TEXT PRIMARY KEY,     -- hash of everything that determines the trained model
    name TEXT NOT NULL,
    doc TEXT NOT NULL,               -- JSON: constructor, params, training summary, checkpoint sha256
    created_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    cell_key TEXT PRIMARY KEY,       -- hash of the method key, the column and the metric protocols
    method_key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    method TEXT NOT NULL,
    column_id TEXT NOT NULL,
    per_image TEXT NOT NULL,         -- JSON list of {image_id, <metric>: value, ...}
    created_utc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cells_by_method ON cells(method_key);
"""


def stable_hash(obj) -> str:
    """sha256 of a JSON-serialisable object with sorted keys (the identity of an input)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


# The code that decides a number: models, data, training, metrics, evaluation. Reports,
# the CLI and the store do not, so editing them keeps cached results valid.
RESULT_CODE = ("dacode", "baselines", "harness/data", "harness/train.py", "harness/metrics.py",
               "harness/methods.py", "harness/runner.py")


def code_fingerprint() -> str:
    """sha256 over the source that decides a result; any edit there invalidates cached cells."""
    import harness

    top = pathlib.Path(harness.__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for rel in RESULT_CODE:
        target = top / rel
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in files:
            digest.update(str(path.relative_to(top)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ResultsDB:
    """An SQLite database per results root, in WAL mode so two runs can write at once."""

    def __init__(self, root: pathlib.Path):
        import sqlite3

        root = pathlib.Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / DB_FILE
        self.models_dir = root / "models"
        self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        # Two processes opening a new database at once (torchrun ranks, parallel runs) can both
        # try to switch it to WAL; SQLite then answers "locked" without waiting, so retry.
        for attempt in range(50):
            try:
                self.conn.execute("PRAGMA busy_timeout=60000")
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1 + 0.05 * attempt)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultsDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # runs ---------------------------------------------------------------------------
    def start_run(self, run_id: str, suite: str, suite_sha256: str, profile: str, seed: int,
                  provenance_doc: dict, data: dict) -> None:
        self.conn.execute(
            "INSERT INTO runs (run_id, suite, suite_sha256, profile, seed, status, started_utc, provenance, data) "
            "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
            (run_id, suite, suite_sha256, profile, seed, _now(), json.dumps(provenance_doc), json.dumps(data)),
        )

    def end_run(self, run_id: str, status: str, timings: dict | None = None) -> None:
        """Mark a run complete, failed or interrupted (its finished cells stay for a rerun)."""
        self.conn.execute(
            "UPDATE runs SET status = ?, finished_utc = ?, timings = ? WHERE run_id = ?",
            (status, _now(), json.dumps(timings), run_id),
        )

    def runs(self) -> list[dict]:
        cur = self.conn.execute("SELECT run_id, suite, profile, seed, status, started_utc, finished_utc FROM runs ORDER BY started_utc")
        keys = [d[0] for d in cur.description]
        return [dict(zip(keys, row)) for row in cur.fetchall()]

    # methods ------------------------------------------------------------------------
    def method_doc(self, method_key: str) -> dict | None:
        row = self.conn.execute("SELECT doc FROM methods WHERE method_key = ?", (method_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_method(self, method_key: str, name: str, doc: dict) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO methods (method_key, name, doc, created_utc) VALUES (?, ?, ?, ?)",
            (method_key, name, json.dumps(doc), _now()),
        )

    def weights_path(self, method_key: str) -> pathlib.Path:
        return self.models_dir / f"{method_key}.safetensors"

    def training_checkpoint_path(self, method_key: str) -> pathlib.Path:
        return self.models_dir / f"{method_key}.training.pt"

    # cells --------------------------------------------------------------------------
    def cell(self, cell_key: str) -> list[dict] | None:
        row = self.conn.execute("SELECT per_image FROM cells WHERE cell_key = ?", (cell_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_cell(self, cell_key: str, method_key: str, run_id: str, method: str, column_id: str, per_image: list[dict]) -> None:
        # OR IGNORE: a concurrent run that computed the same cell from the same inputs wins; same numbers.
        self.conn.execute(
            "INSERT OR IGNORE INTO cells (cell_key, method_key, run_id, method, column_id, per_image, created_utc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cell_key, method_key, run_id, method, column_id, json.dumps(per_image), _now()),
        )

    def count_cells(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
