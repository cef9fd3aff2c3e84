"""AirNet: released structure (specs/airnet_state_dict.json) and behaviour on small configurations."""
from __future__ import annotations

import copy
import json
import pathlib

import pytest
import torch
import torch.nn.functional as F

import baselines

SPEC = json.loads((pathlib.Path(baselines.__file__).parent / "specs" / "airnet_state_dict.json").read_text())
SMALL = dict(n_feats=8, n_groups=2, n_blocks=1, encoder_channels=(8, 8, 16), moco_dim=16, queue_size=12)


pytestmark = pytest.mark.usefixtures("one_thread")


def _small(**kw):
    torch.manual_seed(0)
    return baselines.create_model("airnet", **{**SMALL, **kw})


# ----------------------------------------------------------------------------- released structure
def test_keys_shapes_dtypes_match_release():
    model = baselines.create_model("airnet")
    sd = model.state_dict()
    assert {k: (tuple(v.shape), str(v.dtype)) for k, v in sd.items()} == {
        k: (tuple(s), d) for k, s, d in SPEC["keys"]
    }
    assert len(sd) == SPEC["n_tensors"] == 584
    params = dict(model.named_parameters())
    assert len(params) == 528 and len(dict(model.named_buffers())) == 56
    assert sum(p.numel() for p in params.values()) == SPEC["n_params"] == 8_930_313
    assert tuple(model.E.E.queue.shape) == (256, 1280)
    assert torch.allclose(model.E.E.queue.norm(dim=0), torch.ones(1280), atol=1e-5)
    assert model.E.E.queue_ptr.dtype == torch.int64 and int(model.E.E.queue_ptr) == 0
    # the key encoder is a momentum copy without gradients
    assert not any(p.requires_grad for p in model.E.E.encoder_k.parameters())
    assert all(torch.equal(a, b) for a, b in zip(model.E.E.encoder_q.parameters(), model.E.E.encoder_k.parameters()))
    assert model.pad_multiple == 1


def test_queue_size_override():
    model = baselines.create_model("airnet", queue_size=768)
    assert tuple(model.E.E.queue.shape) == (256, 768)


# ----------------------------------------------------------------------------- inference behaviour
def test_dcn_starts_as_half_scaled_convolution():
    """Zero-initialised offset/mask predictor: offsets 0 and mask sigmoid(0) = 1/2."""
    model = _small().eval()
    dcn = model.R.body[0].body[0].dgm1.dcn
    x, inter = torch.randn(2, 8, 9, 7), torch.randn(2, 8, 9, 7)
    ref = 0.5 * F.conv2d(x, dcn.weight, padding=1)
    assert torch.allclose(dcn(x, inter), ref, atol=1e-5)


def test_dcn_offset_layout_is_cat_o1_o2():
    """Predictor channel 9 (first of o2) must become offset channel 9: dx of the centre tap."""
    model = _small().eval()
    dcn = model.R.body[0].body[0].dgm1.dcn
    with torch.no_grad():
        dcn.conv_offset_mask.bias[9] = 1.0  # o2[0]
        dcn.weight.zero_()
        for c in range(8):
            dcn.weight[c, c, 1, 1] = 1.0  # centre tap copies the channel
    x = torch.randn(1, 8, 6, 6)
    expect = torch.zeros_like(x)
    expect[..., :-1] = 0.5 * x[..., 1:]  # right neighbour, mask 1/2, outside -> 0
    assert torch.allclose(dcn(x, torch.zeros_like(x)), expect, atol=1e-5)


def test_eval_output_depends_only_on_first_encoder_block():
    model = _small().eval()
    x = torch.rand(2, 3, 17, 13)
    with torch.no_grad():
        ref = model(x)
        assert ref.shape == x.shape
        moco = model.E.E
        for module in (moco.encoder_q.E, moco.encoder_q.mlp, moco.encoder_k):
            for p in module.parameters():
                p.add_(torch.randn_like(p))
        moco.queue.normal_()
        assert torch.equal(model(x), ref)
        moco.encoder_q.E_pre.backbone[0].weight.mul_(2.0)
        assert not torch.allclose(model(x), ref)


