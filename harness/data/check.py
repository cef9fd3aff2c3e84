"""Validate a dataset's folders: structure, pairing, counts and the images themselves.

``start`` (phase 1: folders present and non-empty) and ``complete`` (phase 2: listing,
pairing, counts, images) collect everything wrong with one dataset as plain sentences
(errors refuse a run; warnings are printed and recorded); ``scan`` runs both. ``data check``
and ``prepare`` share them, so a run refuses what ``data check`` reports as FAIL (``prepare``
reads headers only by default; ``data check`` also decodes every image).

What is checked (the issue's list): missing and empty folders; inputs without a target and
targets without an input (an error for test sets, a warning for training sets); duplicate
image ids; counts against the catalogue (an error for test sets with a verified count unless
the data config says ``counts: warn``); unreadable, corrupt or 16-bit images; grayscale,
palette or RGBA images (converted to RGB as PromptIR's loader does, with a warning);
input/target size mismatches; test images smaller than the crop multiple.
"""
from __future__ import annotations

import pathlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from harness.data import catalog
from harness.data.catalog import CDD11_CLEAR, CDD11_TYPES, DatasetInfo
from harness.data.config import DatasetFolders
from harness.data.errors import ImageReadError
from harness.data.images import IMAGE_SUFFIXES, ImageHeader, decode_rgb, is_image_file, read_header

MAX_EXAMPLES = 3
IMAGE_CHECKS = ("none", "headers", "full")


@dataclass(frozen=True)
class Item:
    """One test image or training pair: ``input`` is the clean image for clean-only sets."""

    image_id: str
    input: pathlib.Path
    target: pathlib.Path | None = None
    group: str = ""  # the CDD-11 type, else ""


@dataclass
class DatasetCheck:
    folders: DatasetFolders
    groups: tuple[str, ...] = ("",)  # CDD-11 types checked, else ("",)
    items: dict[str, list[Item]] = field(default_factory=dict)  # group → items
    files: list[pathlib.Path] = field(default_factory=list)  # every image file the set consists of
    headers: dict[pathlib.Path, ImageHeader] = field(default_factory=dict)  # read by the image check
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    structural: bool = False  # folders missing or empty: nothing further was checked

    @property
    def info(self) -> DatasetInfo:
        return self.folders.info

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, group: str = "") -> int:
        return len(self.items.get(group, []))

    def summary(self) -> str:
        unit = self.info.kind_spec.unit
        expected = self.info.expected_count
        if self.info.kind_spec.grouped:
            counts = ", ".join(f"{g} {self.count(g)}" for g in self.groups)
            exp = f" (expected {expected} per type{'' if self.info.count_verified else ', unverified'})" if expected else ""
            return f"{unit}s per type: {counts}{exp}"
        exp = f" (expected {expected:,}{'' if self.info.count_verified else ', unverified'})" if expected else ""
        return f"{_n(self.count(), unit)}{exp}"


def _n(count: int, unit: str) -> str:
    """'1 pair', '2 pairs', '1,000 images'."""
    return f"{count:,} {unit if count == 1 else unit + 's'}"


def _examples(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:MAX_EXAMPLES])
    return shown + (f" (and {len(names) - MAX_EXAMPLES} more)" if len(names) > MAX_EXAMPLES else "")


def list_images(folder: pathlib.Path) -> list[pathlib.Path]:
    """Image files under ``folder``, recursively, sorted by path (hidden files skipped)."""
    return sorted(p for p in folder.rglob("*") if is_image_file(p) and p.is_file())


def _by_stem(files: list[pathlib.Path]) -> tuple[dict[str, pathlib.Path], dict[str, list[pathlib.Path]]]:
    found: dict[str, pathlib.Path] = {}
    dupes: dict[str, list[pathlib.Path]] = {}
    for path in files:
        if path.stem in found:
            dupes.setdefault(path.stem, [found[path.stem]]).append(path)
        else:
            found[path.stem] = path
    return found, dupes


