"""Command line: ``dacode-bench`` (same as ``python -m harness``).

Exit codes: 0 success; 1 a check that ran and failed (gate drift, a data check that refuses the
data); 2 the input is wrong (suite, flags, paths, data, checkpoints, a plug-in that raises or
returns the wrong thing); 3 an unexpected internal error — one line says so, and the traceback
is written to ``<results root>/dacode-bench-error.log`` (the temporary folder for commands
without ``--results``).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

from harness.errors import HarnessError

EPILOG = ("exit codes: 0 success; 1 a check that ran and failed (gate drift, data check refusal); "
          "2 wrong input (suite, flags, paths, data, checkpoints, plug-ins); 3 internal error (traceback in "
          "<results root>/dacode-bench-error.log, or in the temporary folder for commands without --results)")
ERROR_LOG = "dacode-bench-error.log"


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import print_breakdown, run_suite

    start = time.perf_counter()
    checkpoints = {}
    for item in args.checkpoints or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise HarnessError(f"--checkpoints expects NAME=PATH (a row name and a weights file), got '{item}'")
        checkpoints[name] = path
    tile, overlap = _tile(args.tile)
    outcome = run_suite(
        args.suite, profile=args.profile, data_root=args.data_root, results_root=args.results,
        seed=args.seed, method_names=args.methods, steps=args.steps, progress=not args.quiet,
        log=(lambda *_: None) if args.quiet else print, device=args.device, checkpoints=checkpoints,
        recompute=args.recompute, micro_batch=args.micro_batch, workers=args.workers, tile=tile, overlap=overlap,
        noise_seeds=args.noise_seeds,
    )
    if outcome is None:  # a torchrun rank other than 0: it trained; rank 0 reports
        return 0
    print()
    print(outcome.text_table)
    print(f"results: {outcome.run_dir}  (results.json, per_image.csv, table.tex, table.html, table.txt)")
    print_breakdown(outcome, time.perf_counter() - start)
    return 0


def _tile(text: str | None) -> tuple[int | None, int | None]:
    """``--tile SIZE[:OVERLAP]``."""
    if text is None:
        return None, None
    size, _, overlap = text.partition(":")
    try:
        return int(size), (int(overlap) if overlap else None)
    except ValueError:
        raise HarnessError(f"--tile expects SIZE or SIZE:OVERLAP in pixels, e.g. 256:32; got '{text}'") from None


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.consistency import check_suite as disagreements_of
    from harness.runner import check_suite
    from harness.suite import load_suite

    suite = load_suite(args.suite)
    check_suite(suite)  # what `run` checks before compute
    print(f"{args.suite}: valid ({len(suite.columns)} columns, {len(suite.methods)} methods, "
          f"profiles {', '.join(suite.profiles)}, {len(suite.reported)} reported rows)")
    disagreements = disagreements_of(suite)
    if disagreements:
        print("where the paper disagrees with itself (numbers kept as printed):")
        for d in disagreements:
            print(f"  - {d}")
    return 0


def _cmd_gate(args: argparse.Namespace) -> int:
    from harness import gate
    from harness.results import load_run

    for flag, value in (("--tol-psnr", args.tol_psnr), ("--tol-ssim", args.tol_ssim)):
        if value is not None and not (value >= 0 and value != float("inf")):  # refuses NaN too
            raise HarnessError(f"{flag} {value}: a tolerance is a finite number ≥ 0")
    doc = load_run(args.run)
    if args.update:
        path = gate.write_golden(doc, args.golden)
        print(f"golden file written: {path} ({doc.suite}/{doc.profile}, run {doc.run_id})")
        return 0
    golden = gate.load_golden(args.golden)
    tolerances = gate.tolerances_for(golden["metrics"], {"psnr": args.tol_psnr, "ssim": args.tol_ssim})
    said = ", ".join(f"{m} {t:g}" for m, t in tolerances.items())
    drifts = gate.check(doc, golden, {"psnr": args.tol_psnr, "ssim": args.tol_ssim})
    n_cells = sum(len(c) for c in golden["cells"].values())
    if drifts:
        print(f"gate FAILED: {len(drifts)} problem(s) against {args.golden} (tolerances: {said})")
        for d in drifts:
            print(f"  - {d}")
        return 1
    print(f"gate passed: {n_cells} cells within {said} of {args.golden}")
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
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise HarnessError(f"--set {item}: the value is not a YAML scalar or list") from None
    return overrides


def _cmd_profile(args: argparse.Namespace) -> int:
    import json

    from harness import atomic
    from harness.methods import get_method
    from harness.profile import format_report, profile_method
    from harness.runner import check_device

    get_method(args.method)
    check_device(args.device)
    for flag, value in (("--size", args.size), ("--height", args.height), ("--batch", args.batch),
                        ("--iters", args.iters)):
        if value is not None and value < 1:
            raise HarnessError(f"{flag} {value}: must be at least 1")
    if args.warmup < 0:
        raise HarnessError(f"--warmup {args.warmup}: must be 0 or more")
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
    parser = argparse.ArgumentParser(prog="dacode-bench", description=__doc__.splitlines()[0], epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite (train/evaluate every row) and render its table", epilog=EPILOG)
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
    run.add_argument("--recompute", action="store_true",
                     help="ignore cached cells and weights for this run (the new ones replace them)")
    run.add_argument("--micro-batch", type=int, default=None, metavar="N",
                     help="run each global batch as micro-batches of N samples (gradient accumulation)")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="DataLoader processes preparing training patches (default: from the CPU count)")
    run.add_argument("--tile", default=None, metavar="SIZE[:OVERLAP]",
                     help="restore test images in overlapping tiles (recorded with every number)")
    run.add_argument("--noise-seeds", type=int, default=None, metavar="K",
                     help="evaluate stochastic models (MoCE-IR) with K noise seeds: mean ± std")
    run.add_argument("--quiet", action="store_true", help="no progress bars or per-method logs")
    run.set_defaults(func=_cmd_run)

    prof = sub.add_parser("profile", help="parameters, FLOPs/MACs, latency and peak memory of a method")
    prof.add_argument("method", help="method id, e.g. dacode, dacode-s, promptir, airnet, adair, moce_ir")
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

    gate = sub.add_parser("gate", help="compare a run with a golden results file (exit 1 on drift)", epilog=EPILOG)
    gate.add_argument("run", help="run folder (or its results.json, or a folder with a LATEST pointer)")
    gate.add_argument("--golden", required=True, help="golden results file (JSON)")
    gate.add_argument("--tol-psnr", type=float, default=None, help="allowed |ΔPSNR| in dB (default 0.05)")
    gate.add_argument("--tol-ssim", type=float, default=None, help="allowed |ΔSSIM| (default 0.002)")
    gate.add_argument("--update", action="store_true", help="write the golden file from this run instead")
    gate.set_defaults(func=_cmd_gate)

    validate = sub.add_parser("validate", help="check a suite file as `run` would; list where the paper disagrees "
                                               "with itself")
    validate.add_argument("suite", help="suite id or path to a suite YAML file")
    validate.set_defaults(func=_cmd_validate)

    suites = sub.add_parser("suites", help="list the available suites")
    suites.set_defaults(func=_cmd_suites)
    from harness.data.commands import register as register_data_commands
    from reports.commands import register as register_report_commands

    register_data_commands(sub)  # `dacode-bench data list|check|manifest|download`
    register_report_commands(sub)  # `dacode-bench compare`, `dacode-bench report`
    return parser


def _log_internal_error(args: argparse.Namespace | None) -> pathlib.Path | None:
    """Write the traceback of the exception being handled into the results root (or a temp dir)."""
    import tempfile
    import traceback

    text = f"dacode-bench {' '.join(sys.argv[1:])}\n{time.strftime('%Y-%m-%dT%H:%M:%S')}\n\n{traceback.format_exc()}"
    # the run's results root when the command has one; else the temporary folder, not wherever the user is
    folders = [pathlib.Path(args.results)] if getattr(args, "results", None) else []
    for folder in (*folders, pathlib.Path(tempfile.gettempdir())):
        try:
            if folder.exists() and not folder.is_dir():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / ERROR_LOG
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _quiet_environment() -> None:
    # OpenMP threads that spin while waiting collapse to a fraction of their speed when another
    # process shares the cores (measured: 2-4x slower training steps on a 2-core machine with one
    # other busy process); passive waiting costs little when the machine is quiet. Set by the
    # command line only (before torch loads), never on import; an explicit user setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _one_line_warnings() -> None:
    import warnings

    # "warning: <message>" rather than Python's file:line and source line
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    _quiet_environment()
    _one_line_warnings()
    args = None
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except HarnessError as exc:
        lines = str(exc).splitlines() or [type(exc).__name__]
        print(f"error: {lines[0]}", file=sys.stderr)
        for line in lines[1:]:  # a data check report: the details, indented, after the one line
            print(f"  {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: no partial results were published", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped reading (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SystemExit:
        raise  # argparse: usage error (exit 2) or --help (exit 0)
    except Exception as exc:  # a bug: one line here, the traceback in a log file
        log = _log_internal_error(args)
        where = f"; the traceback is in {log}" if log else ""
        print(f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{where} "
              "(please report it)", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
