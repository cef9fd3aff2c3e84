"""MoCE-IR / MoCE-IR-S: released structure, router randomness, losses, checkpoint loading.

Structure is checked against the key/shape lists extracted from the official code
(baselines/specs/moce_ir*_state_dict.json; docs/models/moce_ir.md#released-models), and those
copies against a private copy beside the checkout, when present; behaviour against
formulas written out here (docs/models/moce_ir.md), never against the module itself.
"""
from __future__ import annotations

import json
import math
import pathlib

import pytest
import torch
import torch.nn.functional as F

import baselines
from baselines import CheckpointMismatchError
from baselines.moce_ir import MINI_CONFIG, MINI_CONFIG_S, AdapterLayer, MoCEIR, RoutingFunction, fft_l1_loss

SPECS = pathlib.Path(baselines.__file__).parent / "specs"
# A private copy of the spec lists beside the checkout, when present (absent from a fresh clone):
# the test_spec*_matches_shared tests compare specs/ with it and skip without it.
SHARED_SPECS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "specs"
RELEASES = {"moce_ir": (48, 25_353_796), "moce_ir_s": (32, 11_477_752)}
TINY = dict(MINI_CONFIG_S)  # dim 8, one block per stage: 3 decoder blocks, 3 routers
N_EXPERTS = 4


pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(name):
    return json.loads((SPECS / f"{name}_state_dict.json").read_text())


def _tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return MoCEIR(**{**TINY, **kw})


class _RouterTap:
    """Records each router's inputs (pooled-feature input x, freq_emb) and outputs, in call order."""

    def __init__(self, model):
        self.calls = []
        self.handles = [r.register_forward_hook(self._hook) for r in model.routers()]

    def _hook(self, module, args, out):
        x, freq_emb = args[0], args[1]
        self.calls.append((module, x.detach(), freq_emb.detach(), [o.detach() for o in out[:3]]))

    def close(self):
        for h in self.handles:
            h.remove()


def _hand_logits(router, x, freq_emb):
    """W_g · mean_hw(x) + W_f · freq_emb (both linear layers without bias)."""
    return x.mean(dim=(2, 3)) @ router.gate[2].weight.T + freq_emb @ router.freq_gate.weight.T


def _cv2(v):
    """(unbiased std / (mean + 1e-8))^2 over a 1-D tensor."""
    mean = v.sum() / v.numel()
    std = torch.sqrt(((v - mean) ** 2).sum() / (v.numel() - 1))
    return (std / (mean + 1e-8)) ** 2


# ----------------------------------------------------------------------------- released structure
@pytest.mark.parametrize("name", ["moce_ir", "moce_ir_s"])
def test_specs_copy_matches_shared(name):
    shared = SHARED_SPECS / f"{name}_state_dict.json"
    if not shared.exists():
        pytest.skip("no private copy of the spec lists (../shared/specs) beside this checkout")
    assert json.loads(shared.read_text()) == _spec(name)


@pytest.mark.parametrize("name", ["moce_ir", "moce_ir_s"])
def test_keys_shapes_dtypes_order_and_counts_match_release(name):
    spec = _spec(name)
    dim, n_params = RELEASES[name]
    assert f"'dim': {dim}" in spec["model"]
    with torch.device("meta"):
        model = baselines.create_model(name)
    sd = model.state_dict()
    assert [[k, list(v.shape), str(v.dtype)] for k, v in sd.items()] == spec["keys"]  # order included
    assert len(sd) == spec["n_tensors"] == 1262
    buffers = dict(model.named_buffers())
    assert len(buffers) == spec["n_buffers"] == 10
    assert all(k.endswith("adapter.routing.complexity") for k in buffers)
    params = dict(model.named_parameters())
    assert len(params) + len(buffers) == 1262
    assert sum(p.numel() for p in params.values()) == spec["n_params"] == n_params
    assert model.pad_multiple == 8 and isinstance(model.pad_multiple, int)
    assert MoCEIR.stochastic is True and model.router_noise is True
    assert len(model.routers()) == 10  # one per decoder block: 4 + 4 + 2


