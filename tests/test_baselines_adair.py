"""AdaIR port: released structure, frequency split, padding, checkpoint loading.

Structure is checked against the key/shape list extracted from the official code
(baselines/specs/adair_state_dict.json; docs/models/adair.md#released-model), and that copy
against a private copy beside the checkout, when present; behaviour against
hand-computed values and references written out here.
"""
from __future__ import annotations

import json
import pathlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import baselines
from baselines.adair import AdaIR, CrossChannelAttention, FreModule, FreRefine, fft_mask_half_size

SPECS = pathlib.Path(baselines.__file__).parent / "specs"
# A private copy of the spec lists beside the checkout, when present (absent from a fresh clone):
# the test_spec*_matches_shared tests compare specs/ with it and skip without it.
SHARED_SPECS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "specs"
SMALL = dict(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 4))
# Parameters that get no gradient: fre*.conv and fre*.score_gen are never called by the
# official forward; fre*.rate_conv only sets the integer mask size.
NO_GRAD = sorted(f"fre{i}.{name}" for i in (1, 2, 3) for name in
                 ("conv.weight", "score_gen.weight", "score_gen.bias", "rate_conv.0.weight", "rate_conv.2.weight"))

pytestmark = pytest.mark.usefixtures("one_thread")


def _spec():
    return json.loads((SPECS / "adair_state_dict.json").read_text())


def _entries(model):
    return [[k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items()]


# ----------------------------------------------------------------------------- released structure
def test_spec_copy_matches_shared():
    shared = SHARED_SPECS / "adair_state_dict.json"
    if not shared.exists():
        pytest.skip("no private copy of the spec lists (../shared/specs) beside this checkout")
    assert json.loads(shared.read_text()) == _spec()


def test_release_keys_shapes_dtypes_order_and_count():
    spec = _spec()
    with torch.device("meta"):
        model = AdaIR()
    assert _entries(model) == spec["keys"]  # same keys, shapes, dtypes, in registration order
    assert len(spec["keys"]) == spec["n_tensors"] == 587
    assert len(list(model.parameters())) == 587 and list(model.buffers()) == [] and spec["n_buffers"] == 0
    assert sum(p.numel() for p in model.parameters()) == spec["n_params"] == 28_784_824
    assert isinstance(AdaIR.pad_multiple, int) and AdaIR.pad_multiple == 8


def test_create_model_builds_the_release():
    with torch.device("meta"):
        model = baselines.create_model("adair")
    assert isinstance(model, AdaIR) and model.decoder
    assert _entries(model) == _spec()["keys"]
    assert sum(p.numel() for p in model.parameters()) == 28_784_824


def test_decoder_false_is_a_plain_unet():
    with torch.device("meta"):
        plain = AdaIR(decoder=False)
    keys = list(plain.state_dict())
    assert not any(k.startswith("fre") for k in keys)
    assert keys == [k for k, _, _ in _spec()["keys"] if not k.startswith("fre")]


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="heads"):
        AdaIR(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 3, 4))
    with pytest.raises(ValueError, match="16 channels"):
        AdaIR(dim=4, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 1, 1, 1))


# ----------------------------------------------------------------------------- FFT mask
def test_mask_half_size_by_hand():
    # half-size = int((h // 128) * t), int((w // 128) * t)
    for t in (0.0, 0.3, 0.99, 0.9999):
        assert fft_mask_half_size(128, 128, t) == (0, 0)  # 128 // 128 = 1, int(1 * t) = 0 for t < 1
    assert fft_mask_half_size(128, 128, 1.0) == (1, 1)  # only a saturated float32 sigmoid (logit > ~17)
    assert fft_mask_half_size(128, 128, torch.sigmoid(torch.tensor(20.0))) == (1, 1)
    assert fft_mask_half_size(127, 255, 1.0) == (0, 1)  # 0 * 1, 1 * 1
    assert fft_mask_half_size(256, 320, 0.7) == (1, 1)  # int(2 * 0.7), int(2 * 0.7)
    assert fft_mask_half_size(512, 512, 0.9) == (3, 3)  # int(4 * 0.9) = int(3.6)
    assert fft_mask_half_size(255, 1000, 0.99) == (0, 6)  # int(1 * 0.99), int(7 * 0.99) = int(6.93)
    assert fft_mask_half_size(384, 640, (0.9, 0.7)) == (2, 3)  # int(2.7), int(3.5)
    assert fft_mask_half_size(256, 256, torch.tensor([1.0, 0.5])) == (2, 1)
    # every feature map under 256 px on an axis gets an empty mask for any sigmoid rate < 1
    assert all(fft_mask_half_size(s, s, 0.999)[0] == 0 for s in range(1, 256))


