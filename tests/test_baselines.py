"""baselines package: registry, PromptIR structure and behaviour.

Structure is checked against the key/shape list extracted from the official
code (baselines/specs/promptir_state_dict.json; format in
docs/models/promptir.md#key-and-shape-lists), and that copy against a private copy beside the
checkout, when present; behaviour against hand-computed values and formulas written out here.
"""
from __future__ import annotations

import json
import pathlib

import pytest
import torch
import torch.nn.functional as F

import baselines
from baselines.promptir import ChannelAttention, ChannelNorm, GatedFeedForward, PromptGenBlock

SPECS = pathlib.Path(baselines.__file__).parent / "specs"
# A private copy of the spec lists beside the checkout, when present (absent from a fresh clone):
# the test_spec*_matches_shared tests compare specs/ with it and skip without it.
SHARED_SPECS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "specs"
SMALL = dict(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4),
             prompt_dims=(8, 8, 16), prompt_sizes=(8, 4, 2))
DEAD = ("chnl_reduce1", "chnl_reduce2", "chnl_reduce3",
        "reduce_noise_channel_1", "reduce_noise_channel_2", "reduce_noise_channel_3")


pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(name):
    return json.loads((SPECS / f"{name}_state_dict.json").read_text())


# ----------------------------------------------------------------------------- registry
def test_list_and_unknown_name():
    assert baselines.list_models() == ["adair", "airnet", "moce_ir", "moce_ir_s", "promptir"]
    with pytest.raises(ValueError) as err:
        baselines.create_model("restormer")
    assert "airnet" in str(err.value) and "promptir" in str(err.value)


def test_override_aliases():
    p = baselines.create_model("promptir", dim=8, blocks=[1, 1, 1, 1], refinement_blocks=2, heads=[1, 2, 2, 4],
                               prompt_dims=(8, 8, 16), prompt_sizes=(4, 4, 4))
    assert len(p.refinement) == 2 and len(p.latent) == 1
    with pytest.raises(ValueError, match="not both"):
        baselines.create_model("promptir", blocks=[1, 1, 1, 1], num_blocks=[1, 1, 1, 1])
    a = baselines.create_model("airnet", channels=16, num_blocks=1, queue_size=64)
    assert a.config["n_feats"] == 16 and a.config["encoder_channels"] == (16, 32, 64)
    assert a.config["moco_dim"] == 64 and a.config["n_blocks"] == 1 and a.config["n_groups"] == 5
    assert len(a.R.body) == 6 and len(a.R.body[0].body) == 2 and tuple(a.E.E.queue.shape) == (64, 64)


def test_unknown_override_names_the_accepted_ones():
    with pytest.raises(TypeError, match="num_refinement_blocks"):
        baselines.create_model("promptir", depth=3)


@pytest.mark.parametrize("name", ["promptir", "airnet"])
def test_specs_copy_matches_shared(name):
    shared = SHARED_SPECS / f"{name}_state_dict.json"
    if not shared.exists():
        pytest.skip("no private copy of the spec lists (../shared/specs) beside this checkout")
    assert json.loads(shared.read_text()) == _spec(name)


# ----------------------------------------------------------------------------- released structure
@pytest.fixture(scope="module")
def full_promptir():
    return baselines.create_model("promptir")


def test_promptir_keys_and_shapes_match_release(full_promptir):
    spec = _spec("promptir")
    sd = full_promptir.state_dict()
    expected = {k: tuple(shape) for k, shape, _ in spec["keys"]}
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert len(sd) == spec["n_tensors"] == 548
    assert {k: str(v.dtype) for k, v in sd.items()} == {k: d for k, _, d in spec["keys"]}
    # all 548 entries are parameters (no buffers), 35,592,263 in total
    assert len(list(full_promptir.parameters())) == 548
    assert sum(p.numel() for p in full_promptir.parameters()) == spec["n_params"] == 35_592_263
    assert isinstance(full_promptir.pad_multiple, int) and full_promptir.pad_multiple == 8


def test_promptir_prompt_init_is_uniform_0_1(full_promptir):
    p = full_promptir.prompt1.prompt_param
    assert p.min() >= 0 and p.max() < 1 and abs(p.mean().item() - 0.5) < 0.01


