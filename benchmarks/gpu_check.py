"""One unattended GPU check (`nox -s gpu-check`): speed, memory and numerical agreement on a CUDA machine.

Writes one JSON (``--out``, default ``results/gpu-check.json``) and prints a table. Sections, each
time-boxed so that the whole check ends within ``--budget`` seconds (default 480) on one H100-class GPU:

1. training images/s of DACode, PromptIR and AirNet (released sizes) at the paper's settings
   (batch 12, 128² patches, AdamW): fp32 eager, bf16 autocast + channels_last, and the same under
   ``torch.compile``;
2. the share of step time spent waiting for data, training from a synthetic tree of real-size
   images (PromptIR layout, 481×321) with DataLoader workers;
3. evaluation latency (median of CUDA-event timings) and peak memory (``max_memory_allocated``)
   at 256² and 1280×720, batch 1, for the three models;
4. GPU vs CPU agreement: the mini Table 1 rows trained briefly on the CPU, then every column
   evaluated with the same weights on both devices; |ΔPSNR| per cell;
5. bf16 vs fp32 training: mini DACode for 200 steps from the same seed on the GPU, the mean loss of
   the last 50 steps of each, which must agree within ``BF16_TOLERANCE`` (relative).

Without CUDA it prints one line saying so and exits 0. ``--smoke`` runs every section at toy sizes on
the CPU (what the test suite does, so the script cannot rot on machines without a GPU).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

BF16_TOLERANCE = 0.05  # relative difference of the mean loss over the last 50 of 200 steps
MODELS = ("dacode", "promptir", "airnet")


class Clock:
    """The time box: a section runs only while the budget lasts (and says when it was skipped)."""

    def __init__(self, budget_s: float):
        self.start, self.budget = time.perf_counter(), budget_s

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


EAGER = [("fp32 eager", False, False, False), ("bf16 + channels_last", True, True, False)]
COMPILED = [("bf16 + channels_last + compile", True, True, True)]  # last: compilation may eat the budget


def training_speed(device, *, size: int, batch: int, steps: int, models, clock: Clock, smoke: bool,
                   variants=EAGER, out: dict | None = None) -> dict:
    import torch

    from harness import methods
    from harness.train import to_channels_last, training_loss

    out = {} if out is None else out
    for name in models:
        out.setdefault(name, {})
        for label, bf16, cl, compiled in variants:
            if clock.left() < 60 and not smoke:
                out[name][label] = "skipped: time budget"
                continue
            torch.manual_seed(0)
            kwargs = methods.get_method(name).mini() if smoke else {}
            model = methods.build_model(name, kwargs).to(device).train()
            if cl:
                model = to_channels_last(model)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            x = torch.rand(batch, 3, size, size, device=device)
            y = torch.rand(batch, 3, size, size, device=device)
            if cl:
                x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)

            def loss_fn(a, b, model=model):
                return training_loss(model, a, b)

            step_fn = torch.compile(loss_fn) if compiled and not smoke else loss_fn

            def step():
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"):
                    loss = step_fn(x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            for _ in range(3 if not compiled else 5):  # warm-up (and compilation)
                step()
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            _sync(device)
            out[name][label] = round(steps * batch / (time.perf_counter() - t0), 2)
            model = opt = None  # free before the next variant
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return out


def data_wait(device, *, steps: int, workers: int, smoke: bool) -> dict:
    import warnings

    import torch
    from bench_paper_scale import training_tree

    import baselines
    from harness.data.sources import prepare
    from harness.suite import load_suite
    from harness.train import train

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = training_tree(pathlib.Path(tmp), n=4 if smoke else 12)
        sampler = prepare(load_suite("table1_three_task"), "paper", root, 0).sampler
        torch.manual_seed(0)
        model = baselines.create_model("promptir", **(baselines.mini_config("promptir") if smoke else {}))
        r = train(model, sampler, steps=steps, batch_size=4 if smoke else 12, patch_size=64 if smoke else 128,
                  lr=1e-4, device=device, workers=workers)
    return {"model": "promptir", "workers": workers, "steps": steps, "images_per_second": round(r.images_per_second, 2),
            "data_wait_share": round(r.data_wait_s / r.seconds, 4)}


def eval_latency(device, *, sizes, models, clock: Clock, smoke: bool) -> dict:
    import torch

    from harness import methods
    from harness.profile import measure_latency

    out: dict = {}
    for name in models:
        out[name] = {}
        torch.manual_seed(0)
        model = methods.build_model(name, methods.get_method(name).mini() if smoke else {}).to(device).eval()
        for h, w in sizes:
            key = f"{w}x{h}"
            if clock.left() < 30 and not smoke:
                out[name][key] = "skipped: time budget"
                continue
            x = torch.rand(1, 3, h, w, device=device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            median, p90, _ = measure_latency(model, x, warmup=1 if smoke else 3, iters=2 if smoke else 10)
            peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
            out[name][key] = {"median_ms": round(median, 2), "p90_ms": round(p90, 2),
                              "peak_memory_mib": None if peak is None else round(peak / 2**20, 1)}
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def cpu_gpu_agreement(device, *, steps: int, rows, clock: Clock) -> dict:
    """Train the mini rows on the CPU, then evaluate every column with the same weights on both devices."""

    from harness import provider
    from harness.evaluate import evaluate
    from harness.results import load_run
    from harness.runner import run_suite
    from harness.store import ResultsDB

    with tempfile.TemporaryDirectory() as tmp:
        outcome = run_suite("table1_three_task", results_root=tmp, method_names=list(rows), steps=steps,
                            progress=False, log=lambda *a: None, device="cpu")
        doc = load_run(outcome.run_dir)
        suite = doc.suite_model()
        from harness.data.sources import prepare

        test_sets = prepare(suite, "mini", None, 0, need_training=False).test_sets
        out: dict = {}
        with ResultsDB(pathlib.Path(tmp)) as db:
            ctx = provider.RowContext(suite, "mini", None, suite.profiles["mini"].train, 0, 0, db, {})
            for m in doc.methods:
                entry = next(e for e in suite.methods if e.name == m.name)
                model = provider.load_for_report(entry, m.method_key, ctx)
                cells = {}
                for ts in test_sets:
                    cpu = evaluate(model.to("cpu"), ts, ("psnr_y",), suite.inference, method=m.name)
                    gpu = evaluate(model.to(device), ts, ("psnr_y",), suite.inference, method=m.name)
                    cells[ts.column_id] = abs(statistics.mean(r["psnr_y"] for r in gpu)
                                              - statistics.mean(r["psnr_y"] for r in cpu))
                out[m.name] = {k: round(v, 5) for k, v in cells.items()}
    worst = max(v for cols in out.values() for v in cols.values())
    return {"steps_trained_on_cpu": steps, "abs_delta_psnr_db": out, "max_abs_delta_psnr_db": round(worst, 5)}


def bf16_vs_fp32(device, *, steps: int, smoke: bool) -> dict:
    import torch

    import dacode
    from harness.data.mini import MiniPatchSampler
    from harness.train import train

    sampler = MiniPatchSampler([("denoise", 25.0), ("derain", None), ("dehaze", None)])
    means = {}
    for label, bf16 in (("fp32", False), ("bf16", True)):
        torch.manual_seed(0)
        model = dacode.create_model("dacode", **dacode.MINI_CONFIG)
        r = train(model, sampler, steps=steps, batch_size=4, patch_size=64, lr=1e-3, device=device, bf16=bf16,
                  log_every=10)
        tail = r.losses[-min(50, len(r.losses)):]
        means[label] = statistics.mean(tail)
    rel = abs(means["bf16"] - means["fp32"]) / means["fp32"]
    return {"steps": steps, "mean_loss_last_50": {k: round(v, 6) for k, v in means.items()},
            "relative_difference": round(rel, 5), "tolerance": BF16_TOLERANCE,
            "agree": bool(rel <= BF16_TOLERANCE) or smoke}


def _table(report: dict) -> str:
    lines = [f"dacode-bench gpu-check on {report['device']} (torch {report['torch']}, {report['seconds']:.0f} s)"]
    lines.append("training images/s (batch, patch as below):")
    for model, variants in report.get("training_images_per_second", {}).items():
        lines.append(f"  {model:9s} " + "  ".join(f"{k}: {v}" for k, v in variants.items()))
    if "data_wait" in report:
        d = report["data_wait"]
        lines.append(f"data wait share ({d['model']}, {d['workers']} workers): {100 * d['data_wait_share']:.1f}% "
                     f"at {d['images_per_second']} img/s")
    for model, sizes in report.get("eval_latency", {}).items():
        lines.append(f"eval {model:9s} " + "  ".join(
            f"{k}: {v['median_ms']} ms, {v['peak_memory_mib']} MiB" if isinstance(v, dict) else f"{k}: {v}"
            for k, v in sizes.items()))
    if "cpu_gpu_agreement" in report:
        lines.append(f"GPU vs CPU, same weights: max |ΔPSNR| {report['cpu_gpu_agreement']['max_abs_delta_psnr_db']} dB")
    if "bf16_vs_fp32" in report:
        b = report["bf16_vs_fp32"]
        lines.append(f"bf16 vs fp32 mean loss (last 50 of {b['steps']}): {b['mean_loss_last_50']} — relative "
                     f"{b['relative_difference']} ({'within' if b['agree'] else 'OUTSIDE'} {b['tolerance']})")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/gpu-check.json")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for the whole check (default 480)")
    ap.add_argument("--smoke", action="store_true", help="every section at toy sizes on the CPU")
    args = ap.parse_args(argv)
    import torch

    if args.smoke:
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        print("gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing to measure")
        return 0
    else:
        device = torch.device("cuda")
    clock = Clock(args.budget)
    smoke = args.smoke
    report: dict = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (smoke)",
                    "torch": torch.__version__, "cuda": torch.version.cuda, "smoke": smoke}
    speed = dict(size=32 if smoke else 128, batch=2 if smoke else 12, steps=1 if smoke else 10, models=MODELS,
                 clock=clock, smoke=smoke)
    report["training_images_per_second"] = training_speed(device, **speed)
    report["data_wait"] = data_wait(device, steps=2 if smoke else 30, workers=2 if smoke else 8, smoke=smoke)
    report["eval_latency"] = eval_latency(device, sizes=[(32, 32)] if smoke else [(256, 256), (720, 1280)],
                                          models=MODELS, clock=clock, smoke=smoke)
    if clock.left() > 120 or smoke:
        report["cpu_gpu_agreement"] = cpu_gpu_agreement(device, steps=2 if smoke else 30, clock=clock,
                                                        rows=("AirNet",) if smoke else ("AirNet", "PromptIR", "DACode"))
    if clock.left() > 60 or smoke:
        report["bf16_vs_fp32"] = bf16_vs_fp32(device, steps=4 if smoke else 200, smoke=smoke)
    training_speed(device, **speed, variants=COMPILED, out=report["training_images_per_second"])
    report["seconds"] = round(time.perf_counter() - clock.start, 1)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(report))
    print(f"written: {out}")
    bad = not report.get("bf16_vs_fp32", {}).get("agree", True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