def test_eval_uses_bn_running_statistics():
    model = _small().train()
    with torch.no_grad():  # give the BN layers non-trivial running statistics
        for _ in range(3):
            model(torch.rand(4, 3, 16, 16) * 2)
    model.eval()
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        batch = model(x)
        single = model(x[1:2])
        bn = model.E.E.encoder_q.E_pre.backbone[1]
        conv_out = model.E.E.encoder_q.E_pre.backbone[0](x)
        ref = (conv_out - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
        ref = ref * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
        assert torch.allclose(bn(conv_out), ref, atol=1e-5)
    assert torch.allclose(batch[1:2], single, atol=1e-5)  # no statistics across the batch


def test_no_global_input_residual():
    model = _small().eval()
    with torch.no_grad():
        model.R.tail[0].weight.zero_()
        model.R.tail[0].bias.copy_(torch.tensor([0.25, -0.5, 1.0]))
        out = model(torch.rand(2, 3, 8, 10))
    assert torch.equal(out, torch.tensor([0.25, -0.5, 1.0]).view(1, 3, 1, 1).expand(2, 3, 8, 10))


# ----------------------------------------------------------------------------- training
def test_training_loss_is_l1_plus_weighted_contrastive():
    base = _small(momentum=0.9).train()
    x, clean = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    values = {}
    for tag, weight, only in (("full", 0.1, False), ("l1", 0.0, False), ("ce", 0.1, True)):
        model = copy.deepcopy(base)
        model.contrast_weight, model.contrast_only = weight, only
        torch.manual_seed(5)  # same key crops
        values[tag] = model.training_loss(x, clean)
    assert values["full"].dim() == 0 and torch.isfinite(values["full"])
    assert torch.allclose(values["full"], values["l1"] + 0.1 * values["ce"], atol=1e-6)
    assert values["ce"] > 0
    with torch.no_grad():  # restoration term = L1 of the plain train-mode forward
        assert torch.allclose(values["l1"], F.l1_loss(copy.deepcopy(base)(x), clean), atol=1e-6)


def test_training_step_updates_key_encoder_and_queue():
    model = _small(momentum=0.9, queue_size=6).train()
    moco = model.E.E
    with torch.no_grad():
        for p in moco.encoder_q.parameters():  # make query and key encoders differ
            p.add_(0.1 * torch.randn_like(p))
    q_before = [p.detach().clone() for p in moco.encoder_q.parameters()]
    k_before = [p.detach().clone() for p in moco.encoder_k.parameters()]
    queue_before = moco.queue.clone()

    loss = model.training_loss(torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16))
    loss.backward()
    for q0, k0, k1 in zip(q_before, k_before, moco.encoder_k.parameters()):
        assert torch.allclose(k1, 0.9 * k0 + 0.1 * q0, atol=1e-6)
    assert all(p.grad is None for p in moco.encoder_k.parameters())
    assert moco.encoder_q.E_pre.backbone[0].weight.grad is not None
    assert moco.encoder_q.mlp[2].weight.grad is not None  # the contrastive term reaches the projection head
    assert model.R.tail[0].weight.grad is not None
    # 4 new unit-norm keys written at columns 0..3; pointer wraps modulo the queue size (6)
    assert int(moco.queue_ptr) == 4
    assert torch.equal(moco.queue[:, 4:], queue_before[:, 4:])
    assert torch.allclose(moco.queue[:, :4].norm(dim=0), torch.ones(4), atol=1e-5)
    model.training_loss(torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16))
    assert int(moco.queue_ptr) == 2  # (4 + 4) % 6


def test_key_view_is_an_independent_crop_of_each_sample():
    model = _small()
    x = torch.rand(3, 3, 16, 12)
    torch.manual_seed(0)
    key = model.key_view(x)
    assert key.shape == (3, 3, 12, 9)  # 0.75 of each side
    for i in range(3):
        hits = [(y, c) for y in range(5) for c in range(4) if torch.equal(x[i, :, y:y + 12, c:c + 9], key[i])]
        assert len(hits) == 1


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    """The released AirNet recomputes each group's activations in backward (memory); the numbers
    must be those of keeping them."""
    def step(checkpointing: bool):
        torch.manual_seed(3)
        model = _small(activation_checkpointing=checkpointing).train()
        x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
        loss = model.training_loss(x, y)
        loss.backward()
        return loss.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    (loss_a, grads_a), (loss_b, grads_b) = step(False), step(True)
    assert torch.equal(loss_a, loss_b) and grads_a.keys() == grads_b.keys()
    assert all(torch.allclose(grads_a[k], grads_b[k], rtol=1e-6, atol=1e-7) for k in grads_a)
    assert baselines.create_model("airnet").R.checkpoint_groups  # the release trains with it
    assert not baselines.create_model("airnet", **baselines.mini_config("airnet")).R.checkpoint_groups