class _FixedRates(nn.Module):
    """Stands in for rate_conv: fixed per-sample logits, so sigmoid gives the chosen rates."""

    def __init__(self, rates):
        super().__init__()
        self.logits = torch.logit(torch.tensor(rates, dtype=torch.float32)).view(len(rates), 2, 1, 1)

    def forward(self, pooled):
        return self.logits


def _reference_bands(feat, halves):
    """|ifft2(F * M)| and |ifft2(F * (1 - M))| with M built on unshifted frequencies -h..h-1 x -w..w-1."""
    n, _, h, w = feat.shape
    mask = torch.zeros(n, 1, h, w)
    for i, (hh, hw) in enumerate(halves):
        rows = [k % h for k in range(-hh, hh)]
        cols = [k % w for k in range(-hw, hw)]
        for r in rows:
            mask[i, 0, r, cols] = 1
    spec = torch.fft.fft2(feat)
    return torch.fft.ifft2(spec * (1 - mask)).abs(), torch.fft.ifft2(spec * mask).abs(), mask


def test_low_band_is_exactly_zero_when_the_mask_is_empty():
    torch.manual_seed(0)
    fre = FreModule(16, 2, False)
    image = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.count_nonzero(fre.low_pass_mask(fre.conv1(image))) == 0
        high, low = fre.split_frequencies(image)
        assert torch.equal(low, torch.zeros_like(low))
        assert torch.allclose(high, fre.conv1(image).abs(), atol=1e-5)  # the whole spectrum round-trips


def test_non_empty_mask_against_independent_reference():
    torch.manual_seed(0)
    fre = FreModule(16, 2, False)
    fre.rate_conv = _FixedRates([(0.9, 0.7), (0.2, 0.2)])  # halves (2, 3) and (0, 1) -> empty box
    image = torch.rand(2, 3, 384, 640)
    with torch.no_grad():
        feat = fre.conv1(image)
        mask = fre.low_pass_mask(feat)
        high, low = fre.split_frequencies(image)
    ref_high, ref_low, ref_mask = _reference_bands(feat, [(2, 3), (0, 0)])
    assert int(mask[0].sum()) == 4 * 6 and int(mask[1].sum()) == 0
    assert torch.equal(mask[0, 0, 192 - 2:192 + 2, 320 - 3:320 + 3], torch.ones(4, 6))
    assert torch.equal(torch.roll(mask, shifts=(-192, -320), dims=(2, 3)), ref_mask)
    assert torch.allclose(low, ref_low, atol=1e-6) and low[0].abs().max() > 1e-3
    assert torch.equal(low[1], torch.zeros_like(low[1]))
    assert torch.allclose(high, ref_high, atol=1e-5)


# ----------------------------------------------------------------------------- frequency block parts
def test_cross_attention_per_head_reference():
    g = torch.Generator().manual_seed(1)
    attn = CrossChannelAttention(8, heads=2, bias=False)
    with torch.no_grad():
        attn.temperature.copy_(torch.tensor([0.5, 3.0]).view(2, 1, 1))
    x, y = torch.randn(2, 8, 5, 3, generator=g), torch.randn(2, 8, 5, 3, generator=g)
    with torch.no_grad():
        out = attn(x, y)
        q = attn.q_dwconv(attn.q(x)).flatten(2)
        kv = attn.kv_dwconv(attn.kv(y)).flatten(2)
        k, v = kv[:, :8], kv[:, 8:]
        heads = []
        for hd, temp in enumerate((0.5, 3.0)):
            sl = slice(4 * hd, 4 * hd + 4)
            qn = q[:, sl] / q[:, sl].norm(dim=-1, keepdim=True)
            kn = k[:, sl] / k[:, sl].norm(dim=-1, keepdim=True)
            heads.append(torch.softmax(qn @ kn.transpose(1, 2) * temp, dim=-1) @ v[:, sl])
        ref = attn.project_out(torch.cat(heads, dim=1).view(2, 8, 5, 3))
    assert torch.allclose(out, ref, atol=1e-5)
    with pytest.raises(ValueError):
        attn(x, y[..., :2])


def test_frequency_refine_gates():
    g = torch.Generator().manual_seed(2)
    ref_mod = FreRefine(32)
    low, high = torch.randn(2, 32, 6, 7, generator=g), torch.randn(2, 32, 6, 7, generator=g)
    with torch.no_grad():
        out = ref_mod(low, high)
        pooled = torch.cat([high.max(1, keepdim=True)[0], high.mean(1, keepdim=True)], 1)
        pixel = torch.sigmoid(F.conv2d(pooled, ref_mod.SpatialGate.spatial.weight, padding=3))
        w0, w2 = ref_mod.ChannelGate.mlp[0].weight, ref_mod.ChannelGate.mlp[2].weight
        mlp = lambda v: F.conv2d(F.relu(F.conv2d(v, w0)), w2)  # noqa: E731
        channel = torch.sigmoid(mlp(low.mean((2, 3), keepdim=True)) + mlp(low.amax((2, 3), keepdim=True)))
        ref = ref_mod.proj(low * pixel + high * channel)
    assert torch.allclose(out, ref, atol=1e-5)


