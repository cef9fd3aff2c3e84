"""Downloads from the Hugging Face Hub, pinned to a commit and verified by sha256.

Copies on the Hub (docs/datasets.md#hugging-face-copies): CDD-11 ``gy65896/CDD-11`` (official: ``CDD-11_test.zip``
3.77 GB, ``CDD-11_train.zip`` 22.4 GB); CBSD68 ``deepinv/CBSD68`` (third party, webdataset
tar.gz, 19.7 MB); LOL-v1 ``laxury/LLIE-LoL-v1`` (third party, ``Test/{input,target}``, 15
PNGs). No verified copy exists of SOTS-outdoor, Rain100L (test or train), GoPro, RESIDE-OTS
or BSD400/WED: for those the error says where the set is published.

Pinning: ``huggingface_hub.snapshot_download`` is called with a 40-hex commit (never a
branch), so the files cannot move under a run. **No commit or sha256 is bundled below yet** —
they could not be read from the Hub where this was written — so the first download needs
``--revision <commit>`` (see the repository's "Files and versions" history) and is *trust on
first use*: nothing checks its bytes against a known value. It records the commit and the
sha256 of every downloaded file in ``<dest>/<id>/dacode-bench-download.json`` and in the data
root's manifest (``<dest>/dacode-bench-manifest.json``, key ``downloads``). Later downloads into
the same place, and downloads on another machine whose data root holds a copy of that
manifest, are verified against those hashes (and default to that commit). Fill ``revision``
and ``sha256`` below from such a record to pin them for everyone.

After verification, archives are unpacked and the dataset's folders are located inside, and
``<dest>/dacode-bench-data.yaml`` maps the id to them, so ``--data-root <dest>`` finds them.
"""
from __future__ import annotations

import fnmatch
import json
import pathlib
import re
import shutil
import tarfile
import zipfile
from dataclasses import dataclass, field

from harness import atomic
from harness.data import catalog, config
from harness.data import manifest as manifests
from harness.data.catalog import CDD11_CLEAR, CDD11_TYPES
from harness.data.check import list_images
from harness.data.errors import ChecksumError, DownloadError, NoPublicCopyError
from harness.data.manifest import file_sha256

COMMIT = re.compile(r"^[0-9a-f]{40}$")
RECORD_NAME = "dacode-bench-download.json"


@dataclass(frozen=True)
class HubSource:
    repo_id: str
    allow_patterns: tuple[str, ...]
    official: bool
    note: str
    revision: str | None = None  # the pinned commit (None: pass --revision)
    sha256: dict[str, str] = field(default_factory=dict)  # file in the repo → sha256


HUB_SOURCES: dict[str, HubSource] = {
    "cdd11": HubSource("gy65896/CDD-11", ("CDD-11_test.zip",), True,
                       "OneRestore's official copy (docs/datasets.md#hugging-face-copies)"),
    "cdd11_train": HubSource("gy65896/CDD-11", ("CDD-11_train.zip",), True,
                             "OneRestore's official copy, 22.4 GB (docs/datasets.md#hugging-face-copies)"),
    "bsd68": HubSource("deepinv/CBSD68", ("*.tar.gz", "*.tar", "*.png"), False,
                       "third-party webdataset copy (docs/datasets.md#hugging-face-copies); file layout unverified"),
    "lol_v1": HubSource("laxury/LLIE-LoL-v1", ("Test/*",), False,
                        "third-party copy with Test/{input,target} (docs/datasets.md#hugging-face-copies)"),
}


def _snapshot_download(**kwargs) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(**kwargs)


def _extract(archive: pathlib.Path, dest: pathlib.Path) -> None:
    """Unpack a zip or tar archive, refusing members that would land outside ``dest``."""
    dest = dest.resolve()

    def safe(name: str) -> None:
        target = (dest / name).resolve()
        if dest != target and dest not in target.parents:
            raise DownloadError(f"{archive}: member '{name}' would be written outside {dest}; not extracting")

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                safe(name)
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.isfile() or m.isdir()]
            for m in members:
                safe(m.name)
            if hasattr(tarfile, "data_filter"):  # Python ≥ 3.11.4: also refuses links and odd modes
                tf.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover
                tf.extractall(dest, members=members)
    else:
        raise DownloadError(f"{archive}: not a zip or tar archive")


def _locate(dataset_id: str, root: pathlib.Path) -> dict[str, str]:
    """The dataset's role folders inside an unpacked download (as config entries)."""
    info = catalog.get(dataset_id)
    dirs = sorted([root, *(p for p in root.rglob("*") if p.is_dir())], key=lambda p: len(p.parts))
    if info.kind_spec.grouped:
        for d in dirs:
            if (d / CDD11_CLEAR).is_dir() and any((d / t).is_dir() for t in CDD11_TYPES):
                return {"root": str(d)}
    elif info.kind_spec.synthesised_input:
        with_images = [(len(list_images(d)), d) for d in dirs if any(p.is_file() for p in d.iterdir())]
        direct = [(n, d) for n, d in with_images if n and all(p.parent == d for p in list_images(d))]
        if direct:
            return {"clean": str(max(direct, key=lambda t: t[0])[1])}
    else:
        for d in dirs:
            for inp, tgt in (("input", "target"), ("low", "high"), ("low", "gt")):
                if (d / inp).is_dir() and (d / tgt).is_dir():
                    return {"input": str(d / inp), "target": str(d / tgt)}
    raise DownloadError(f"downloaded {dataset_id} into {root} but cannot find its folders there; map them by hand "
                        f"in {config.CONFIG_NAME}")