def test_defaults_are_the_released_moce_ir():
    with torch.device("meta"):
        default = MoCEIR()
        release = baselines.create_model("moce_ir")
    assert default.config == release.config and default.config["dim"] == 48
    assert default.config["num_dec_blocks"] == (2, 4, 4) and default.config["rank_type"] == "spread"


def _expert_counts_from_spec(spec, prefix):
    counts = [0] * N_EXPERTS
    for key, shape, _ in spec["keys"]:
        if key.startswith(prefix + "adapter.experts."):
            j = int(key[len(prefix + "adapter.experts."):].split(".")[0])
            counts[j] += math.prod(shape)
    return torch.tensor(counts, dtype=torch.float64)


def test_complexity_buffer_is_expert_size_over_max():
    spec = _spec("moce_ir")
    counts = _expert_counts_from_spec(spec, "dec.0.2.layers.0.")
    layer = AdapterLayer(192, 2, N_EXPERTS, 1, baselines.moce_ir.FFTAttention, 1, "constant", "spread", 384,
                         False, "max")  # release width at decoder level 3
    assert layer.routing.complexity.dtype == torch.float32
    assert torch.allclose(layer.routing.complexity.double(), counts / counts.max(), atol=1e-7)
    assert [e[0].proj[0].out_channels for e in layer.experts] == [24, 48, 96, 192]  # spread ranks
    assert [e[0].body.patch_size for e in layer.experts] == [4, 8, 16, 32]
    unscaled = AdapterLayer(16, 2, N_EXPERTS, 1, baselines.moce_ir.FFTAttention, 1, "constant", "spread", 32,
                            False, None)
    assert unscaled.routing.complexity.dtype == torch.int64  # official: no scaling keeps the int counts
    assert unscaled.routing.complexity.tolist() == [sum(p.numel() for p in e.parameters()) for e in unscaled.experts]


def test_high_pass_filter_init_and_trainable():
    model = _tiny()
    w = model.freq_embed.high_conv[0].conv.weight
    lap = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
    assert torch.equal(w, lap.expand_as(w)) and w.requires_grad


@pytest.mark.parametrize("kw, word", [
    (dict(depth_type="quadratic"), "depth_type"),
    (dict(rank_type="pyramid"), "rank_type"),
    (dict(complexity_scale="mean"), "complexity_scale"),
    (dict(dim=4), "rank_type"),  # spread ranks 4//8 = 0
    (dict(depth_type=0), "depth"),
    (dict(topk=5), "topk"),
    (dict(num_dec_blocks=(1, 1)), "num_dec_blocks"),
])
def test_unsupported_configurations_raise(kw, word):
    with pytest.raises(ValueError, match=word):
        MoCEIR(**{**TINY, **kw})


# ----------------------------------------------------------------------------- router randomness
def test_noise_off_is_deterministic_and_leaves_rng_alone():
    model = _tiny().eval()
    model.router_noise = False
    x = torch.rand(2, 3, 24, 32)
    with torch.no_grad():
        torch.manual_seed(1)
        before = torch.get_rng_state()
        a = model(x)
        assert torch.equal(torch.get_rng_state(), before)
        torch.manual_seed(2)
        b = model(x)
        c = model(x)
    assert torch.equal(a, b) and torch.equal(b, c)


def test_noise_on_is_seeded_reproducible_and_seed_dependent():
    model = _tiny().eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.manual_seed(7)
        before = torch.get_rng_state()
        a = model(x)
        assert not torch.equal(torch.get_rng_state(), before)  # eval mode draws too
        torch.manual_seed(7)
        b = model(x)
        torch.manual_seed(8)
        c = model(x)
        model.router_noise = False
        d = model(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c) and not torch.allclose(a, d)