def test_fresh_frequency_block_is_the_identity():
    fre = FreModule(16, 2, False)  # para1 = 0, para2 = 1
    feat = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        assert torch.equal(fre(torch.rand(1, 3, 64, 64), feat), feat)


# ----------------------------------------------------------------------------- whole network, small
@pytest.fixture(scope="module")
def small_adair():
    torch.manual_seed(0)
    model = baselines.create_model("adair", **SMALL).eval()
    with torch.no_grad():  # make the frequency blocks matter (fresh ones are the identity)
        for i in (1, 2, 3):
            getattr(model, f"fre{i}").para1.fill_(0.5)
    return model


def test_mini_config_trains_and_keeps_odd_sizes():
    assert baselines.mini_config("adair") == dict(dim=12, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1,
                                                  heads=(1, 2, 4, 8))
    torch.manual_seed(0)
    model = baselines.create_model("adair", **baselines.mini_config("adair")).train()
    assert sum(p.numel() for p in model.parameters()) == 640_409
    assert not hasattr(model, "training_loss")
    x = torch.rand(2, 3, 37, 45, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 3, 37, 45)
    loss = F.l1_loss(out, torch.rand(2, 3, 37, 45))
    loss.backward()
    assert torch.isfinite(loss) and x.grad is not None and x.grad.abs().sum() > 0
    assert sorted(n for n, p in model.named_parameters() if p.grad is None) == NO_GRAD
    assert model.fre1.para1.grad.abs().sum() > 0  # the frequency blocks are trained


def test_padding_is_reflect_then_crop(small_adair):
    x = torch.rand(2, 3, 21, 30)
    padded = F.pad(x, (0, 2, 0, 3), mode="reflect")  # to 24 x 32
    with torch.no_grad():
        ref = small_adair.forward_unpadded(padded)[..., :21, :30]
        out = small_adair(x)
        assert small_adair(torch.rand(1, 3, 3, 5)).shape == (1, 3, 3, 5)  # too small to reflect
    assert torch.allclose(out, ref, atol=1e-6)
    with pytest.raises(RuntimeError):  # the core really needs multiples of 8
        small_adair.forward_unpadded(x)


def test_global_residual(small_adair):
    model = baselines.create_model("adair", **SMALL).eval()
    model.load_state_dict(small_adair.state_dict())
    with torch.no_grad():
        model.output.weight.zero_()
        x = torch.rand(1, 3, 13, 19)
        assert torch.equal(model(x), x)


def test_fft_flops_of_the_forward():
    from harness.profile import count_flops

    model = baselines.create_model("adair", **baselines.mini_config("adair")).eval()
    _, by_op = count_flops(model, torch.rand(1, 3, 64, 64))
    # one forward and two inverse 2-D transforms per block, 5 * numel * log2(h * w) each:
    # fre1 96 x 8 x 8, fre2 48 x 16 x 16, fre3 24 x 32 x 32
    hand = 3 * 5 * (96 * 64 * 6 + 48 * 256 * 8 + 24 * 1024 * 10)
    assert by_op["aten._fft_c2c"] == hand == 5_713_920


# ----------------------------------------------------------------------------- checkpoint loading
def _lightning_file(path, tensors):
    torch.save({"state_dict": {"net." + k: v for k, v in tensors.items()}, "epoch": 3}, path)
    return path


def test_loads_a_lightning_checkpoint_strictly(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {k: torch.randn(*shape, generator=g) for k, shape, _ in _spec()["keys"]}
    model = baselines.load_checkpoint("adair", _lightning_file(tmp_path / "adair.ckpt", tensors))
    assert isinstance(model, AdaIR) and not model.training
    sd = model.state_dict()
    assert list(sd) == list(tensors) and all(torch.equal(sd[k], v) for k, v in tensors.items())


def test_mismatched_checkpoint_is_reported(tmp_path):
    tensors = {k: torch.zeros(*shape) for k, shape, _ in _spec()["keys"]}
    del tensors["fre2.score_gen.bias"]
    tensors["fre1.para1"] = torch.zeros(192, 1, 1)
    tensors["fre4.para1"] = torch.zeros(1)
    path = _lightning_file(tmp_path / "bad.ckpt", tensors)
    with pytest.raises(baselines.CheckpointMismatchError) as err:
        baselines.load_checkpoint("adair", path)
    assert err.value.missing == ["fre2.score_gen.bias"]
    assert err.value.unexpected == ["fre4.para1"]
    assert err.value.mismatched == [("fre1.para1", (192, 1, 1), (384, 1, 1))]
    message = str(err.value)
    assert "fre2.score_gen.bias" in message and "fre4.para1" in message and "fre1.para1" in message