def test_promptir_decoder_false_refused():
    with pytest.raises(ValueError, match="decoder"):
        baselines.create_model("promptir", decoder=False)


# ----------------------------------------------------------------------------- building blocks
def test_layer_norm_formula():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, 4, generator=g) * 3 + 1
    norm = ChannelNorm(6, "WithBias")
    with torch.no_grad():
        norm.body.weight.copy_(torch.randn(6, generator=g))
        norm.body.bias.copy_(torch.randn(6, generator=g))
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)  # biased
    ref = (x - mu) / torch.sqrt(var + 1e-5) * norm.body.weight.view(1, -1, 1, 1) + norm.body.bias.view(1, -1, 1, 1)
    assert torch.allclose(norm(x), ref, atol=1e-5)

    bias_free = ChannelNorm(6, "BiasFree")
    ref = x / torch.sqrt(var + 1e-5)
    assert torch.allclose(bias_free(x), ref, atol=1e-5)
    assert list(dict(bias_free.named_parameters())) == ["body.weight"]


def test_channel_attention_per_head_reference():
    g = torch.Generator().manual_seed(1)
    attn = ChannelAttention(8, heads=2, bias=False)
    with torch.no_grad():
        attn.temperature.copy_(torch.tensor([0.5, 3.0]).view(2, 1, 1))
    x = torch.randn(2, 8, 5, 3, generator=g)
    qkv = attn.qkv_dwconv(attn.qkv(x)).flatten(2)  # (n, 24, hw)
    q, k, v = qkv[:, :8], qkv[:, 8:16], qkv[:, 16:]
    heads = []
    for h, t in enumerate((0.5, 3.0)):
        qh, kh, vh = (a[:, 4 * h: 4 * h + 4] for a in (q, k, v))
        qh = qh / qh.norm(dim=-1, keepdim=True)
        kh = kh / kh.norm(dim=-1, keepdim=True)
        a = torch.softmax(t * torch.einsum("ncl,ndl->ncd", qh, kh), dim=-1)  # channel x channel
        heads.append(torch.einsum("ncd,ndl->ncl", a, vh))
    ref = attn.project_out(torch.cat(heads, 1).view(2, 8, 5, 3))
    assert torch.allclose(attn(x), ref, atol=1e-5)


def test_gated_feed_forward_reference():
    ffn = GatedFeedForward(10, 2.66, bias=False)
    assert ffn.project_in.out_channels == 2 * int(10 * 2.66) == 52
    x = torch.randn(1, 10, 4, 4)
    y = ffn.dwconv(ffn.project_in(x))
    ref = ffn.project_out(F.gelu(y[:, :26]) * y[:, 26:])
    assert torch.allclose(ffn(x), ref, atol=1e-6)


def _prompt_block(values, size=2, dim=3):
    """Prompt block whose component j is the constant values[j] and whose conv is the identity."""
    blk = PromptGenBlock(prompt_dim=dim, length=len(values), size=size, feat_dim=4)
    with torch.no_grad():
        for j, v in enumerate(values):
            blk.prompt_param[0, j].fill_(v)
        blk.conv3x3.weight.zero_()
        for c in range(dim):
            blk.conv3x3.weight[c, c, 1, 1] = 1.0
        blk.linear_layer.weight.zero_()
    return blk


def test_prompt_block_selects_and_mixes_components():
    values = [1.0, 2.0, 4.0, 8.0, 16.0]
    blk = _prompt_block(values)
    x = torch.randn(2, 4, 6, 5)
    with torch.no_grad():
        blk.linear_layer.bias.copy_(torch.tensor([0.0, 0.0, 50.0, 0.0, 0.0]))  # softmax ~ one-hot on component 2
    out = blk(x)
    assert out.shape == (2, 3, 6, 5)
    assert torch.allclose(out, torch.full_like(out, 4.0), atol=1e-4)
    with torch.no_grad():
        blk.linear_layer.bias.zero_()  # uniform weights: the mean component
    assert torch.allclose(blk(x), torch.full_like(out, sum(values) / 5), atol=1e-5)
    with torch.no_grad():  # weights depend on the input's spatial mean
        blk.linear_layer.weight[1, 0] = 100.0
    x = torch.zeros(1, 4, 3, 3)
    x[:, 0] = 1.0
    assert torch.allclose(blk(x), torch.full((1, 3, 3, 3), 2.0), atol=1e-4)