@pytest.mark.parametrize("training", [False, True])
def test_noise_draws_are_one_randn_per_router_in_decoder_order(training):
    """Exactly len(routers) draws of shape (N, num_experts), nothing else; the gates follow from them."""
    model = _tiny().train(training)
    n = 3
    x = torch.rand(n, 3, 16, 24)
    tap = _RouterTap(model)
    torch.manual_seed(11)
    with torch.set_grad_enabled(training):
        model(x)
    after_forward = torch.get_rng_state()
    tap.close()

    torch.manual_seed(11)
    draws = [torch.randn(n, N_EXPERTS) for _ in model.routers()]
    assert torch.equal(torch.get_rng_state(), after_forward)
    assert len(tap.calls) == len(draws) == 3 == sum(TINY["num_dec_blocks"])
    assert [c[0] for c in tap.calls] == model.routers()  # call order = registration order
    assert sum(d.numel() for d in draws) == sum(c[3][0].numel() for c in tap.calls)  # = sizes of the logits
    for (router, xr, freq_emb, (gates, idx, vals)), draw in zip(tap.calls, draws):
        noisy = _hand_logits(router, xr, freq_emb) + draw / N_EXPERTS
        scores = torch.exp(noisy) / torch.exp(noisy).sum(dim=1, keepdim=True)
        best = scores.argmax(dim=1)
        assert torch.equal(idx[:, 0], best)
        assert torch.allclose(vals[:, 0], scores.gather(1, best[:, None])[:, 0], atol=1e-6)
        expected_gates = torch.zeros(n, N_EXPERTS).scatter(1, best[:, None], vals[:, :1])
        assert torch.equal(gates, expected_gates)


def test_adapter_combines_per_sample_choices():
    """Two samples routed to different experts: each gets score x its own expert (also batched eval)."""
    torch.manual_seed(0)
    layer = AdapterLayer(8, 2, N_EXPERTS, 1, baselines.moce_ir.FFTAttention, 1, "constant", "spread", 16,
                         False, "max").eval()
    with torch.no_grad():
        layer.routing.freq_gate.weight.zero_()
        w = torch.zeros(N_EXPERTS, 8)
        w[0, 0], w[2, 0] = 50.0, -50.0  # channel-0 mean > 0 -> expert 0, < 0 -> expert 2
        layer.routing.gate[2].weight.copy_(w)
    x = torch.randn(2, 8, 12, 12)
    x[0, 0] = 1.0
    x[1, 0] = -1.0
    shared = torch.randn(2, 8, 12, 12)
    freq = torch.randn(2, 16)
    with torch.no_grad():
        out = layer(x, freq, shared, noise=False)
        _, idx, vals, _ = layer.routing(x, freq, noise=False)
        assert idx[:, 0].tolist() == [0, 2]
        for b, e in enumerate((0, 2)):
            ref = layer.proj_out(vals[b, 0] * layer.experts[e](x[b:b + 1], shared[b:b + 1]))
            assert torch.allclose(out[b:b + 1], ref, atol=1e-6)
            assert torch.allclose(layer(x[b:b + 1], freq[b:b + 1], shared[b:b + 1], noise=False), ref, atol=1e-6)


def test_batched_eval_equals_per_image_eval_without_noise():
    model = _tiny(3).eval()
    model.router_noise = False
    x = torch.rand(3, 3, 16, 16)
    x[1] = 1 - x[1]
    x[2] = 0.1 * x[2]
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i:i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)


# ----------------------------------------------------------------------------- shapes and padding
def test_odd_size_keeps_shape_and_is_reflect_pad_then_crop():
    model = _tiny().eval()
    x = torch.rand(1, 3, 37, 45)
    padded = F.pad(x, (0, 3, 0, 3), mode="reflect")  # to 40 x 48
    with torch.no_grad():
        torch.manual_seed(5)
        out = model(x)
        torch.manual_seed(5)
        ref = model.forward_unpadded(padded)[..., :37, :45]
    assert out.shape == x.shape and torch.equal(out, ref)
    with pytest.raises(RuntimeError):
        model.forward_unpadded(x)