def _update_config(dest: pathlib.Path, dataset_id: str, roles: dict[str, str]) -> pathlib.Path:
    import yaml

    path = dest / config.CONFIG_NAME
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    doc = doc or {}
    doc.setdefault("roots", ["."])
    doc.setdefault("datasets", {})
    doc["datasets"][dataset_id] = {role: str(pathlib.Path(p).resolve().relative_to(dest.resolve())) for role, p in roles.items()}
    atomic.write_text(path, "# written by `dacode-bench data download`; edit freely\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


def download(
    dataset_id: str,
    dest: str | pathlib.Path,
    *,
    revision: str | None = None,
    cache_dir: str | pathlib.Path | None = None,
    offline: bool = False,
    token: str | None = None,
    log=print,
) -> dict:
    """Download one dataset's public copy into ``dest/<id>/``, verify it, unpack it, map it.

    Returns the download record (repo, commit, files with sha256, the located folders).
    ``offline``: use only what is already in the Hugging Face cache (``cache_dir``).
    """
    info = catalog.get(dataset_id)
    source = HUB_SOURCES.get(dataset_id)
    if source is None:
        raise NoPublicCopyError(
            f"no verified public copy of {info.title} ('{dataset_id}') is known on the Hugging Face Hub; it is "
            f"published at {info.published_at}. Download it from there and map it with --data-root or "
            f"{config.CONFIG_NAME} (`dacode-bench data list` shows the folders each layout expects)"
        )
    dest = pathlib.Path(dest).expanduser().resolve()
    if dest.exists() and not dest.is_dir():
        raise DownloadError(f"--dest '{dest}' is a file; give the data root folder to download into")
    seen = manifests.recorded_download(dest / config.MANIFEST_NAME, dataset_id)  # another machine's first download
    commit = revision or source.revision or (seen or {}).get("revision")
    if commit is None:
        raise DownloadError(
            f"no pinned revision of {source.repo_id} is bundled; pass --revision <40-hex commit> "
            f"(https://huggingface.co/datasets/{source.repo_id}/commits/main) — a branch name is not a pin"
        )
    if not COMMIT.fullmatch(commit):
        raise DownloadError(f"--revision '{commit}' is not a 40-hex commit id; a branch or tag can move, pin a commit")
    target = dest / dataset_id
    record_path = target / RECORD_NAME
    try:
        previous = json.loads(record_path.read_text()) if record_path.is_file() else None
    except (OSError, json.JSONDecodeError) as exc:
        raise DownloadError(f"{record_path} is damaged ({exc}); remove {target} and download again") from None
    if previous and previous.get("revision") != commit:
        raise DownloadError(f"{target} holds {source.repo_id} at {previous.get('revision')}, not {commit}; "
                            "download into another --dest or remove it")
    log(f"downloading {source.repo_id} @ {commit[:12]} ({', '.join(source.allow_patterns)}) — {source.note}")
    try:
        snapshot = pathlib.Path(_snapshot_download(
            repo_id=source.repo_id, repo_type="dataset", revision=commit, allow_patterns=list(source.allow_patterns),
            cache_dir=None if cache_dir is None else str(cache_dir), local_files_only=offline, token=token,
        ))
    except Exception as exc:  # huggingface_hub raises many types; all mean "not obtained"
        raise DownloadError(
            f"could not obtain {source.repo_id} at {commit}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            + (" (offline: only the local cache was searched)" if offline else "")
        ) from None
    # the snapshot folder may hold files fetched earlier for other patterns: keep this source's
    files = sorted(p for p in snapshot.rglob("*") if p.is_file() and ".cache" not in p.relative_to(snapshot).parts
                   and any(fnmatch.fnmatch(p.relative_to(snapshot).as_posix(), pat) for pat in source.allow_patterns))
    if not files:
        raise DownloadError(f"{source.repo_id} at {commit} has no files matching {', '.join(source.allow_patterns)}")
    if seen and seen.get("revision") != commit:
        raise DownloadError(f"{dest / config.MANIFEST_NAME} records {source.repo_id} at {seen.get('revision')}, not "
                            f"{commit}; pass that --revision, or remove its downloads.{dataset_id} entry")
    pinned = {**(seen or {}).get("files", {}), **(previous or {}).get("files", {}), **source.sha256}
    sums: dict[str, str] = {}
    for path in files:
        name = path.relative_to(snapshot).as_posix()
        digest = file_sha256(path)
        expected = pinned.get(name)
        if expected is not None and digest != expected:
            raise ChecksumError(f"{source.repo_id}@{commit[:12]}/{name}: sha256 {digest} differs from the pinned "
                                f"{expected}; the download is corrupt or the pin is wrong — nothing was unpacked")
        sums[name] = digest
    unpinned = [n for n in sums if n not in pinned]
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        name = path.relative_to(snapshot).as_posix()
        if zipfile.is_zipfile(path) or tarfile.is_tarfile(path):
            _extract(path, target / "files")
        else:
            out = target / "files" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
    roles = _locate(dataset_id, target / "files")
    record = {"dataset": dataset_id, "repo_id": source.repo_id, "repo_type": "dataset", "revision": commit,
              "files": sums, "folders": roles}
    atomic.write_text(record_path, json.dumps(record, indent=1) + "\n")
    manifest_path = manifests.record_download(dest / config.MANIFEST_NAME, dataset_id, record)
    config_path = _update_config(dest, dataset_id, roles)
    if unpinned:
        log(f"trust on first use: no known sha256 to check {', '.join(unpinned)} against; recorded what was "
            f"downloaded ({', '.join(f'{n} {sums[n]}' for n in unpinned)}) in {record_path} and {manifest_path} — "
            "copy that manifest to another machine's data root and its download is verified against it")
    else:
        log("verified: every file's sha256 matches the pinned or recorded value")
    log(f"{info.title} is in {target}; mapped in {config_path} (use --data-root {dest})")
    return record
