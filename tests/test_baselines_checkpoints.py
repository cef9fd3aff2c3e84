"""load_checkpoint against synthetic files in the released formats.

The files are built from the spec JSON (key names, shapes, dtypes extracted from
the official code), never from our modules, so a wrong key or shape in the
re-implementation cannot make its own test pass:
* PromptIR ``model.ckpt``: Lightning dict, ``state_dict`` keys prefixed ``net.``;
* AirNet ``All.pth``: a plain state_dict (queue length read from the file).
"""
from __future__ import annotations

import argparse
import json
import pathlib

import pytest
import torch
import torch.nn.functional as F

import baselines
from baselines import CheckpointMismatchError, UnsafeCheckpointError

SPECS = pathlib.Path(baselines.__file__).parent / "specs"


pytestmark = pytest.mark.usefixtures("one_thread")


def _synthetic_state_dict(name: str, seed: int = 0, queue_len: int | None = None) -> dict:
    """Random tensors under the spec's keys, with values a trained network could hold."""
    spec = json.loads((SPECS / f"{name}_state_dict.json").read_text())
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape, dtype in spec["keys"]:
        leaf = key.rsplit(".", 1)[-1]
        if key == "E.E.queue" and queue_len is not None:
            shape = [shape[0], queue_len]
        if dtype == "torch.int64":
            t = torch.zeros(shape, dtype=torch.int64) if key.endswith("queue_ptr") else torch.tensor(1000)
        elif key.endswith("queue"):
            t = F.normalize(torch.randn(shape, generator=g), dim=0)
        elif leaf == "prompt_param":
            t = torch.rand(shape, generator=g)
        elif leaf == "running_var":
            t = 0.5 + torch.rand(shape, generator=g)
        elif leaf == "temperature" or (leaf == "weight" and len(shape) == 1):  # norm scales
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            t = torch.randn(shape, generator=g) / max(fan_in, 1) ** 0.5 * 0.5
        sd[key] = t
    return sd


def _lightning_file(state_dict: dict) -> dict:
    """What Lightning 2.0 writes for PromptIRModel (docs/models/promptir.md#released-checkpoint)."""
    return {
        "epoch": 119,
        "global_step": 534_000,
        "pytorch-lightning_version": "2.0.1",
        "state_dict": {"net." + k: v for k, v in state_dict.items()},
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 120, "completed": 119}}}},
        "callbacks": {"ModelCheckpoint{'monitor': None, 'mode': 'min'}": {
            "best_model_score": None, "best_model_path": "", "dirpath": "train_ckpt", "best_k_models": {}}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 2.5e-5, "betas": (0.9, 0.999), "params": []}]}],
        "lr_schedulers": [{"base_lrs": [2e-4], "last_epoch": 119, "warmup_epochs": 15, "max_epochs": 150}],
    }


def test_promptir_lightning_checkpoint(tmp_path):
    sd = _synthetic_state_dict("promptir")
    path = tmp_path / "model.ckpt"
    torch.save(_lightning_file(sd), path)
    model = baselines.load_checkpoint("promptir", path)
    assert not model.training
    loaded = model.state_dict()
    assert loaded.keys() == sd.keys()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())

    # the single full-size forward of the suite, on a tiny input
    captured = {}
    model.output.register_forward_hook(lambda mod, inp, out: captured.update(out=out))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.allclose(y, captured["out"] + x, atol=1e-6)  # global residual around the output conv
    assert (y - x).abs().max() > 1e-3


def test_airnet_plain_state_dict_and_queue_from_file(tmp_path):
    sd = _synthetic_state_dict("airnet", seed=1)
    path = tmp_path / "All.pth"
    torch.save(sd, path)
    model = baselines.load_checkpoint("airnet", path)
    assert not model.training
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items()) and loaded.keys() == sd.keys()
    assert tuple(model.E.E.queue.shape) == (256, 1280)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()

    # a single-task file (Derain/Dehaze.pth): queue 256 x 256; tail zeroed -> output is the tail bias
    sd = _synthetic_state_dict("airnet", seed=2, queue_len=256)
    sd["R.tail.0.weight"].zero_()
    sd["R.tail.0.bias"] = torch.tensor([0.1, 0.2, 0.3])
    torch.save(sd, tmp_path / "Derain.pth")
    model = baselines.load_checkpoint("airnet", tmp_path / "Derain.pth")
    assert tuple(model.E.E.queue.shape) == (256, 256)
    with torch.no_grad():
        y = model(x)
    assert torch.equal(y, torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1).expand(1, 3, 24, 20))


def test_mismatching_file_lists_keys_and_names_release(tmp_path):
    sd = _synthetic_state_dict("airnet", seed=3)
    del sd["R.head.0.bias"]
    sd["R.head.0.extra"] = torch.zeros(3)
    sd["R.tail.0.weight"] = torch.zeros(3, 32, 3, 3)
    path = tmp_path / "Other.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointMismatchError) as info:
        baselines.load_checkpoint("airnet", path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.missing == ["R.head.0.bias"] and err.unexpected == ["R.head.0.extra"]
    assert err.mismatched == [("R.tail.0.weight", (3, 32, 3, 3), (3, 64, 3, 3))]
    msg = str(err)
    for part in ("R.head.0.bias", "R.head.0.extra", "R.tail.0.weight", "[3, 32, 3, 3]", "[3, 64, 3, 3]",
                 "All.pth", "XLearning-SCU/2022-CVPR-AirNet", str(path)):
        assert part in msg


def test_promptir_wrong_release_is_reported(tmp_path):
    # an AirNet state_dict handed to the PromptIR loader, and a PromptIR file without the net. prefix
    torch.save({"state_dict": {"R.head.0.weight": torch.zeros(64, 3, 3, 3)}}, tmp_path / "a.ckpt")
    with pytest.raises(CheckpointMismatchError) as info:
        baselines.load_checkpoint("promptir", tmp_path / "a.ckpt")
    assert len(info.value.missing) == 548 and info.value.unexpected == ["R.head.0.weight"]
    assert "548 missing keys: patch_embed.proj.weight" in str(info.value)
    assert "PromptIR(decoder=True)" in str(info.value) and "'net.'" in str(info.value)

    torch.save({"state_dict": {"model.patch_embed.proj.weight": torch.zeros(48, 3, 3, 3),
                               "net.output.weight": torch.zeros(3, 48, 3, 3)}}, tmp_path / "b.ckpt")
    with pytest.raises(CheckpointMismatchError) as info:
        baselines.load_checkpoint("promptir", tmp_path / "b.ckpt")
    assert info.value.unexpected == ["model.patch_embed.proj.weight"]
    assert info.value.mismatched == [("output.weight", (3, 48, 3, 3), (3, 96, 3, 3))]

    torch.save(torch.zeros(3), tmp_path / "c.ckpt")
    with pytest.raises(CheckpointMismatchError, match="not a state_dict"):
        baselines.load_checkpoint("promptir", tmp_path / "c.ckpt")


def test_arbitrary_pickle_needs_explicit_trust(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": argparse.Namespace(lr=2e-4)}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        baselines.load_checkpoint("promptir", path)
    assert str(path) in str(info.value) and "trust_pickle=True" in str(info.value)
    # trusted: unpickling goes through, and the (empty) state_dict is then judged on its keys
    with pytest.raises(CheckpointMismatchError):
        baselines.load_checkpoint("promptir", path, trust_pickle=True)


def test_unknown_name():
    with pytest.raises(ValueError, match="promptir"):
        baselines.load_checkpoint("dacode", "whatever.pth")