def test_global_residual():
    model = _tiny().eval()
    with torch.no_grad():
        model.output.weight.zero_()
        x = torch.rand(1, 3, 13, 19)
        assert torch.equal(model(x), x)


# ----------------------------------------------------------------------------- losses
def test_fft_loss_formula():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 6, 7, generator=g), torch.rand(2, 3, 6, 7, generator=g)
    half = 7 // 2 + 1
    d = torch.fft.fft2(a)[..., :half] - torch.fft.fft2(b)[..., :half]  # rfft2 = first W//2+1 columns
    ref = (d.real.abs().sum() + d.imag.abs().sum()) / (2 * 2 * 3 * 6 * half)
    assert torch.allclose(fft_l1_loss(a, b), ref, rtol=1e-5)


def test_training_loss_equals_hand_recomputation_of_its_three_terms():
    model = _tiny(2).train()
    n = 4
    g = torch.Generator().manual_seed(3)
    degraded, clean = torch.rand(n, 3, 16, 16, generator=g), torch.rand(n, 3, 16, 16, generator=g)
    tap = _RouterTap(model)
    torch.manual_seed(21)
    loss = model.training_loss(degraded, clean)
    tap.close()
    torch.manual_seed(21)
    draws = [torch.randn(n, N_EXPERTS) for _ in model.routers()]
    torch.manual_seed(21)
    with torch.no_grad():
        restored = model(degraded)  # same draws, same output

    l1 = (restored - clean).abs().mean()
    half = 16 // 2 + 1
    d = torch.fft.fft2(restored)[..., :half] - torch.fft.fft2(clean)[..., :half]
    fft = (d.real.abs().sum() + d.imag.abs().sum()) / (2 * restored.numel() // 16 * half)
    balance = 0.0
    for (router, xr, freq_emb, _), draw in zip(tap.calls, draws):
        logits = _hand_logits(router, xr, freq_emb)
        noisy = logits + draw / N_EXPERTS
        importance = torch.softmax(logits, dim=1).sum(dim=0)
        threshold = noisy.max(dim=1, keepdim=True).values  # top-1: the k-th best is the best
        z = (threshold - logits) * N_EXPERTS  # / noise_std
        p = 1 - 0.5 * (1 + torch.erf(z / math.sqrt(2)))
        balance = balance + 0.5 * _cv2(importance) + 0.5 * _cv2(p.mean(dim=0))
    balance = balance / len(draws)

    assert torch.isfinite(loss)
    assert torch.allclose(model.aux_loss.detach(), balance, rtol=1e-5, atol=1e-7)
    assert torch.allclose(loss.detach(), l1 + 0.1 * fft + 0.01 * balance, rtol=1e-5, atol=1e-7)
    assert model.fft_loss_weight == 0.1 and model.balance_loss_weight == 0.01

    loss.backward()
    for router in model.routers():  # the gates and the auxiliary loss train the routers
        assert router.gate[2].weight.grad is not None and router.gate[2].weight.grad.abs().sum() > 0
        assert router.freq_gate.weight.grad is not None and router.freq_gate.weight.grad.abs().sum() > 0
    assert model.patch_embed.proj.weight.grad.abs().sum() > 0


def test_aux_loss_is_zero_in_eval():
    model = _tiny().eval()
    x, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.manual_seed(0)
        loss = model.training_loss(x, y)
        assert float(model.aux_loss) == 0.0
        torch.manual_seed(0)
        out = model(x)
    assert torch.allclose(loss, F.l1_loss(out, y) + 0.1 * fft_l1_loss(out, y))


def test_load_loss_with_top2_uses_second_best_threshold():
    torch.manual_seed(0)
    router = RoutingFunction(4, 4, N_EXPERTS, 2, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    logits = torch.tensor([[0.3, -0.2, 0.9, 0.1], [1.0, 0.5, -1.0, 0.0]])
    noisy = logits + torch.tensor([[0.1, 0.0, -0.1, 0.2], [0.0, 0.3, 0.0, -0.2]])
    second = noisy.sort(dim=1, descending=True).values[:, 1:2]
    p = 1 - 0.5 * (1 + torch.erf((second - logits) * N_EXPERTS / math.sqrt(2)))
    assert torch.allclose(router.load_loss(logits, noisy), _cv2(p.mean(dim=0)), rtol=1e-6)
    router.use_complexity_bias = True  # with_complexity: importance weighted by the normalised sizes
    probs = logits.softmax(dim=1)
    assert torch.allclose(router.importance_loss(probs), _cv2(probs.sum(0) * torch.tensor([1.0, 2.0, 3.0, 4.0])))


# ----------------------------------------------------------------------------- mini profiles
def test_mini_profiles():
    assert baselines.mini_config("moce_ir") == MINI_CONFIG and baselines.mini_config("moce_ir_s") == MINI_CONFIG_S
    counts = {}
    for name in ("moce_ir", "moce_ir_s"):
        torch.manual_seed(0)
        model = baselines.create_model(name, **baselines.mini_config(name)).train()
        counts[name] = sum(p.numel() for p in model.parameters())
        assert len(model.routers()) == 3 and model.pad_multiple == 8
        x = torch.rand(2, 3, 32, 32)
        loss = model.training_loss(x, x)
        loss.backward()
        assert torch.isfinite(loss)
        with torch.no_grad():
            assert model.eval()(x).shape == x.shape
    assert counts == {"moce_ir": 534_327, "moce_ir_s": 249_043}


# ----------------------------------------------------------------------------- checkpoints
def _synthetic_state_dict(name, seed=0):
    """Random tensors of the spec's shapes; complexity buffers as the release holds them."""
    spec = _spec(name)
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape, dtype in spec["keys"]:
        assert dtype == "torch.float32"
        if key.endswith("adapter.routing.complexity"):
            counts = _expert_counts_from_spec(spec, key[: -len("adapter.routing.complexity")])
            sd[key] = (counts / counts.max()).float()
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
            sd[key] = torch.randn(shape, generator=g) / fan_in ** 0.5 * 0.5
    return sd


@pytest.mark.parametrize("name", ["moce_ir", "moce_ir_s"])
def test_lightning_checkpoint_loads_strictly(tmp_path, name):
    sd = _synthetic_state_dict(name)
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 119, "global_step": 1, "state_dict": {"net." + k: v for k, v in sd.items()},
                "optimizer_states": [], "lr_schedulers": []}, path)
    model = baselines.load_checkpoint(name, path)
    assert isinstance(model, MoCEIR) and not model.training
    assert model.config["dim"] == RELEASES[name][0]
    loaded = model.state_dict()
    assert list(loaded) == list(sd)
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
    del sd
    with torch.no_grad():
        torch.manual_seed(0)
        out = model(torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()


def test_mismatched_checkpoint_lists_missing_and_misshaped_keys(tmp_path):
    sd = _synthetic_state_dict("moce_ir_s")
    missing = "dec.1.2.layers.3.adapter.routing.complexity"
    misshaped = "dec.0.2.layers.0.adapter.experts.3.0.proj.0.weight"  # [128, 128, 1, 1] in MoCE-IR-S
    del sd[missing]
    sd[misshaped] = torch.zeros(32, 128, 1, 1)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"net." + k: v for k, v in sd.items()}}, path)
    with pytest.raises(CheckpointMismatchError) as err:
        baselines.load_checkpoint("moce_ir_s", path)
    assert err.value.missing == [missing] and err.value.unexpected == []
    assert [m[0] for m in err.value.mismatched] == [misshaped]
    assert tuple(err.value.mismatched[0][1]) == (32, 128, 1, 1)
    assert missing in str(err.value) and misshaped in str(err.value)
