"""Training speed of the baselines' small configurations on this CPU.

    python benchmarks/bench_baselines.py                 # mini configs, 1 and 2 threads
    python benchmarks/bench_baselines.py --full          # also one 128x128 forward of the releases

One step = the harness trainer's step: loss (``training_loss`` or L1), backward,
AdamW update, on a batch of 4 random 64x64 patches.  Reports steps/s (median of
per-step times after two warm-up steps) and the parameter count.  Timings on the
shared 2-core machine vary with its load; compare rows from the same run only.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import baselines  # noqa: E402

CONFIGS = {
    "promptir mini (mini_config)": ("promptir", baselines.mini_config("promptir")),
    "airnet mini (mini_config)": ("airnet", baselines.mini_config("airnet")),
    # the overrides written in suites/table1_three_task.yaml at the time of writing
    "promptir suite-yaml mini": ("promptir", dict(dim=16, blocks=[1, 1, 1, 1], refinement_blocks=1)),
    "airnet suite-yaml mini": ("airnet", dict(channels=16, num_blocks=1, queue_size=64)),
}


def train_steps(name: str, overrides: dict, steps: int, batch: int, patch: int) -> tuple[float, int]:
    torch.manual_seed(0)
    model = baselines.create_model(name, **overrides).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch, patch)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = model.training_loss(x, y) if hasattr(model, "training_loss") else F.l1_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times), sum(p.numel() for p in model.parameters())


def full_forward(name: str, size: int) -> float:
    model = baselines.create_model(name).eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        model(x)
        t0 = time.perf_counter()
        model(x)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--full", action="store_true", help="also time one 128x128 forward of each release")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, batch {args.batch} x {args.patch}x{args.patch}, AdamW")
    print(f"{'config':34s} {'threads':>7s} {'params':>10s} {'steps/s':>8s}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for label, (name, overrides) in CONFIGS.items():
            rate, n = train_steps(name, dict(overrides), args.steps, args.batch, args.patch)
            print(f"{label:34s} {threads:7d} {n:10,d} {rate:8.2f}", flush=True)
        if args.full:
            for name in ("promptir", "airnet"):
                print(f"{name + ' release, 1x3x128x128 forward':34s} {threads:7d} {'':10s} "
                      f"{full_forward(name, 128):7.2f}s", flush=True)


if __name__ == "__main__":
    main()
