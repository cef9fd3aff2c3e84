"""Tests of the dacode package: architecture facts, DACode maths, ablation switches, introspection.

References are independent of the code under test: hand-derived parameter formulas, the paper's
sizes, Restormer shape facts, and naive einsum+softmax re-computations of the attention.
Behaviour tests use a tiny configuration; full-size models are only built, or run at 16×16.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import dacode
from dacode.blocks import MDTA, LayerNorm2d
from dacode.codebook import DACode, pixel_mean_attention

TINY = dict(dim=16, blocks=[1, 1, 1, 1, 1, 1, 1], refinement_blocks=1, nc=8, code_dim=32, code_heads=4)
PAPER_PARAMS = {"dacode": 29e6, "dacode-s": 12.5e6}  # §4.2 / Tables 1-3
DAC_LAYERS = ["decoder_level3.dac.dacode", "decoder_level2.dac.dacode", "decoder_level1.dac.dacode"]


def tiny(seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return dacode.create_model("dacode", **{**TINY, **kw}).eval()


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def full_models():
    torch.manual_seed(0)
    return {name: dacode.create_model(name) for name in ("dacode", "dacode-s")}


# -- hand-derived parameter formulas (from the architecture description, not from the code) ----


def tb_params(c: int, heads: int) -> int:
    hid = int(c * 2.66)
    mdta = 3 * c * c + 3 * c * 9 + c * c + heads  # qkv 1×1, depth-wise 3×3, out 1×1, temperature
    gdfn = 2 * hid * c + 2 * hid * 9 + hid * c  # in 1×1, depth-wise 3×3, out 1×1
    return mdta + gdfn + 2 * 2 * c  # + two WithBias LayerNorms


def dac_params(d: int, dc: int, nc: int) -> int:
    hid = int(d * 2.66)
    stage1 = dc * dc + 2 * d * dc + dc * dc + nc + 2 * dc  # q, k/v, out, α, LN(C)
    stage2 = d * dc + 2 * dc * dc + dc * d + 2 * d + 2 * dc  # q, k/v, out, LN(X), LN(C')
    return stage1 + stage2 + 3 * hid * d + 18 * hid + 2 * d  # + GDFN and its LayerNorm


def expected_stages(dim: int, blocks, nc: int = 64, dc: int = 256, refinement: int = 4) -> dict[str, int]:
    d = dim
    s = {
        "patch_embed": 3 * d * 9,
        "encoder_level1": blocks[0] * tb_params(d, 1),
        "down1_2": d * (d // 2) * 9,
        "encoder_level2": blocks[1] * tb_params(2 * d, 2),
        "down2_3": 2 * d * d * 9,
        "encoder_level3": blocks[2] * tb_params(4 * d, 4),
        "down3_4": 4 * d * 2 * d * 9,
        "latent": blocks[3] * tb_params(8 * d, 8),
        "up4_3": 8 * d * 16 * d * 9,
        "reduce_chan_level3": 8 * d * 4 * d,
        "decoder_level3.dac": dac_params(4 * d, dc, nc),
        "decoder_level3 (TBs)": blocks[4] * tb_params(4 * d, 4),
        "up3_2": 4 * d * 8 * d * 9,
        "reduce_chan_level2": 4 * d * 2 * d,
        "decoder_level2.dac": dac_params(2 * d, dc, nc),
        "decoder_level2 (TBs)": blocks[5] * tb_params(2 * d, 2),
        "up2_1": 2 * d * 4 * d * 9,
        "decoder_level1.dac": dac_params(2 * d, dc, nc),
        "decoder_level1 (TBs)": blocks[6] * tb_params(2 * d, 1),
        "refinement": refinement * tb_params(2 * d, 1),
        "output": 2 * d * 3 * 9,
        "codebook": nc * dc,
    }
    if nc == 0:
        s = {k: v for k, v in s.items() if not k.endswith(".dac") and k != "codebook"}
    return s


# -- registry / interface -------------------------------------------------------------------


def test_registry_and_interface():
    assert dacode.list_models() == ["dacode", "dacode-s"]
    with pytest.raises(ValueError, match="dacode, dacode-s"):
        dacode.create_model("restormer")
    with pytest.raises(TypeError, match="bogus"):
        dacode.create_model("dacode", bogus=1)
    m = tiny()
    assert m.pad_multiple == 8
    assert m.config.nc == 8 and m.config.code_dim == 32


@pytest.mark.parametrize("name,dim,blocks", [("dacode", 48, (4, 6, 6, 8, 6, 6, 12)), ("dacode-s", 32, (4, 6, 6, 8, 2, 4, 8))])
def test_parameter_counts_match_formula_and_paper(full_models, name, dim, blocks):
    model = full_models[name]
    assert model.config.dim == dim and model.config.blocks == blocks and model.config.nc == 64
    counts = dacode.stage_parameter_counts(model)
    print(f"\n{name}: parameters per stage")
    for stage, n in counts.items():
        print(f"  {stage:24s}{n:>12,}")
    total = sum(counts.values())
    print(f"  {'total':24s}{total:>12,}  ({(total / PAPER_PARAMS[name] - 1) * 100:+.2f}% vs paper)")
    assert total == n_params(model)
    assert counts == expected_stages(dim, blocks)
    assert abs(total / PAPER_PARAMS[name] - 1) <= 0.03


def test_readme_table_matches_models(full_models):
    text = (Path(dacode.__file__).parent / "README.md").read_text()
    row = re.compile(r"^\| \**([^|*]+?)\** \| \**([\d,]+)\** \| \**([\d,]+)\** \|$", re.M)
    rows = {m.group(1): (m.group(2), m.group(3)) for m in row.finditer(text)}
    for col, name in enumerate(["dacode", "dacode-s"]):
        cfg = full_models[name].config
        counts = dacode.stage_parameter_counts(full_models[name])
        counts["total"] = sum(counts.values())
        counts["backbone (`nc=0`)"] = sum(expected_stages(cfg.dim, cfg.blocks, nc=0).values())
        assert set(counts) <= set(rows)
        for stage, n in counts.items():
            assert int(rows[stage][col].replace(",", "")) == n, stage


def test_restormer_shape_facts(full_models):
    sd = full_models["dacode"].state_dict()
    assert sd["patch_embed.weight"].shape == (48, 3, 3, 3)
    assert sd["encoder_level1.0.ffn.project_in.weight"].shape == (254, 48, 1, 1)  # 2·int(48·2.66)
    assert sd["encoder_level1.0.attn.qkv_dwconv.weight"].shape == (144, 1, 3, 3)  # depth-wise
    assert sd["latent.0.attn.temperature"].shape == (8, 1, 1)
    assert sd["encoder_level3.0.attn.temperature"].shape == (4, 1, 1)
    assert sd["decoder_level1.blocks.0.attn.temperature"].shape == (1, 1, 1)
    assert sd["down1_2.body.0.weight"].shape == (24, 48, 3, 3)
    assert sd["up4_3.body.0.weight"].shape == (768, 384, 3, 3)
    assert sd["reduce_chan_level3.weight"].shape == (192, 384, 1, 1)
    assert sd["output.weight"].shape == (3, 96, 3, 3)
    assert sd["codebook"].shape == (64, 256)
    assert sd["decoder_level3.dac.dacode.alpha"].shape == (64, 1)
    assert not any(k.endswith(".bias") and "conv" in k for k in sd)  # bias-free convolutions


@pytest.mark.parametrize("name", ["dacode", "dacode-s"])
def test_full_configs_run_at_small_size(full_models, name):
    with torch.no_grad():
        y = full_models[name].eval()(torch.rand(1, 3, 16, 16))
    assert y.shape == (1, 3, 16, 16) and torch.isfinite(y).all()


# -- backbone parts ---------------------------------------------------------------------------


def test_layernorm2d_is_withbias_layernorm_over_channels():
    torch.manual_seed(0)
    ln = LayerNorm2d(5)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-1, 1)
    x = torch.randn(2, 5, 3, 4) * 3 + 1
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)  # biased variance
    ref = (x - mu) / torch.sqrt(var + 1e-5) * ln.weight.view(1, 5, 1, 1) + ln.bias.view(1, 5, 1, 1)
    torch.testing.assert_close(ln(x), ref, rtol=1e-5, atol=1e-5)


def test_mdta_is_channel_attention():
    torch.manual_seed(0)
    m = MDTA(8, 2).double()
    with torch.no_grad():
        m.temperature.copy_(torch.tensor([0.5, 2.0]).view(2, 1, 1))
    x = torch.randn(1, 8, 5, 6, dtype=torch.float64)
    qkv = m.qkv_dwconv(m.qkv(x)).reshape(3, 2, 4, 30)  # (q/k/v, head, channel, pixel)
    out = []
    for h in range(2):
        q, k, v = (qkv[i, h] / (qkv[i, h].norm(dim=1, keepdim=True) if i < 2 else 1) for i in range(3))
        a = torch.softmax(torch.einsum("cn,dn->cd", q, k) * m.temperature[h, 0, 0], dim=1)  # 4×4 channels
        out.append(torch.einsum("cd,dn->cn", a, v))
    ref = m.project_out(torch.cat(out).reshape(1, 8, 5, 6))
    torch.testing.assert_close(m(x), ref)


# -- DACode module against a naive einsum + softmax reference --------------------------------


def _ln(t, mod):
    mu = t.mean(-1, keepdim=True)
    var = ((t - mu) ** 2).mean(-1, keepdim=True)
    return (t - mu) / torch.sqrt(var + mod.eps) * mod.weight + mod.bias


def naive_dacode(m: DACode, x: torch.Tensor, C: torch.Tensor):
    """Eq. 1-3 written out per head with einsum; returns (X_mod, C', pixel-and-head-mean attention)."""
    b, d, hh, ww = x.shape
    nc, dc = C.shape
    h = m.heads
    dh = dc // h
    X = x.reshape(b, d, hh * ww).transpose(1, 2)  # B×N×D
    if m.adaptation:
        q = (_ln(C, m.norm_code) @ m.adapt_q.weight.T).reshape(nc, h, dh)
        kv = X @ m.adapt_kv.weight.T
        k, v = kv[..., :dc].reshape(b, -1, h, dh), kv[..., dc:].reshape(b, -1, h, dh)
        a = torch.softmax(torch.einsum("chd,bnhd->bhcn", q, k) / math.sqrt(dh), dim=-1)
        delta = torch.einsum("bhcn,bnhd->bchd", a, v).reshape(b, nc, dc) @ m.adapt_out.weight.T
        Cp = C + m.alpha * delta
    else:
        Cp = C.expand(b, nc, dc)
    q2 = (_ln(X, m.norm_x) @ m.mod_q.weight.T).reshape(b, -1, h, dh)
    kv2 = _ln(Cp, m.norm_adapted) @ m.mod_kv.weight.T
    k2, v2 = kv2[..., :dc].reshape(b, nc, h, dh), kv2[..., dc:].reshape(b, nc, h, dh)
    a2 = torch.softmax(torch.einsum("bnhd,bchd->bhnc", q2, k2) / math.sqrt(dh), dim=-1)  # N×Nc per head
    out = torch.einsum("bhnc,bchd->bnhd", a2, v2).reshape(b, -1, dc) @ m.mod_out.weight.T
    return out.transpose(1, 2).reshape(b, d, hh, ww), Cp, a2.mean(dim=(1, 2))


def _dacode_module(adaptation=True, seed=0):
    torch.manual_seed(seed)
    m = DACode(dim=6, code_dim=8, num_codes=5, heads=2, adaptation=adaptation).double()
    with torch.no_grad():
        for p in m.parameters():  # non-trivial LayerNorm affine and α
            p.add_(torch.randn_like(p) * 0.3)
    C = torch.randn(5, 8, dtype=torch.float64)
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64) * 2
    return m, x, C