def _pair(check: DatasetCheck, group: str, inputs: list[pathlib.Path], target_dir: pathlib.Path,
          targets: list[pathlib.Path], rule: str) -> None:
    is_test = check.info.split == "test"
    by_stem, dupes = _by_stem(targets)
    for stem, paths in dupes.items():
        check.errors.append(f"{len(paths)} targets share the stem '{stem}' in {target_dir}: "
                            f"{_examples([p.name for p in paths])}; keep one")
    items, unpaired, used = [], [], set()
    for path in inputs:
        stems = catalog.target_stems(rule, path.stem)
        target = next((by_stem[s] for s in stems if s in by_stem), None)
        if target is None:
            unpaired.append((path.name, stems[0]))
        else:
            used.add(target.stem)
            items.append(Item(path.stem, path, target, group))
    if unpaired:
        check.errors.append(
            f"{len(unpaired)} input(s) without a target in {target_dir}, e.g. {_examples([n for n, _ in unpaired])} "
            f"(expected a target named '{unpaired[0][1]}.*'; rule: {catalog.PAIRING_RULES[rule].description})"
        )
    orphans = [p.name for stem, p in by_stem.items() if stem not in used]
    if orphans:
        where = "" if not inputs else f" (inputs in {', '.join(str(p) for p in sorted({i.parent for i in inputs})[:2])})"
        message = f"{len(orphans)} target(s) in {target_dir} without an input, e.g. {_examples(orphans)}{where}"
        (check.errors if is_test else check.warnings).append(
            message + ("" if is_test else "; they are not used for training"))
    if is_test:
        ids, dup_ids = _by_stem([i.input for i in items])
        for stem, paths in dup_ids.items():
            check.errors.append(f"image id '{stem}' occurs {len(paths)} times: {_examples([str(p) for p in paths])}; "
                                "test image ids must be unique")
    check.items[group] = items


def _structure(check: DatasetCheck, groups: tuple[str, ...]) -> None:
    folders = check.folders
    for folder in folders.missing():
        check.errors.append(f"missing {folder}")
    if check.errors:
        check.structural = True
        return
    if check.info.kind_spec.grouped:
        root = folders.roles["root"][0]
        for name in (CDD11_CLEAR, *groups):
            sub = root / name
            if not sub.is_dir():
                check.errors.append(f"missing {sub}")
            elif not list_images(sub):
                check.errors.append(f"empty {sub} (no {'/'.join(IMAGE_SUFFIXES)} images)")
        absent = [t for t in CDD11_TYPES if t not in groups and not (root / t).is_dir()]
        if absent and not check.errors:
            check.warnings.append(f"CDD-11 has 11 types; {root} lacks {', '.join(absent)} (not used here)")
    else:
        for folder in folders.folders:
            if not list_images(folder):
                check.errors.append(f"empty {folder} (no {'/'.join(IMAGE_SUFFIXES)} images)")
    check.structural = bool(check.errors)


def _counts(check: DatasetCheck, counts_policy: str) -> None:
    info = check.info
    if info.expected_count is None:
        return
    strict = info.split == "test" and info.count_verified and counts_policy == "strict"
    unit = info.kind_spec.unit
    for group in check.groups:
        n = check.count(group)
        if n == info.expected_count:
            continue
        label = f"{group}: " if group else ""
        message = f"{label}{_n(n, unit)}, expected {info.expected_count:,} ({info.count_source})"
        if strict:
            check.errors.append(message + "; use the complete set, or set `counts: warn` in the data config "
                                "to accept a subset (the results are then labelled as such)")
        else:
            check.warnings.append(message)


def _inspect(path: pathlib.Path, full: bool) -> ImageHeader:
    header = read_header(path)
    if full:
        decode_rgb(path.read_bytes(), path, warn=False)
    return header


