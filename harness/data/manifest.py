"""Manifests: a sha256 per data file, and the one hash a run records.

``dacode-bench data manifest SUITE`` writes ``dacode-bench-manifest.json``::

    {"format": "dacode-bench-manifest/1",
     "datasets": {"rain100l": {"origin": "layout promptir under /data",
                               "files": {"input/1.png": {"sha256": "…", "bytes": 81234}, …}}, …}}

File keys are relative to the dataset's role folders (``input/``, ``target/``, ``clean/``;
``clean/<folder name>/`` when a role has several folders; CDD-11: ``<type>/x.png`` and
``clear/x.png``), so the same files give the same manifest in any layout and on any machine.

Each run records ``manifest_sha256``: the sha256 of the canonical JSON of the entries it
used (CDD-11 restricted to ``clear/`` and the types the suite uses). With a manifest file, a
run checks names and sizes of every file and the sha256 of every test file (read anyway),
and refuses data that changed. Without one, the run computes the entries itself: sha256 for
the test files, name and size only for the training files (``manifest_source`` says which).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import pathlib
from concurrent.futures import ThreadPoolExecutor

from harness import atomic
from harness.data.check import DatasetCheck
from harness.data.errors import DataIntegrityError

FORMAT = "dacode-bench-manifest/1"
_CHUNK = 1 << 20


def file_sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_key(check: DatasetCheck, path: pathlib.Path) -> str:
    """The manifest key of one of the dataset's files (layout-independent, see the module doc)."""
    for role in ("root", "clean", "input", "target"):
        folders = check.folders.roles.get(role, [])
        for folder in folders:
            try:
                rel = path.relative_to(folder).as_posix()
            except ValueError:
                continue
            if role == "root":
                return rel
            return f"{role}/{folder.name}/{rel}" if len(folders) > 1 else f"{role}/{rel}"
    raise ValueError(f"{path} is not under the folders of {check.info.id}")


def entries_for(check: DatasetCheck, *, hashes: bool, jobs: int = 4) -> dict[str, dict]:
    """{key: {"sha256": …, "bytes": …}} for the dataset's files; sha256 None when ``hashes`` is False."""
    files = check.files

    def one(path: pathlib.Path) -> tuple[str, dict]:
        return file_key(check, path), {"sha256": file_sha256(path) if hashes else None, "bytes": path.stat().st_size}

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(sorted(pool.map(one, files)))


def restrict(files: dict[str, dict], check: DatasetCheck) -> dict[str, dict]:
    """CDD-11: only ``clear/`` and the checked types; other sets: unchanged."""
    if check.info.kind != "cdd11":
        return dict(files)
    keep = {"clear", *check.groups}
    return {k: v for k, v in files.items() if k.split("/", 1)[0] in keep}


def digest(datasets: dict[str, dict[str, dict]]) -> str:
    """sha256 of the canonical JSON of {dataset id: {file key: entry}}."""
    text = json.dumps({"format": FORMAT, "datasets": datasets}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build(checks: list[DatasetCheck], jobs: int = 4) -> dict:
    datasets = {c.info.id: {"origin": c.folders.origin, "files": entries_for(c, hashes=True, jobs=jobs)} for c in checks}
    return {
        "format": FORMAT,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": digest({k: v["files"] for k, v in datasets.items()}),
        "datasets": datasets,
    }


def write(path: pathlib.Path, doc: dict) -> pathlib.Path:
    return atomic.write_text(path, json.dumps(doc, indent=1, sort_keys=False) + "\n")


def load(path: pathlib.Path) -> dict | None:
    """The manifest at ``path``; None when there is none. A damaged file is an error, not ignored."""
    path = pathlib.Path(path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataIntegrityError(f"manifest '{path}' cannot be read ({exc}); rerun `dacode-bench data manifest`") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("datasets"), dict):
        raise DataIntegrityError(f"manifest '{path}' is not a {FORMAT} file; rerun `dacode-bench data manifest`")
    return doc


def compare_listing(recorded: dict[str, dict], check: DatasetCheck) -> list[str]:
    """Problems between a manifest's entries and the files on disk, by name and size (no hashing)."""
    problems = []
    on_disk = {file_key(check, p): p for p in check.files}
    missing = sorted(set(recorded) - set(on_disk))
    extra = sorted(set(on_disk) - set(recorded))
    if missing:
        problems.append(f"{len(missing)} file(s) listed in the manifest are gone, e.g. {', '.join(missing[:3])}")
    if extra:
        problems.append(f"{len(extra)} file(s) are not in the manifest, e.g. {', '.join(extra[:3])}")
    resized = [k for k in sorted(set(recorded) & set(on_disk)) if recorded[k].get("bytes") != on_disk[k].stat().st_size]
    if resized:
        problems.append(f"{len(resized)} file(s) changed size since the manifest, e.g. {', '.join(resized[:3])}")
    return problems


def record_download(path: pathlib.Path, dataset_id: str, record: dict) -> pathlib.Path:
    """Keep what a Hub download saw (repository, commit, sha256 of every file) in the data root's
    manifest, so another machine given this file downloads against these hashes instead of
    trusting its own first download."""
    doc = load(path) or {"format": FORMAT, "datasets": {}}
    doc.setdefault("downloads", {})[dataset_id] = {k: record[k] for k in ("repo_id", "revision", "files")}
    return write(path, doc)


def recorded_download(path: pathlib.Path, dataset_id: str) -> dict | None:
    return ((load(path) or {}).get("downloads") or {}).get(dataset_id)

