"""``dacode-bench data …``: list, check, manifest, download.

Registered by ``harness.cli.build_parser`` through :func:`register`. Data problems found by
``check`` print a report and exit with status 1; usage errors are HarnessErrors (status 2).
"""
from __future__ import annotations

import argparse
import pathlib
import time

from harness.data.config import CONFIG_NAME, MANIFEST_NAME


def _data_root_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", default=None,
                        help=f"a folder in a known layout, or one holding {CONFIG_NAME}, or that file "
                             "(default: $DACODE_BENCH_DATA)")


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="benchmark data: list ids, check a root, write a manifest, download")
    sub = data.add_subparsers(dest="data_command", required=True)

    ls = sub.add_parser("list", help="dataset ids, expected counts, layouts and where each set is published")
    ls.set_defaults(func=cmd_list)

    check = sub.add_parser("check", help="validate the data a suite needs: counts, pairing, images, sizes")
    check.add_argument("suite", help="suite id or YAML path")
    check.add_argument("--profile", default="paper",
                       help="a profile of the suite: 'paper' (default) checks --data-root; 'mini' builds the mini sets")
    _data_root_arg(check)
    check.add_argument("--quick", action="store_true", help="read image headers only (default: decode every image)")
    check.add_argument("--test-only", action="store_true", help="skip the training sets")
    check.add_argument("--jobs", type=int, default=4, help="threads reading images (default 4)")
    check.set_defaults(func=cmd_check)

    man = sub.add_parser("manifest", help="write a sha256 per file of the data a suite uses")
    man.add_argument("suite", help="suite id or YAML path")
    _data_root_arg(man)
    man.add_argument("--output", default=None, help=f"where to write it (default: {MANIFEST_NAME} beside the data "
                                                     "config, or in the data root)")
    man.add_argument("--test-only", action="store_true", help="only the test sets")
    man.add_argument("--jobs", type=int, default=4)
    man.set_defaults(func=cmd_manifest)

    dl = sub.add_parser("download", help="fetch a dataset's Hugging Face copy at a pinned commit; the first download "
                                         "records every file's sha256 (trust on first use), later ones verify")
    dl.add_argument("dataset", help="dataset id (see `dacode-bench data list`)")
    dl.add_argument("--dest", default="data", help="data root to download into (default ./data)")
    dl.add_argument("--revision", default=None, help="the Hub commit to pin (40 hex digits)")
    dl.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: HF_HUB_CACHE)")
    dl.add_argument("--offline", action="store_true", help="use only files already in the Hugging Face cache")
    dl.set_defaults(func=cmd_download)


def cmd_list(args: argparse.Namespace) -> int:
    from harness.data import catalog, layouts
    from harness.data.hub import HUB_SOURCES

    for split in ("test", "train"):
        print(f"{split} sets:")
        for info in (d for d in catalog.DATASETS.values() if d.split == split):
            count = f"{info.expected_count:,}" if info.expected_count else "?"
            count += "" if info.count_verified else " (unverified)"
            extra = f", per type; types: {' '.join(catalog.CDD11_TYPES)}" if info.kind_spec.grouped else ""
            repeat = f", ×{info.repeat} per epoch" + (" per σ" if info.task == "denoise" else "") if split == "train" else ""
            print(f"  {info.id:15s} {info.title} — task {info.task}, {count} {info.kind_spec.unit}s"
                  f"{extra}{repeat}")
            print(f"  {'':15s} pairing: {catalog.PAIRING_RULES[info.pairing].description}")
            for layout in layouts.LAYOUTS.values():
                if info.id in layout.folders:
                    folders = "; ".join(f"{role}: {', '.join(rels)}" for role, rels in layout.folders[info.id].items())
                    print(f"  {'':15s} {layout.name:10s} {folders}")
            hub = HUB_SOURCES.get(info.id)
            print(f"  {'':15s} published at {info.published_at}"
                  + (f"; HF Hub: {hub.repo_id} ({hub.note})" if hub else ""))
    return 0


def _plan(args, with_training: bool):
    from harness.data import sources
    from harness.suite import load_suite

    suite = load_suite(args.suite)
    columns = sources.validate_columns(suite)
    return suite, columns, sources.plan(columns, with_training)


def cmd_check(args: argparse.Namespace) -> int:
    from harness.data import check as checks
    from harness.data import config, sources
    from harness.errors import HarnessError
    from harness.suite import load_suite

    if args.jobs < 1:
        raise HarnessError(f"--jobs {args.jobs}: must be at least 1")
    if load_suite(args.suite).profile(args.profile).data_source == "mini":  # unknown profiles refused here
        return _check_mini(args)
    suite, columns, wanted = _plan(args, not args.test_only)
    data = config.resolve(args.data_root)
    crop_multiple, noise = sources.protocol_of(suite)
    patch = sources.largest_patch(suite, args.profile)
    found = [checks.start(data.locate(i), groups) for i, groups in wanted]
    for c in found:
        checks.complete(c, images="headers" if args.quick else "full", crop_multiple=crop_multiple, min_size=patch,
                        counts_policy=data.counts, jobs=args.jobs)
    header = [
        f"data check: suite {suite.name}, profile {args.profile}",
        f"data: {data.description}; counts: {data.counts}; crop: {crop_multiple or 'none'}; noise: {noise}; "
        f"images: {'headers only' if args.quick else 'decoded in full'}",
    ]
    print(checks.format_report(found, header))
    return 1 if any(c.errors for c in found) else 0


def _check_mini(args: argparse.Namespace) -> int:
    from harness.data import mini, sources
    from harness.suite import load_suite

    suite = load_suite(args.suite)
    columns = sources.validate_columns(suite)
    crop_multiple, noise = sources.protocol_of(suite)
    start = time.perf_counter()
    for c in columns:
        ts = mini.test_set(c.column_id, c.dataset_id, c.task, c.sigma, parts=c.parts, noise=noise, crop_multiple=crop_multiple)
        height, width = ts.items[0].shape
        print(f"  ok    {c.column_id:15s} {ts.dataset_id}: {len(ts)} images {width}×{height}")
    print(f"result: {len(columns)} mini column(s) built in {time.perf_counter() - start:.2f}s "
          f"(cache: {mini.cache_root() / 'mini'})")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from harness.data import config, manifest, sources

    suite, columns, wanted = _plan(args, not args.test_only)
    data = config.resolve(args.data_root)
    found = sources.structure(data, wanted)
    from harness.data import check as checks

    for c in found:  # lists the files; a manifest records what is there, right or wrong (see `data check`)
        checks.complete(c, images="none", counts_policy="warn")
    start = time.perf_counter()
    doc = manifest.build(found, jobs=args.jobs)
    out = pathlib.Path(args.output) if args.output else data.manifest_path
    downloads = (manifest.load(out) or {}).get("downloads")
    if downloads:  # what Hub downloads saw stays: other machines verify against it
        doc["downloads"] = downloads
    manifest.write(out, doc)
    n = sum(len(d["files"]) for d in doc["datasets"].values())
    size = sum(e["bytes"] for d in doc["datasets"].values() for e in d["files"].values())
    print(f"wrote {out}: {n:,} files, {size / 1e9:.2f} GB hashed in {time.perf_counter() - start:.1f}s; "
          f"sha256 {doc['sha256']}")
    for dataset_id, entry in doc["datasets"].items():
        print(f"  {dataset_id:15s} {len(entry['files']):>7,} files  ({entry['origin']})")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from harness.data.hub import download

    download(args.dataset, args.dest, revision=args.revision, cache_dir=args.cache_dir, offline=args.offline)
    return 0