def _images(check: DatasetCheck, images: str, crop_multiple: int | None, min_size: int | None, jobs: int) -> None:
    files = check.files
    if images == "none" or not files:
        return
    full = images == "full"
    headers = check.headers
    unreadable: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = pool.map(lambda p: _safe_inspect(p, full), files)
        for path, result in zip(files, results):
            if isinstance(result, ImageHeader):
                headers[path] = result
            else:
                unreadable.append(str(result))
    if unreadable:
        check.errors.append(f"{len(unreadable)} unreadable image(s) — replace or remove them: "
                            + "; ".join(unreadable[:MAX_EXAMPLES])
                            + (f" (and {len(unreadable) - MAX_EXAMPLES} more)" if len(unreadable) > MAX_EXAMPLES else ""))
    converted: dict[str, list[str]] = {}
    for path, header in headers.items():
        if header.conversion:
            converted.setdefault(header.conversion, []).append(str(path))
    for kind, paths in converted.items():
        check.warnings.append(f"{len(paths)} {kind} image(s) will be converted to RGB (as PromptIR's loader does), "
                              f"e.g. {_examples(paths)}")
    mismatched, small = [], []
    floor = max(crop_multiple or 1, min_size or 1)
    for items in check.items.values():
        for item in items:
            a = headers.get(item.input)
            b = headers.get(item.target) if item.target is not None else a
            if a is None or b is None:
                continue
            if (a.width, a.height) != (b.width, b.height):
                mismatched.append(f"{item.input} is {a.width}×{a.height} but {item.target} is {b.width}×{b.height}")
            elif a.width < floor or a.height < floor:
                small.append(f"{item.input} ({a.width}×{a.height})")
    if mismatched:
        check.errors.append(f"{len(mismatched)} input/target size mismatch(es): " + "; ".join(mismatched[:MAX_EXAMPLES])
                            + (f" (and {len(mismatched) - MAX_EXAMPLES} more)" if len(mismatched) > MAX_EXAMPLES else ""))
    if small:
        what = f"smaller than the {min_size}px training patch" if min_size else f"smaller than the crop multiple {crop_multiple}"
        check.errors.append(f"{len(small)} image(s) {what}: {'; '.join(small[:MAX_EXAMPLES])}"
                            + (f" (and {len(small) - MAX_EXAMPLES} more)" if len(small) > MAX_EXAMPLES else ""))


def _safe_inspect(path: pathlib.Path, full: bool) -> ImageHeader | str:
    try:
        return _inspect(path, full)
    except ImageReadError as exc:
        return str(exc).removeprefix("cannot read image ").removesuffix("; replace or remove the file")


def start(folders: DatasetFolders, groups: tuple[str, ...] | None = None) -> DatasetCheck:
    """Phase 1 (cheap): are the folders there and non-empty? ``groups``: CDD-11 types (default all 11)."""
    groups = (tuple(groups) if groups else CDD11_TYPES) if folders.info.kind_spec.grouped else ("",)
    check = DatasetCheck(folders, groups)
    _structure(check, groups)
    return check


def complete(
    check: DatasetCheck,
    *,
    images: str = "headers",
    crop_multiple: int | None = None,
    min_size: int | None = None,
    counts_policy: str = "strict",
    jobs: int = 4,
) -> DatasetCheck:
    """Phase 2: list and pair the files, compare counts, inspect the images.

    ``images``: 'none' (names only), 'headers' (size and mode of every file, cheap) or 'full'
    (decode every pixel: finds truncated files). ``crop_multiple``: test images must be at
    least this large. ``min_size``: training images must hold a patch of this size.
    """
    if images not in IMAGE_CHECKS:
        raise ValueError(f"images must be one of {IMAGE_CHECKS}")
    if check.structural:
        return check
    info = check.info
    COLLECTORS[info.kind](check)
    _counts(check, counts_policy)
    _images(check, images, crop_multiple if info.split == "test" else None,
            min_size if info.split == "train" else None, jobs)
    return check


def _collect_clean(check: DatasetCheck) -> None:
    files = [p for folder in check.folders.roles["clean"] for p in list_images(folder)]
    if check.info.split == "test":
        _, dupes = _by_stem(files)
        for stem, paths in dupes.items():
            check.errors.append(f"image id '{stem}' occurs {len(paths)} times: {_examples([str(p) for p in paths])}; "
                                "test image ids must be unique")
    check.items[""] = [Item(p.stem, p) for p in files]
    check.files = files


