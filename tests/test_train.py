"""The trainer: schedules against their closed forms, resume, determinism."""
import pytest
import torch

from harness import train as train_module
from harness.data.mini import MiniPatchSampler
from harness.train import Schedule, cosine_lr, promptir_lr, train


def test_cosine_reaches_zero_and_warms_up():
    assert cosine_lr(0, 100, 2e-4, 0) == pytest.approx(2e-4)
    assert cosine_lr(50, 100, 2e-4, 0) == pytest.approx(1e-4)
    assert cosine_lr(100, 100, 2e-4, 0) == pytest.approx(0.0, abs=1e-20)
    assert cosine_lr(0, 100, 2e-4, 10) == pytest.approx(2e-5)
    assert cosine_lr(9, 100, 2e-4, 10) == pytest.approx(2e-4)


def test_promptir_schedule_closed_form():
    """lr(e) = 2e-4·e/14 for e < 15, then 1e-4·(1 + cos(π(e−15)/135))
    (docs/protocols.md#promptirs-warm-up-cosine)."""
    assert promptir_lr(0, 2e-4) == 0.0
    assert promptir_lr(7, 2e-4) == pytest.approx(1e-4)
    assert promptir_lr(14, 2e-4) == pytest.approx(2e-4)
    assert promptir_lr(15, 2e-4) == pytest.approx(2e-4)
    assert promptir_lr(82.5, 2e-4) == pytest.approx(1e-4)
    assert promptir_lr(150, 2e-4) == pytest.approx(0.0, abs=1e-20)
    # stepped per epoch: every step of an epoch shares the epoch's rate
    s = Schedule(kind="promptir_warmup", steps_per_epoch=10)
    assert s.lr(70, 1500, 2e-4) == s.lr(79, 1500, 2e-4) == pytest.approx(1e-4)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 3, padding=1))


def test_same_seed_same_weights_and_training_helps():
    sampler = MiniPatchSampler([("denoise", 25.0)])
    a, b = _net(), _net()
    ra = train(a, sampler, steps=8, batch_size=2, patch_size=16, lr=1e-2, seed=1)
    train(b, sampler, steps=8, batch_size=2, patch_size=16, lr=1e-2, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert ra.steps == 8 and ra.images_per_second > 0


def test_resume_after_a_kill_continues_identically(tmp_path, monkeypatch):
    sampler = MiniPatchSampler([("denoise", 25.0), ("dehaze", None)])
    reference = _net()
    train(reference, sampler, steps=9, batch_size=2, patch_size=16, lr=1e-2, seed=3)

    real_save = train_module.save_training_state

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_training_state", save_then_die)
    ckpt = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_net(), sampler, steps=9, batch_size=2, patch_size=16, lr=1e-2, seed=3, checkpoint_path=ckpt,
              checkpoint_every=4)
    monkeypatch.setattr(train_module, "save_training_state", real_save)
    resumed = _net()
    result = train(resumed, sampler, steps=9, batch_size=2, patch_size=16, lr=1e-2, seed=3, checkpoint_path=ckpt,
                   checkpoint_every=4)
    assert result.steps == 9
    assert all(torch.equal(x, y) for x, y in zip(reference.state_dict().values(), resumed.state_dict().values()))
