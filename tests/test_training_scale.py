"""Training that fits and keeps a GPU busy, checked on the CPU: DataLoader workers do not change the
batches, micro-batches give the update of one large batch, and a run that would not fit in memory
is refused before it starts."""
import pytest
import torch

from harness import memory
from harness.data.mini import MiniPatchSampler
from harness.errors import HarnessError
from harness.train import sample_global_batch, train


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1))


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_worker_count_does_not_change_the_weights():
    """A mini row (AirNet's mini configuration, its own training loss) for 20 steps, 0 and 2 workers."""
    import baselines

    sampler = MiniPatchSampler([("denoise", 25.0), ("derain", None), ("dehaze", None)])
    results = []
    for workers in (0, 2):
        torch.manual_seed(0)
        model = baselines.create_model("airnet", **baselines.mini_config("airnet"))
        train(model, sampler, steps=20, batch_size=4, patch_size=32, lr=1e-3, seed=5, workers=workers)
        results.append(_weights(model))
    assert results[0].keys() == results[1].keys()
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])  # bit-identical


def test_the_loader_yields_the_patches_the_seeds_name():
    """The DataLoader path draws exactly the per-sample-seeded patches of ``sample_global_batch``."""
    import numpy as np

    from harness import train as t

    sampler = MiniPatchSampler([("denoise", 15.0), ("derain", None)])
    loader = torch.utils.data.DataLoader(t._SeededSamples(sampler, 16),
                                         batch_sampler=t._StepSeeds(3, 0, 2, 4, 0, 1, 4))
    rng = np.random.default_rng(3)
    for degraded, clean in loader:
        ref_d, ref_c = sample_global_batch(sampler, rng, 4, 16)
        assert np.array_equal(degraded.numpy(), ref_d) and np.array_equal(clean.numpy(), ref_c)


def test_three_micro_batches_of_four_equal_one_batch_of_twelve():
    sampler = MiniPatchSampler([("denoise", 25.0), ("dehaze", None)])
    one, three = _net(), _net()
    initial = _weights(one)
    train(one, sampler, steps=4, batch_size=12, patch_size=16, lr=1e-2, seed=2)
    train(three, sampler, steps=4, batch_size=12, patch_size=16, lr=1e-2, seed=2, micro_batch=4)
    for k, v in _weights(one).items():
        assert not torch.equal(v, initial[k])
        assert torch.allclose(v, three.state_dict()[k], rtol=1e-5, atol=1e-6), k


def test_a_step_that_would_not_fit_is_refused_with_the_micro_batch_that_fits(monkeypatch):
    """The extrapolation by hand: a step of b samples peaks at 100 MB + 50 MB·b above its start."""
    mb = 10**6
    monkeypatch.setattr(memory, "_step_peak", lambda model, loss, opt, batch, patch, device, label="": 100 * mb + 50 * mb * batch)
    model = _net()
    params = sum(p.numel() * 4 for p in model.parameters())
    estimate = memory.estimate_training_memory(model, patch_size=32, micro_batch=8)
    assert estimate.per_sample_bytes == 50 * mb
    assert estimate.need_bytes == 150 * mb + 7 * 50 * mb + 3 * params  # peak(1) + 7 more samples + grads, moments
    # room for exactly three samples: 250 MB + the optimiser's share, within the safety margin
    monkeypatch.setattr(memory, "available_bytes", lambda device: int((250 * mb + 3 * params) / memory.SAFETY) + 1)
    with pytest.raises(HarnessError) as info:
        memory.check_training_memory(model, label="Big", patch_size=32, micro_batch=8, batch_size=8)
    message = str(info.value)
    assert message.startswith("training 'Big' would run out of memory: it needs about 0.")
    assert "use --micro-batch 3 (or train.micro_batch: 3)" in message and "\n" not in message
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1)
    with pytest.raises(HarnessError, match="not even one sample fits"):
        memory.check_training_memory(model, label="Big", patch_size=32, micro_batch=8, batch_size=8)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10**12)
    assert memory.check_training_memory(model, label="Big", patch_size=32, micro_batch=8, batch_size=8).fits


def test_the_memory_probe_changes_nothing_the_run_computes():
    model = _net()
    before, rng = _weights(model), torch.get_rng_state()
    memory.estimate_training_memory(model, patch_size=16, micro_batch=2)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_per_sample_memory_grows_with_the_batch():
    """The extrapolation is linear in the micro-batch; the measured slope is positive and the
    estimate for 4 lies between twice and four times the one-sample step's growth."""
    model = _net()
    e1 = memory.estimate_training_memory(model, patch_size=64, micro_batch=1)
    e4 = memory.estimate_training_memory(model, patch_size=64, micro_batch=4)
    assert e4.need_bytes > e1.need_bytes
    assert e4.per_sample_bytes > 0


def test_channels_last_works_for_models_with_tensors_of_other_ranks():
    """PromptIR holds 5-D prompt components: ``model.to(memory_format=channels_last)`` would refuse it
    (and so would every paper-profile GPU run with channels_last on)."""
    import baselines
    from harness.train import to_channels_last

    model = baselines.create_model("promptir", **baselines.mini_config("promptir"))
    with pytest.raises(RuntimeError):
        model.to(memory_format=torch.channels_last)
    to_channels_last(model)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    assert model(x).shape == x.shape


@pytest.mark.slow
def test_the_gpu_check_runs_end_to_end_at_toy_sizes(tmp_path):
    """`nox -s gpu-check` cannot run here; its every section runs on the CPU at toy sizes instead, so the
    script a lab runs on its GPU is known to work."""
    import json
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    out = tmp_path / "gpu-check.json"
    proc = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(out)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["training_images_per_second"]) == {"dacode", "promptir", "airnet"}
    assert all(len(v) == 3 for v in report["training_images_per_second"].values())
    assert report["cpu_gpu_agreement"]["max_abs_delta_psnr_db"] == 0.0  # the same device twice: exact
    assert report["bf16_vs_fp32"]["agree"] and "data_wait_share" in report["data_wait"]
    no_gpu = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""})
    assert no_gpu.returncode == 0 and no_gpu.stdout.startswith("gpu-check: no CUDA device here")
