"""Results store: one folder per run, written atomically, never overwriting an earlier run.

Layout::

    <results root>/<suite>/<profile>/<run id>/
        results.json     the typed results document (harness.results)
        per_image.csv    method, column, dataset, image id, degradation, every metric
        table.tex  table.html  table.txt
    <results root>/<suite>/<profile>/LATEST   the id of the newest complete run
    <results root>/results.sqlite             what has been computed, from which inputs (resume)
    <results root>/models/<method key>.safetensors   trained weights, by the key of their inputs

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
import socket
import sqlite3
import subprocess
import time
from importlib import metadata

import pandas as pd

from harness import atomic
from harness.errors import HarnessError
from harness.results import strict_json


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


def versions() -> dict:
    """Versions of the libraries that decide a number (part of every cache key)."""
    return {p: _version(p) for p in ("torch", "numpy", "pyiqa", "scikit-image", "opencv-python-headless", "pillow")}


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
        self.write_text(name, strict_json(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")

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


def results_root_of(run_dir: pathlib.Path) -> pathlib.Path:
    """The results root a published run folder ``<root>/<suite>/<profile>/<run id>`` belongs to."""
    return pathlib.Path(run_dir).resolve().parents[2]


def load_versioned_json(path: pathlib.Path, version_key: str, version: int, missing: str) -> dict:
    """Read a JSON document we wrote, refusing a missing, broken or differently versioned file."""
    if path.is_dir():
        raise HarnessError(f"{path} is a directory; give the JSON file")
    if not path.is_file():
        raise HarnessError(missing)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not a text file (expected JSON)") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise HarnessError(f"{path}: expected a JSON object with '{version_key}', got a {type(doc).__name__}")
    if doc.get(version_key) != version:
        raise HarnessError(f"{path}: {version_key} {doc.get(version_key)!r} is not {version}")
    return doc


# --------------------------------------------------------------------------------------
# The results database: what has been computed, from which inputs, so runs resume.
# --------------------------------------------------------------------------------------

DB_FILE = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pid INTEGER,                     -- the process that ran it, to find runs that died
    host TEXT,
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


# The code that decides a number: models, data, training, evaluation, metrics, how rows become
# models. Reports, the CLI, the runner's orchestration and the store do not, so editing them
# keeps cached results valid. (Plug-in code is keyed per row: harness.methods.code_identity.)
RESULT_CODE = ("dacode", "baselines", "harness/data", "harness/train.py", "harness/memory.py",
               "harness/metrics.py", "harness/methods.py", "harness/evaluate.py", "harness/provider.py")


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


def check_results_root(root: pathlib.Path) -> None:
    """Refuse, before any compute and without creating anything, a results folder that cannot be
    written: a file, or a folder (or its nearest existing parent) without write permission."""
    root = pathlib.Path(root)
    if root.exists() and not root.is_dir():
        raise HarnessError(f"--results '{root}' is a file; give a folder for the results (it is created if absent)")
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise HarnessError(f"--results '{root}': '{existing}' is a file, so the folder cannot be created")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise HarnessError(f"the results folder '{existing}' is not writable; point --results elsewhere")
    db = root / DB_FILE
    if db.exists() and (not db.is_file() or not os.access(db, os.R_OK | os.W_OK)):
        raise HarnessError(f"'{db}' cannot be read and written; move it aside or point --results elsewhere")


class ResultsDB:
    """An SQLite database per results root, in WAL mode so two runs can write at once.

    Opening it checks, before any compute, that the root is writable and the database readable;
    a damaged file is named and left as it is (never deleted or rewritten). Runs that a dead
    process left ``running`` on this host are marked ``interrupted``."""

    def __init__(self, root: pathlib.Path):
        root = pathlib.Path(root)
        check_results_root(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"cannot create the results folder '{root}' ({exc.strerror or exc}); "
                               "point --results elsewhere") from None
        self.path = root / DB_FILE
        self.models_dir = root / "models"
        if self.path.exists() and not self.path.is_file():
            raise HarnessError(f"'{self.path}' is not a file; move it aside or point --results elsewhere")
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
            self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise HarnessError(
                f"the results database '{self.path}' is damaged ({exc}); it was left as it is. Move it aside "
                "(its cached results are then recomputed) or point --results elsewhere"
            ) from None
        self._mark_dead_runs()

    def _open(self) -> None:
        # Two processes opening a new database at once (torchrun ranks, parallel runs) can both
        # try to switch it to WAL; SQLite then answers "locked" without waiting, so retry.
        for attempt in range(50):
            try:
                self.conn.execute("PRAGMA busy_timeout=60000")
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.executescript(_SCHEMA)
                self.conn.execute("SELECT COUNT(*) FROM cells").fetchone()  # reads a page: finds damage now
                columns = {row[1] for row in self.conn.execute("PRAGMA table_info(runs)")}
                for name, kind in (("pid", "INTEGER"), ("host", "TEXT")):  # databases of earlier versions
                    if name not in columns:
                        self.conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1 + 0.05 * attempt)

    def _mark_dead_runs(self) -> None:
        host = socket.gethostname()
        rows = self.conn.execute("SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)).fetchall()
        for run_id, pid in rows:
            if pid and not _alive(int(pid)):
                self.conn.execute("UPDATE runs SET status = 'interrupted', finished_utc = ? WHERE run_id = ? "
                                  "AND status = 'running'", (_now(), run_id))

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
            "INSERT INTO runs (run_id, pid, host, suite, suite_sha256, profile, seed, status, started_utc, provenance, "
            "data) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
            (run_id, os.getpid(), socket.gethostname(), suite, suite_sha256, profile, seed, _now(),
             strict_json(provenance_doc), strict_json(data)),
        )

    def end_run(self, run_id: str, status: str, timings: dict | None = None) -> None:
        """Mark a run complete, failed or interrupted (its finished cells stay for a rerun)."""
        self.conn.execute(
            "UPDATE runs SET status = ?, finished_utc = ?, timings = ? WHERE run_id = ?",
            (status, _now(), strict_json(timings), run_id),
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
            (method_key, name, strict_json(doc), _now()),
        )

    def weights_path(self, method_key: str) -> pathlib.Path:
        return self.models_dir / f"{method_key}.safetensors"

    def training_checkpoint_path(self, method_key: str) -> pathlib.Path:
        return self.models_dir / f"{method_key}.training.pt"

    # cells --------------------------------------------------------------------------
    def cell(self, cell_key: str) -> list[dict] | None:
        row = self.conn.execute("SELECT per_image FROM cells WHERE cell_key = ?", (cell_key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_cell(self, cell_key: str, method_key: str, run_id: str, method: str, column_id: str, per_image: list[dict],
                 *, replace: bool = False) -> None:
        # OR IGNORE: a concurrent run that computed the same cell from the same inputs wins; same numbers.
        # ``replace`` (--recompute): the new numbers take the place of the cached ones.
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self.conn.execute(
            f"{verb} INTO cells (cell_key, method_key, run_id, method, column_id, per_image, created_utc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cell_key, method_key, run_id, method, column_id, strict_json(per_image), _now()),
        )

    def count_cells(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
