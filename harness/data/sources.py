"""One entry point from the runner into the data layer: ``prepare(suite, profile, ...)``.

It validates the data before any compute is spent and returns the test sets (one per
column, in column order), the training patch sampler and what to record about the data.

Order of work for the paper profile (every step before any training):

1. validate the columns against the catalogue (``harness.data.catalog``), both profiles;
2. resolve ``--data-root`` (a layout folder or a ``dacode-bench-data.yaml``);
3. phase 1: every folder of every needed test and training set exists and holds images —
   else :class:`DataMissingError` naming each missing folder and where its set is published;
4. phase 2: pairing, counts, image headers (size, mode, readability) — else
   :class:`DataIntegrityError` carrying the ``data check`` report;
5. the manifest: file names and sizes against ``dacode-bench-manifest.json`` when present;
6. the test sets are read (sha256 of every test file checked or recorded) and cropped;
7. the training mixture (``harness.data.training``).
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Callable

from harness.data import PatchSampler, TestSet, catalog, config
from harness.data import check as checks
from harness.data import manifest as manifests
from harness.data.catalog import ColumnData
from harness.data.check import raise_if_bad, warn_about  # noqa: F401  (re-exported for scripts)
from harness.data.degradations import check_legacy_sigma
from harness.data.errors import DataIntegrityError


@dataclass
class PreparedData:
    test_sets: list[TestSet]
    sampler: PatchSampler
    label: str  # shown on every artefact (the mini profile's "not comparable" label)
    provenance: dict = field(default_factory=dict)  # crop policy, noise mode, manifest hash, ...


def protocol_of(suite) -> tuple[int | None, str]:
    data = getattr(suite, "data", None)
    return getattr(data, "crop_multiple", 16), getattr(data, "noise", "per_image")


def validate_columns(suite) -> list[ColumnData]:
    columns = [catalog.column_data(c) for c in suite.columns]
    _, noise = protocol_of(suite)
    if noise == "legacy_stream":
        for c in columns:
            if c.task == "denoise":
                check_legacy_sigma(c.column_id, c.sigma)
    return columns


def largest_patch(suite, profile: str) -> int | None:
    """The largest training patch any row of this profile uses (rows may override the profile's)."""
    if profile not in suite.profiles:
        return None
    sizes = [suite.profiles[profile].train.patch_size]
    for m in suite.methods:
        override = (getattr(m, "train", None) or {}).get(profile, {})
        if isinstance(override, dict) and override.get("patch_size"):
            sizes.append(int(override["patch_size"]))
    return max(sizes)


def needs_training(suite) -> bool:
    """False when every row loads a checkpoint or scores an outputs folder."""
    return any(not (m.outputs or m.checkpoint) for m in suite.methods)


def plan(columns: list[ColumnData], with_training: bool, train_sigmas=None) -> list[tuple[str, tuple[str, ...] | None]]:
    """The (dataset id, CDD-11 types) to check: test sets, then training sets."""
    from harness.data.training import mixture_for

    wanted: dict[str, list[str]] = {}
    for c in columns:
        wanted.setdefault(c.dataset_id, [])
        if c.parts and c.parts not in wanted[c.dataset_id]:
            wanted[c.dataset_id].append(c.parts)
    if with_training:
        for part in mixture_for(columns, train_sigmas):
            wanted.setdefault(part.dataset_id, [])
            if part.parts and part.parts not in wanted[part.dataset_id]:
                wanted[part.dataset_id].append(part.parts)
    return [(i, tuple(g) or None) for i, g in wanted.items()]


def structure(sources: config.DataSources, wanted) -> list[checks.DatasetCheck]:
    """Phase 1 for every wanted dataset; raise DataMissingError naming every missing/empty folder."""
    found = [checks.start(sources.locate(i), groups) for i, groups in wanted]
    checks.raise_if_missing(found, sources)
    return found


def prepare(
    suite,
    profile: str,
    data_root: pathlib.Path | None,
    seed: int,
    *,
    train_sigmas: tuple[float, ...] | None = None,
    need_training: bool | None = None,
    images: str = "headers",
    jobs: int = 4,
) -> PreparedData:
    """Test sets, training sampler, label and provenance for one run.

    ``train_sigmas``: noise levels of the denoising training sources (default: the suite's
    denoise columns' σ; see ``harness.data.training.mixture_for``). ``need_training``: set
    False to skip the training sets (default: needed unless every row loads a checkpoint or
    scores outputs). ``images``: how deeply phase 2 inspects the files ('headers' or 'full').
    """
    columns = validate_columns(suite)
    if need_training is None:
        need_training = needs_training(suite)
    source = suite.profile(profile).data_source
    return DATA_SOURCES[source](suite, profile, columns, data_root, seed, train_sigmas=train_sigmas,
                                need_training=need_training, images=images, jobs=jobs)


def _prepare_mini(suite, profile, columns: list[ColumnData], data_root, seed: int, **_) -> PreparedData:
    import hashlib

    from harness.data import mini as mini_data
    from harness.data.paper import crop_note

    crop_multiple, noise = protocol_of(suite)
    test_sets = [mini_data.test_set(c.column_id, c.dataset_id, c.task, c.sigma, seed=seed, parts=c.parts, noise=noise,
                                    crop_multiple=crop_multiple) for c in columns]
    entries = {ts.column_id: {p.image_id: {"degraded": hashlib.sha256(p.degraded.tobytes()).hexdigest(),
                                           "clean": hashlib.sha256(p.clean.tobytes()).hexdigest()}
                              for p in ts.pairs} for ts in test_sets}
    provenance = {
        "source": "bundled scikit-image images, synthetic degradations",
        "crop": crop_note(crop_multiple),
        "noise": noise,
        "manifest_sha256": manifests.digest(entries),
        "manifest_source": "generated: sha256 of every generated test image",
        "training": "uniform over the columns' degradations of 13 bundled images (mini)",
    }
    sampler = mini_data.MiniPatchSampler([(c.task, c.sigma, c.parts) for c in columns])
    return PreparedData(test_sets, sampler, mini_data.LABEL, provenance)


def _prepare_benchmark(suite, profile, columns, data_root, seed, *, train_sigmas, need_training, images,
                       jobs) -> PreparedData:
    from harness.data import paper
    from harness.data.training import MixtureSampler, NoTrainingData, TrainSource, mixture_for

    crop_multiple, noise = protocol_of(suite)
    sources = config.resolve(data_root)
    wanted = plan(columns, need_training, train_sigmas)
    found = structure(sources, wanted)
    patch = largest_patch(suite, profile)
    for c in found:
        checks.complete(c, images=images, crop_multiple=crop_multiple, min_size=patch,
                        counts_policy=sources.counts, jobs=jobs)
    raise_if_bad(found, sources)
    notes = warn_about(found)
    by_id = {c.info.id: c for c in found}

    # manifest: names and sizes now (cheap), test-file sha256 once the files are read
    saved = manifests.load(sources.manifest_path) if sources.manifest_path else None
    entries: dict[str, dict[str, dict]] = {}
    from_file: set[str] = set()
    problems: list[str] = []
    for c in found:
        recorded = (saved or {}).get("datasets", {}).get(c.info.id)
        if recorded is not None:
            files = manifests.restrict(recorded.get("files", {}), c)
            problems += [f"{c.info.id}: {p}" for p in manifests.compare_listing(files, c)]
            entries[c.info.id] = files
            from_file.add(c.info.id)
        else:
            entries[c.info.id] = manifests.entries_for(c, hashes=False, jobs=jobs)
    if problems:
        raise DataIntegrityError(
            f"the data differ from the manifest {sources.manifest_path}; nothing was trained:\n  " + "\n  ".join(problems)
            + "\nif the change is intended, rerun `dacode-bench data manifest`"
        )

    files, legacy = paper.TestFiles(), {}
    test_sets = [paper.build_test_set(by_id[c.dataset_id], c, crop_multiple=crop_multiple, noise=noise, seed=seed,
                                      files=files, legacy_cache=legacy) for c in columns]
    changed = []
    for c in dict.fromkeys(col.dataset_id for col in columns):
        check = by_id[c]
        for path, sha in files.sha256.items():
            try:
                key = manifests.file_key(check, path)
            except ValueError:
                continue
            entry = entries[c].setdefault(key, {"bytes": path.stat().st_size})
            if c in from_file and entry.get("sha256") not in (None, sha):
                changed.append(f"{c}: {key}")
            entry["sha256"] = sha
    if changed:
        raise DataIntegrityError(
            f"{len(changed)} test file(s) changed since the manifest {sources.manifest_path} was written "
            f"(sha256 differs), e.g. {', '.join(changed[:3])}; nothing was trained. If intended, rerun "
            "`dacode-bench data manifest`"
        )

    if need_training:
        mixture = mixture_for(columns, train_sigmas)
        sampler = MixtureSampler([TrainSource(part, by_id[part.dataset_id].items[part.parts or ""]) for part in mixture])
        training = sampler.describe()
    else:
        sampler, training = NoTrainingData(), "none (every row loads a checkpoint or scores outputs)"

    subset = [c for c in found if c.info.split == "test" and c.info.count_verified and any(
        c.count(g) != c.info.expected_count for g in c.groups)]
    label = suite.profiles[profile].description if profile in suite.profiles else profile
    if subset:
        label += f" — subset: {', '.join(c.info.id for c in subset)} differ from the published counts"
    provenance = {
        "source": sources.description,
        "datasets": {c.info.id: {"from": c.folders.origin, "count": sum(c.count(g) for g in c.groups),
                                 **({"types": list(c.groups)} if c.info.kind_spec.grouped else {})} for c in found},
        "crop": paper.crop_note(crop_multiple),
        "noise": noise,
        "counts": sources.counts,
        "manifest_sha256": manifests.digest(entries),
        "manifest_source": (
            f"file {sources.manifest_path} (names and sizes of every file, sha256 of every test file verified)"
            if len(from_file) == len(found) else
            "computed at run time: sha256 of every test file, name and size of training files"
            + (f" (from the manifest file: {', '.join(sorted(from_file))})" if from_file else "")
            + "; `dacode-bench data manifest` writes a full one"
        ),
        "training": training,
        "warnings": notes,
    }
    return PreparedData(test_sets, sampler, label, provenance)


# Where a profile's images come from (``Profile.data_source``): one entry per source.
DATA_SOURCES: dict[str, Callable[..., PreparedData]] = {
    "mini": _prepare_mini,
    "benchmark": _prepare_benchmark,
}

