"""Command line: ``dacode-bench`` (same as ``python -m harness``)."""
from __future__ import annotations

import argparse
import sys
import time

from harness.errors import HarnessError


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import print_breakdown, run_suite

    start = time.perf_counter()
    checkpoints = {}
    for item in args.checkpoints or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise HarnessError(f"--checkpoints expects NAME=PATH (a row name and a weights file), got '{item}'")
        checkpoints[name] = path
    outcome = run_suite(
        args.suite, profile=args.profile, data_root=args.data_root, results_root=args.results,
        seed=args.seed, method_names=args.methods, steps=args.steps, progress=not args.quiet,
        log=(lambda *_: None) if args.quiet else print, device=args.device, checkpoints=checkpoints,
    )
    if outcome is None:  # a torchrun rank other than 0: it trained; rank 0 reports
        return 0
    print()
    print(outcome.text_table)
    print(f"results: {outcome.run_dir}  (results.json, per_image.csv, table.tex, table.html, table.txt)")
    print_breakdown(outcome, time.perf_counter() - start)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.consistency import check_suite
    from harness.suite import load_suite

    suite = load_suite(args.suite)
    print(f"{args.suite}: valid ({len(suite.columns)} columns, {len(suite.methods)} methods, "
          f"profiles {', '.join(suite.profiles)}, {len(suite.reported)} reported rows)")
    disagreements = check_suite(suite)
    if disagreements:
        print("where the paper disagrees with itself (numbers kept as printed):")
        for d in disagreements:
            print(f"  - {d}")
    return 0


def _cmd_gate(args: argparse.Namespace) -> int:
    from harness import gate

    doc = gate.resolve_run(args.run)
    if args.update:
        path = gate.write_golden(doc, args.golden)
        print(f"golden file written: {path} ({doc['suite']}/{doc['profile']}, run {doc.get('run_id')})")
        return 0
    golden = gate.load_golden(args.golden)
    drifts = gate.check(doc, golden, {"psnr": args.tol_psnr, "ssim": args.tol_ssim})
    n_cells = sum(len(c) for c in golden["cells"].values())
    if drifts:
        print(f"gate FAILED: {len(drifts)} problem(s) against {args.golden} "
              f"(tolerances: PSNR {args.tol_psnr} dB, SSIM {args.tol_ssim})")
        for d in drifts:
            print(f"  - {d}")
        return 1
    print(f"gate passed: {n_cells} cells within PSNR {args.tol_psnr} dB and SSIM {args.tol_ssim} of {args.golden}")
    return 0


def _cmd_suites(args: argparse.Namespace) -> int:
    from harness.suite import available_suites, load_suite

    for name in available_suites():
        suite = load_suite(name)
        print(f"{name:24s} {suite.source}: {suite.title}  (profiles: {', '.join(suite.profiles)})")
    return 0


def _parse_overrides(items: list[str]) -> dict:
    import yaml

    overrides = {}
    for item in items:
        if "=" not in item:
            raise HarnessError(f"--set expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _cmd_profile(args: argparse.Namespace) -> int:
    import json

    from harness import atomic
    from harness.methods import get_method
    from harness.profile import format_report, profile_method

    get_method(args.method)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise HarnessError(f"--device {args.device}: no CUDA device is available here; use --device cpu")
    height, width = (args.size, args.size) if args.height is None else (args.height, args.size)
    report = profile_method(
        args.method, _parse_overrides(args.set), size=(height, width), batch=args.batch, device=args.device,
        warmup=args.warmup, iters=args.iters, measure_memory=not args.no_memory,
    )
    print(format_report(report))
    if args.json:
        atomic.write_text(args.json, json.dumps(report.as_dict(), indent=2) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dacode-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite (train/evaluate every row) and render its table")
    run.add_argument("suite", help="suite id (see `dacode-bench suites`) or path to a suite YAML file")
    run.add_argument("--profile", default="mini", help="'mini' (offline, synthetic; default) or 'paper'")
    run.add_argument("--data-root", default=None, help="root of the benchmark data (paper profile)")
    run.add_argument("--results", default="results", help="results root folder (default: ./results)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--methods", nargs="+", default=None, help="only these rows (names or model ids)")
    run.add_argument("--steps", type=int, default=None, help="override the profile's training steps")
    run.add_argument("--checkpoints", nargs="+", default=None, metavar="NAME=PATH",
                     help="load these weights for these rows instead of training (released or your own)")
    run.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cpu for mini, the GPU for paper)")
    run.add_argument("--quiet", action="store_true", help="no progress bars or per-method logs")
    run.set_defaults(func=_cmd_run)

    prof = sub.add_parser("profile", help="parameters, FLOPs/MACs, latency and peak memory of a method")
    prof.add_argument("method", help="method id, e.g. dacode, dacode-s, promptir, airnet")
    prof.add_argument("--size", type=int, default=256, help="input width (and height unless --height)")
    prof.add_argument("--height", type=int, default=None)
    prof.add_argument("--batch", type=int, default=1)
    prof.add_argument("--device", default="cpu")
    prof.add_argument("--warmup", type=int, default=2)
    prof.add_argument("--iters", type=int, default=10)
    prof.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    prof.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="constructor override, e.g. --set dim=16 --set 'blocks=[1,1,1,1,1,1,1]'")
    prof.add_argument("--json", default=None, help="also write the report as JSON here")
    prof.set_defaults(func=_cmd_profile)

    gate = sub.add_parser("gate", help="compare a run with a golden results file (exit 1 on drift)")
    gate.add_argument("run", help="run folder (or its results.json, or a folder with a LATEST pointer)")
    gate.add_argument("--golden", required=True, help="golden results file (JSON)")
    gate.add_argument("--tol-psnr", type=float, default=0.05, help="allowed |ΔPSNR| in dB (default 0.05)")
    gate.add_argument("--tol-ssim", type=float, default=0.002, help="allowed |ΔSSIM| (default 0.002)")
    gate.add_argument("--update", action="store_true", help="write the golden file from this run instead")
    gate.set_defaults(func=_cmd_gate)

    validate = sub.add_parser("validate", help="check a suite file and where the paper disagrees with itself")
    validate.add_argument("suite", help="suite id or path to a suite YAML file")
    validate.set_defaults(func=_cmd_validate)

    suites = sub.add_parser("suites", help="list the available suites")
    suites.set_defaults(func=_cmd_suites)
    from harness.data.commands import register as register_data_commands
    from harness.report_commands import register as register_report_commands

    register_data_commands(sub)  # `dacode-bench data list|check|manifest|download`
    register_report_commands(sub)  # `dacode-bench compare`, `dacode-bench report`
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no partial results were published", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