def _collect_paired(check: DatasetCheck) -> None:
    inputs = [p for folder in check.folders.roles["input"] for p in list_images(folder)]
    target_dir = check.folders.roles["target"][0]
    targets = list_images(target_dir)
    _pair(check, "", inputs, target_dir, targets, check.info.pairing)
    check.files = inputs + targets


def _collect_grouped(check: DatasetCheck) -> None:
    root = check.folders.roles["root"][0]
    clear = list_images(root / CDD11_CLEAR)
    check.files = list(clear)
    for group in check.groups:
        inputs = list_images(root / group)
        _pair(check, group, inputs, root / CDD11_CLEAR, clear, check.info.pairing)
        check.files += inputs


# How each dataset kind (harness.data.catalog.DATASET_KINDS) lists and pairs its files.
COLLECTORS = {"clean": _collect_clean, "paired": _collect_paired, "cdd11": _collect_grouped}


def scan(folders: DatasetFolders, *, groups: tuple[str, ...] | None = None, **options) -> DatasetCheck:
    """Both phases; ``options`` as for :func:`complete`."""
    return complete(start(folders, groups), **options)


# ---------------------------------------------------------------- reports


def status(check: DatasetCheck) -> str:
    return "FAIL" if check.errors else "warn" if check.warnings else "ok"


def format_report(checks: list[DatasetCheck], header: list[str]) -> str:
    lines = list(header)
    for title, split in (("test sets", "test"), ("training sets", "train")):
        part = [c for c in checks if c.info.split == split]
        if not part:
            continue
        lines.append(f"{title}:")
        for c in part:
            lines.append(f"  {status(c):4s}  {c.info.id:15s} {c.info.title}: "
                         + ("not checked further" if c.structural else c.summary()))
            lines.append(f"        from {c.folders.origin}")
            lines += [f"        ✗ {e}" for e in c.errors]
            lines += [f"        ! {w}" for w in c.warnings]
            if c.structural:
                lines.append(f"        → published at {c.info.published_at}")
    bad = [c for c in checks if c.errors]
    warned = [c for c in checks if c.warnings and not c.errors]
    if bad:
        lines.append(f"result: {len(bad)} of {len(checks)} dataset(s) have errors ({', '.join(c.info.id for c in bad)}); "
                     "a run refuses these data. Fix the items marked ✗.")
    else:
        lines.append(f"result: all {len(checks)} dataset(s) usable"
                     + (f"; {len(warned)} with warnings (marked !)" if warned else "") + ".")
    return "\n".join(lines)


# -- raising what a check found (shared by prepare, data check and paper.test_set) --------------


def raise_if_missing(found: list[DatasetCheck], sources) -> None:
    """Phase 1 failed somewhere: raise DataMissingError naming every missing or empty folder."""
    from harness.data.errors import DataMissingError
    from harness.data.hub import HUB_SOURCES

    broken = [c for c in found if c.structural]
    if not broken:
        return
    lines = []
    for c in broken:
        hint = f"; or `dacode-bench data download {c.info.id}`" if c.info.id in HUB_SOURCES else ""
        lines.append(f"  {c.info.title} [{c.info.id}] (published at {c.info.published_at}{hint}): "
                     + ", ".join(c.errors))
    from harness.data.config import CONFIG_NAME

    raise DataMissingError(
        f"{sources.description} is incomplete; nothing was trained. Fetch these datasets into one of the "
        "known layouts (`dacode-bench data list`) or map them in " + CONFIG_NAME + ":\n" + "\n".join(lines)
    )


def raise_if_bad(found: list[DatasetCheck], sources, header: list[str] | None = None) -> None:
    from harness.data.errors import DataIntegrityError

    if any(c.errors for c in found):
        report = format_report(found, header or [f"data: {sources.description}"])
        raise DataIntegrityError(f"the data have problems; nothing was trained.\n{report}")


def warn_about(found: list[DatasetCheck]) -> list[str]:
    import warnings

    from harness.data.errors import DataWarning

    notes = [f"{c.info.id}: {w}" for c in found for w in c.warnings]
    for note in notes:
        warnings.warn(DataWarning(note), stacklevel=3)
    return notes

