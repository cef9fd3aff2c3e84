"""CPU benchmarks of the harness itself, with pytest-benchmark (issues 6 and 7).

    .venv/bin/python -m pytest benchmarks/bench_harness.py -q -s

* Metric time per 481×321 image (Rain100L/BSD68 size) for every named protocol, and the
  speed-up of our separable-filter SSIM-Y over pyiqa's dense 11×11 SSIM, from one run.
* Training images/s of the mini configurations of the three Table 1 methods (64×64 patches,
  batch 4, the suite's settings), measured over a few steps after one warm-up step.

Figures are printed and stored in each benchmark's ``extra_info``.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from harness._compat import install_torchvision_shim
from harness.methods import instantiate, row_kwargs
from harness.metrics import PROTOCOLS, score
from harness.suite import load_suite
from harness.train import training_loss

install_torchvision_shim()  # pyiqa, the SSIM reference, imports torchvision


@pytest.fixture(scope="module")
def image_pair():
    rng = np.random.default_rng(0)
    clean = torch.from_numpy(rng.integers(0, 256, (1, 3, 321, 481)).astype(np.float32) / 255)
    noisy = (clean + torch.from_numpy(rng.normal(0, 0.1, clean.shape).astype(np.float32))).clamp(0, 1)
    return noisy, clean


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_metric_time_per_481x321_image(benchmark, image_pair, name):
    restored, target = image_pair
    score(name, restored, target)  # warm-up (pyiqa builds its metric once)
    benchmark.pedantic(score, args=(name, restored, target), rounds=5, iterations=1)
    benchmark.extra_info["ms_per_image"] = benchmark.stats.stats.median * 1e3
    print(f"\n{name}: {benchmark.stats.stats.median * 1e3:.1f} ms per 481x321 image")


def test_ssim_y_speedup_over_pyiqa(image_pair):
    import pyiqa

    restored, target = image_pair
    reference = pyiqa.create_metric("ssim", test_y_channel=True, color_space="ycbcr", device="cpu")
    reference(restored, target)
    score("ssim_y", restored, target)

    def best_of(fn, n=3):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    ours = best_of(lambda: score("ssim_y", restored, target))
    theirs = best_of(lambda: reference(restored, target))
    print(f"\nssim_y {ours * 1e3:.0f} ms vs pyiqa ssim {theirs * 1e3:.0f} ms: {theirs / ours:.1f}x faster")
    assert ours < theirs


@pytest.mark.parametrize("row", ["AirNet", "PromptIR", "DACode"])
def test_mini_training_images_per_second(row):
    suite = load_suite("table1_three_task")
    entry = next(m for m in suite.methods if m.name == row)
    cfg = suite.profiles["mini"].train
    torch.manual_seed(0)
    model, _ = instantiate(entry, row_kwargs(entry, "mini", suite.profiles["mini"]))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    x = torch.rand(cfg.batch_size, 3, cfg.patch_size, cfg.patch_size)
    y = torch.rand_like(x)

    def step():
        loss = training_loss(model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    n = 10
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    seconds = time.perf_counter() - t0
    print(f"\n{row} (mini): {n * cfg.batch_size / seconds:.1f} images/s "
          f"({seconds / n * 1e3:.0f} ms per step of {cfg.batch_size}×{cfg.patch_size}²)")
