"""Paper-scale figures that need no GPU: training-data throughput with DataLoader workers, the share
of a mini training step spent waiting for data, and evaluation memory that does not grow with the
test set.

    python benchmarks/bench_paper_scale.py             # all three
    python benchmarks/bench_paper_scale.py --only data|wait|eval

- data: patches/s of the paper's 3-task mixture (batch 12, 128² patches, dihedral augmentation,
  noise for the denoising source) read from a synthetic tree of real-size images (481×321 PNG
  training images, PromptIR layout), 0 vs 2 DataLoader workers, same batches either way;
- wait: in a mini training run (AirNet mini, 4 × 64², 60 steps) the time the loop waited for the
  next batch over the step time, 0 vs 2 workers;
- eval: peak RSS of evaluating 20 vs 200 GoPro-sized (1280×720) test pairs with a small model, each
  in its own process: streaming keeps it flat.
Ratios from one run; absolute times depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def _png(path: pathlib.Path, rng, h: int, w: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def training_tree(root: pathlib.Path, n: int = 12) -> pathlib.Path:
    """PromptIR-layout training folders (and the test folders the check wants) at real sizes."""
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        _png(root / f"Train/Denoise/img{i}.png", rng, 321, 481)
        _png(root / f"Train/Derain/rainy/rain-{i}.png", rng, 321, 481)
        _png(root / f"Train/Derain/gt/norain-{i}.png", rng, 321, 481)
        _png(root / f"Train/Dehaze/synthetic/part1/{i:04d}_0.8_0.2.png", rng, 321, 481)
        _png(root / f"Train/Dehaze/original/{i:04d}.png", rng, 321, 481)
    for i in range(1, 3):
        _png(root / f"test/dehaze/input/{i:04d}_0.8_0.2.png", rng, 64, 64)
        _png(root / f"test/dehaze/target/{i:04d}.png", rng, 64, 64)
        _png(root / f"test/derain/Rain100L/input/{i}.png", rng, 64, 64)
        _png(root / f"test/derain/Rain100L/target/{i}.png", rng, 64, 64)
        _png(root / f"test/denoise/bsd68/{i}.png", rng, 64, 64)
    (root / "dacode-bench-data.yaml").write_text("counts: warn\n")
    return root


def data_throughput(steps: int = 8) -> None:
    import warnings

    import torch

    from harness import train as t
    from harness.data.sources import prepare
    from harness.suite import load_suite

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = training_tree(pathlib.Path(tmp))
        sampler = prepare(load_suite("table1_three_task"), "paper", root, 0).sampler
        rates = {}
        for workers in (0, 2):
            loader = torch.utils.data.DataLoader(
                t._SeededSamples(sampler, 128), batch_sampler=t._StepSeeds(0, 0, steps + 1, 12, 0, 1, 12),
                num_workers=workers, prefetch_factor=4 if workers else None, generator=torch.Generator())
            batches = iter(loader)
            next(batches)  # workers start
            t0 = time.perf_counter()
            for _ in range(steps):
                next(batches)
            rates[workers] = steps * 12 / (time.perf_counter() - t0)
    print(f"data: paper 3-task mixture, batch 12 × 128², 481×321 PNG sources: "
          f"{rates[0]:.1f} patches/s with 0 workers, {rates[2]:.1f} with 2 ({rates[2] / rates[0]:.2f}x)")


def data_wait_share(steps: int = 60) -> None:
    import torch

    import baselines
    from harness.data.mini import MiniPatchSampler
    from harness.train import train

    sampler = MiniPatchSampler([("denoise", 25.0), ("derain", None), ("dehaze", None)])
    for workers in (0, 2):
        torch.manual_seed(0)
        model = baselines.create_model("airnet", **baselines.mini_config("airnet"))
        r = train(model, sampler, steps=steps, batch_size=4, patch_size=64, lr=1e-3, workers=workers)
        print(f"wait: mini AirNet, {steps} steps of 4 × 64², {workers} workers: waited {r.data_wait_s:.2f} s of "
              f"{r.seconds:.2f} s = {100 * r.data_wait_s / r.seconds:.1f}% of the step time")


def _eval_child(n: int) -> None:
    import torch

    from harness.data import paper
    from harness.evaluate import evaluate
    from harness.suite import InferencePolicy

    root = pathlib.Path(sys.argv[sys.argv.index("--root") + 1])
    import warnings

    warnings.simplefilter("ignore")
    ts = paper.test_set(root, "gopro", "gopro", counts="warn")
    assert len(ts) == n
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1))
    t0 = time.perf_counter()
    rows = evaluate(model, ts, ("psnr_y", "ssim_y"), InferencePolicy(), method="small")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"n": len(rows), "peak_gib": peak, "seconds": time.perf_counter() - t0}))


def eval_memory(counts=(20, 200)) -> None:
    rng = np.random.default_rng(0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        made = 0
        for n in counts:
            for i in range(made + 1, n + 1):
                _png(root / f"test/deblur/gopro/input/{i:04d}.png", rng, 720, 1280)
                _png(root / f"test/deblur/gopro/target/{i:04d}.png", rng, 720, 1280)
            made = n
            out = subprocess.run([sys.executable, __file__, "--eval-child", str(n), "--root", str(root)],
                                 capture_output=True, text=True, check=True)
            results[n] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"eval: {n} GoPro-sized pairs (1280×720): peak RSS {results[n]['peak_gib']:.2f} GiB, "
                  f"{results[n]['seconds']:.1f} s", flush=True)
    a, b = (results[n]["peak_gib"] for n in counts)
    print(f"eval: peak RSS {counts[1]} / {counts[0]} images = {b / a:.2f} (the set held whole would be "
          f"{counts[1] / counts[0]:.0f}x the images' memory)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["data", "wait", "eval"], default=None)
    ap.add_argument("--eval-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.eval_child:
        return _eval_child(args.eval_child)
    for name, fn in (("data", data_throughput), ("wait", data_wait_share), ("eval", eval_memory)):
        if args.only in (None, name):
            fn()


if __name__ == "__main__":
    main()