@pytest.mark.parametrize("adaptation", [True, False])
def test_dacode_module_matches_naive_reference(adaptation):
    m, x, C = _dacode_module(adaptation)
    ref_out, ref_cp, _ = naive_dacode(m, x, C)
    torch.testing.assert_close(m.adapt(x, C), ref_cp)
    torch.testing.assert_close(m.modulate(x, ref_cp), ref_out)  # stage 2 alone
    torch.testing.assert_close(m(x, C), ref_out)  # both stages


def test_static_codebook_when_adaptation_off():
    m, x, C = _dacode_module(adaptation=False)
    assert torch.equal(m.adapt(x, C), C.expand(2, 5, 8))
    assert not any(n.startswith(("adapt_", "alpha", "norm_code")) for n, _ in m.named_parameters())
    model = tiny(adaptation=False)
    assert not any("alpha" in k for k in model.state_dict())
    feats = torch.randn(2, 32, 8, 8)  # decoder level 1 width = 2·dim
    assert torch.equal(model.decoder_level1.dac.dacode.adapt(feats, model.codebook), model.codebook.expand(2, 8, 32))
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 3, 16, 16))).all()


def test_adapted_codebook_is_per_image_and_batch_independent():
    m, x, C = _dacode_module()
    cp = m.adapt(x, C)
    assert cp.shape == (2, 5, 8) and not torch.allclose(cp[0], cp[1])
    torch.testing.assert_close(cp[1:], m.adapt(x[1:], C))
    model = tiny().double()
    imgs = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        batched = model(imgs)
        single = torch.cat([model(imgs[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single)


# -- whole model -------------------------------------------------------------------------------


def test_backbone_has_no_codebook():
    m = tiny(nc=0)
    assert m.codebook is None
    assert not any(isinstance(mod, DACode) for mod in m.modules())
    assert not any("codebook" in n or ".dac." in n or "alpha" in n for n, _ in m.named_parameters())
    with_dac = tiny()
    dac_only = sum(n_params(getattr(with_dac, f"decoder_level{i}").dac) for i in (1, 2, 3)) + with_dac.codebook.numel()
    assert n_params(m) == n_params(with_dac) - dac_only
    full = sum(expected_stages(48, (4, 6, 6, 8, 6, 6, 12), nc=0).values())
    torch.manual_seed(0)
    assert n_params(dacode.create_model("dacode", nc=0)) == full
    with pytest.raises(ValueError, match="nc=0"):
        with dacode.record_codebook(m):
            pass


def test_gradients_reach_codebook_alpha_and_adaptation():
    m = tiny().train()
    x = torch.rand(2, 3, 16, 16)
    F.l1_loss(m(x), x * 0.5).backward()
    assert m.codebook.grad is not None and m.codebook.grad.abs().sum() > 0
    for i in (1, 2, 3):
        dc = getattr(m, f"decoder_level{i}").dac.dacode
        assert dc.alpha.grad.abs().sum() > 0
        assert dc.adapt_kv.weight.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("shape", [(1, 3, 13, 21), (2, 3, 8, 8), (1, 3, 9, 16), (1, 3, 3, 5)])
def test_any_input_size_keeps_shape(shape):
    m = tiny()
    with torch.no_grad():
        y = m(torch.rand(shape))
    assert y.shape == shape and torch.isfinite(y).all()


def test_odd_sizes_are_reflect_padded_and_cropped():
    m = tiny().double()
    x = torch.rand(1, 3, 13, 21, dtype=torch.float64)
    # reflect padding by hand: index h-2, h-3, ... past the last row/column
    rows = list(range(13)) + [13 - 2 - i for i in range(3)]
    cols = list(range(21)) + [21 - 2 - i for i in range(3)]
    padded = x[:, :, rows][:, :, :, cols]
    assert padded.shape[-2:] == (16, 24)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(padded)[..., :13, :21])


def test_forward_is_deterministic():
    x = torch.rand(2, 3, 24, 16)
    with torch.no_grad():
        a, b = tiny(seed=3)(x), tiny(seed=3)(x)
        m = tiny(seed=3)
        assert torch.equal(m(x), m(x))
    assert torch.equal(a, b)


def test_safetensors_round_trip(tmp_path):
    m = tiny(seed=1)
    path = tmp_path / "dacode.safetensors"
    save_file(m.state_dict(), str(path))
    other = tiny(seed=2)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.equal(other(x), m(x))
        other.load_state_dict(load_file(str(path)), strict=True)
        assert torch.equal(other(x), m(x))


def test_tiny_config_trains():
    torch.manual_seed(0)
    m = dacode.create_model("dacode", dim=16, blocks=[1] * 7, nc=16).train()
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    x = torch.rand(2, 3, 32, 32)
    losses = []
    for _ in range(6):
        loss = F.l1_loss(m(x), x * 0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# -- codebook introspection ------------------------------------------------------------------


def test_recording_keeps_outputs_and_gives_distributions():
    m = tiny()
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        plain = m(x)
        with dacode.record_codebook(m) as rec:
            recorded = m(x)
            m(x[:1])
        after = m(x)
    assert torch.equal(plain, recorded) and torch.equal(plain, after)
    assert rec.layers == DAC_LAYERS
    acts = rec.activations
    assert list(acts) == DAC_LAYERS
    for a in acts.values():
        assert a.shape == (3, 8)  # 2 + 1 images, Nc = 8
        assert (a >= 0).all()
        torch.testing.assert_close(a.sum(dim=1), torch.ones(3))
        torch.testing.assert_close(a[2], a[0])  # same image, same distribution
    assert all(getattr(mod, "_recorder", None) is None for mod in m.modules())  # hooks removed
    w, i = rec.topk(DAC_LAYERS[2], k=3)
    assert torch.equal(i, rec.mean(DAC_LAYERS[2]).argsort(descending=True)[:3])


def test_recorded_activation_matches_naive_softmax():
    m = tiny().double()
    seen = {}
    for name, mod in m.named_modules():
        if isinstance(mod, DACode):
            mod.register_forward_hook(lambda mod, args, out, name=name: seen.__setitem__(name, (mod, *args)))
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad(), dacode.record_codebook(m) as rec:
        m(x)
    for name in DAC_LAYERS:
        mod, feats, codebook = seen[name]
        _, _, ref = naive_dacode(mod, feats, codebook)
        torch.testing.assert_close(rec.activations[name], ref.float())


def test_recording_under_autograd_keeps_gradients():
    x = torch.rand(1, 3, 16, 16)
    grads = []
    for record in (False, True):
        m = tiny()
        if record:
            with dacode.record_codebook(m):
                m(x).sum().backward()
        else:
            m(x).sum().backward()
        grads.append(m.codebook.grad.clone())
    assert torch.equal(grads[0], grads[1])


def test_pixel_mean_attention_chunking():
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 50, 4, dtype=torch.float64), torch.randn(2, 3, 6, 4, dtype=torch.float64)
    full = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1).mean(dim=(1, 2))  # √dh = 2
    torch.testing.assert_close(pixel_mean_attention(q, k, chunk=7), full)
    torch.testing.assert_close(pixel_mean_attention(q, k, chunk=4096), full)


def test_topk_helper_hand_example():
    acts = torch.tensor([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])  # image mean: 0.15, 0.50, 0.35
    w, i = dacode.topk_primitives(acts, 2)
    assert i.tolist() == [1, 2]
    torch.testing.assert_close(w, torch.tensor([0.5, 0.35]))
    w, i = dacode.topk_primitives(torch.tensor([0.3, 0.1, 0.6]), 1)
    assert i.tolist() == [2]