def test_prompt_block_bilinear_resize_half_pixel():
    blk = _prompt_block([0.0], size=2, dim=1)
    with torch.no_grad():
        blk.prompt_param[0, 0, 0] = torch.tensor([[0.0, 4.0], [0.0, 4.0]])
    out = blk(torch.zeros(1, 4, 4, 4))
    # align_corners=False: 2 -> 4 samples at source x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped)
    assert torch.allclose(out[0, 0], torch.tensor([0.0, 1.0, 3.0, 4.0]).expand(4, 4), atol=1e-6)


# ----------------------------------------------------------------------------- whole network, small
@pytest.fixture(scope="module")
def small_promptir():
    torch.manual_seed(0)
    return baselines.create_model("promptir", **SMALL).eval()


def test_small_config_aliases_and_shapes(small_promptir):
    alias = baselines.create_model("promptir", dim=8, blocks=[1, 1, 1, 1], refinement=1, heads=[1, 2, 2, 4],
                                   prompt_dims=(8, 8, 16), prompt_sizes=(8, 4, 2))
    assert alias.state_dict().keys() == small_promptir.state_dict().keys()
    with torch.no_grad():
        for shape in [(1, 3, 16, 16), (2, 3, 20, 27), (1, 3, 5, 9), (1, 3, 3, 4)]:  # last: too small to reflect
            assert small_promptir(torch.rand(*shape)).shape == shape


def test_padding_is_reflect_then_crop(small_promptir):
    x = torch.rand(2, 3, 21, 30)
    padded = F.pad(x, (0, 2, 0, 3), mode="reflect")  # to 24 x 32
    with torch.no_grad():
        ref = small_promptir.forward_unpadded(padded)[..., :21, :30]
        out = small_promptir(x)
    assert torch.allclose(out, ref, atol=1e-6)
    with pytest.raises(RuntimeError):  # the core really needs multiples of 8
        small_promptir.forward_unpadded(x)


def test_global_residual(small_promptir):
    model = baselines.create_model("promptir", **SMALL).eval()
    model.load_state_dict(small_promptir.state_dict())
    with torch.no_grad():
        model.output.weight.zero_()
        x = torch.rand(1, 3, 13, 19)
        assert torch.equal(model(x), x)


def test_only_dead_modules_get_no_gradient():
    torch.manual_seed(1)
    model = baselines.create_model("promptir", **SMALL).train()
    F.l1_loss(model(torch.rand(2, 3, 16, 16)), torch.rand(2, 3, 16, 16)).backward()
    no_grad = sorted({n.split(".")[0] for n, p in model.named_parameters() if p.grad is None})
    assert no_grad == sorted(DEAD)
    assert model.prompt1.prompt_param.grad.abs().sum() > 0

    frozen = baselines.create_model("promptir", learnable_prompts=False, **SMALL).train()
    F.l1_loss(frozen(torch.rand(1, 3, 16, 16)), torch.zeros(1, 3, 16, 16)).backward()
    assert all(getattr(frozen, f"prompt{i}").prompt_param.grad is None for i in (1, 2, 3))
    assert frozen.prompt1.linear_layer.weight.grad is not None


def test_mini_profile_configs():
    counts = {}
    for name in ("promptir", "airnet"):
        model = baselines.create_model(name, **baselines.mini_config(name)).train()
        counts[name] = sum(p.numel() for p in model.parameters())
        x = torch.rand(2, 3, 32, 32)
        loss = model.training_loss(x, x) if hasattr(model, "training_loss") else F.l1_loss(model(x), x)
        loss.backward()
        assert torch.isfinite(loss)
        with torch.no_grad():
            assert model.eval()(x).shape == x.shape
    assert counts == {"promptir": 1_065_546, "airnet": 228_559}
    assert not hasattr(baselines.create_model("promptir", **SMALL), "training_loss")
