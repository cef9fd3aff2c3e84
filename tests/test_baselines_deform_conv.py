"""Modulated deformable convolution (baselines/deform_conv.py) against independent references.

References used here, none of which calls the code under test:
* hand-computed cases: integer offsets that shift the sampling by one pixel,
  half-pixel offsets, zero and half masks, a single active tap to pin the offset layout;
* ``F.conv2d`` for zero offsets;
* a scalar loop implementing torchvision's documented bilinear rule (float64);
* ``torchvision.ops.deform_conv2d`` itself where its C++ ops load.

The memory-lean op (recomputes the sampling in backward) is compared with the
reference op (``deform_conv2d_reference``, checked above against the scalar loop):
outputs and every gradient, alone and inside the AirNet mini model.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import baselines
import baselines.deform_conv as dc
from baselines.deform_conv import (
    deform_conv2d,
    deform_conv2d_lean,
    deform_conv2d_reference,
    deform_conv2d_torch,
    memory_mode,
    torchvision_deform_conv_available,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _identity_kernel(c: int, tap: tuple = (1, 1), dtype=torch.float32) -> torch.Tensor:
    """3x3 weight that copies channel c to channel c through one tap."""
    w = torch.zeros(c, c, 3, 3, dtype=dtype)
    for i in range(c):
        w[i, i, tap[0], tap[1]] = 1.0
    return w


def _offsets(n, h, w, dy=0.0, dx=0.0, taps=9, dtype=torch.float32):
    off = torch.zeros(n, 2 * taps, h, w, dtype=dtype)
    off[:, 0::2] = dy
    off[:, 1::2] = dx
    return off


# ----------------------------------------------------------------------------- hand cases
def test_zero_offsets_unit_mask_is_plain_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 7, 6, generator=g)
    w = torch.randn(5, 4, 3, 3, generator=g)
    b = torch.randn(5, generator=g)
    out = deform_conv2d_torch(x, _offsets(2, 7, 6), w, b, padding=1, mask=torch.ones(2, 9, 7, 6))
    ref = F.conv2d(x, w, b, padding=1)
    assert (out - ref).abs().max().item() < 1e-5


def test_integer_offset_shifts_sampling_by_one_pixel():
    x = torch.arange(2 * 5 * 6, dtype=torch.float32).view(1, 2, 5, 6)
    w = _identity_kernel(2)  # centre tap only: out[y, x] = sample at (y + dy, x + dx)
    ones = torch.ones(1, 9, 5, 6)
    right = deform_conv2d_torch(x, _offsets(1, 5, 6, dx=1.0), w, padding=1, mask=ones)
    expect = torch.zeros_like(x)
    expect[..., :, :-1] = x[..., :, 1:]  # reads the right neighbour; last column falls outside -> 0
    assert torch.allclose(right, expect, atol=1e-5)

    up = deform_conv2d_torch(x, _offsets(1, 5, 6, dy=-1.0), w, padding=1, mask=ones)
    expect = torch.zeros_like(x)
    expect[..., 1:, :] = x[..., :-1, :]  # reads the row above; row 0 reads y=-1 -> 0
    assert torch.allclose(up, expect, atol=1e-5)


def test_zero_mask_leaves_only_bias_and_half_mask_halves():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 6, 6, generator=g)
    w = torch.randn(4, 3, 3, 3, generator=g)
    b = torch.tensor([0.5, -1.0, 2.0, 0.0])
    off = torch.randn(1, 18, 6, 6, generator=g)
    zero = deform_conv2d_torch(x, off, w, b, padding=1, mask=torch.zeros(1, 9, 6, 6))
    assert torch.equal(zero, b.view(1, 4, 1, 1).expand_as(zero))

    full = deform_conv2d_torch(x, off, w, None, padding=1, mask=torch.ones(1, 9, 6, 6))
    half = deform_conv2d_torch(x, off, w, None, padding=1, mask=torch.full((1, 9, 6, 6), 0.5))
    assert torch.allclose(half, 0.5 * full, atol=1e-6)
    assert full.abs().max() > 0.1


def test_half_pixel_offset_averages_neighbours():
    x = torch.tensor([[1.0, 2.0, 3.0], [5.0, 7.0, 11.0], [13.0, 17.0, 19.0]]).view(1, 1, 3, 3)
    out = deform_conv2d_torch(x, _offsets(1, 3, 3, dy=0.5), _identity_kernel(1), padding=1,
                              mask=torch.ones(1, 9, 3, 3))
    expect = torch.tensor([[3.0, 4.5, 7.0], [9.0, 12.0, 15.0], [6.5, 8.5, 9.5]])  # last row: half of it + half of 0
    assert torch.allclose(out[0, 0], expect, atol=1e-5)


def test_offset_layout_is_dy_dx_pairs_per_tap():
    """Only tap (0, 0) is active: channel 0 moves it vertically, channel 1 horizontally."""
    x = torch.arange(25, dtype=torch.float32).view(1, 1, 5, 5)
    w = _identity_kernel(1, tap=(0, 0))  # base read position (y - 1, x - 1)
    mask = torch.ones(1, 9, 5, 5)
    off = torch.zeros(1, 18, 5, 5)
    off[:, 1] = 1.0  # dx of tap 0 -> reads (y - 1, x)
    out = deform_conv2d_torch(x, off, w, padding=1, mask=mask)
    expect = torch.zeros(5, 5)
    expect[1:, :] = x[0, 0, :-1, :]
    assert torch.allclose(out[0, 0], expect, atol=1e-5)

    off = torch.zeros(1, 18, 5, 5)
    off[:, 0] = 1.0  # dy of tap 0 -> reads (y, x - 1)
    mask = torch.zeros(1, 9, 5, 5)
    mask[:, 0] = 0.5  # and the mask channel of tap 0 scales it
    out = deform_conv2d_torch(x, off, w, padding=1, mask=mask)
    expect = torch.zeros(5, 5)
    expect[:, 1:] = 0.5 * x[0, 0, :, :-1]
    assert torch.allclose(out[0, 0], expect, atol=1e-5)


def test_one_pixel_wide_input():
    x = torch.tensor([1.0, 2.0, 4.0]).view(1, 1, 3, 1)
    out = deform_conv2d_torch(x, _offsets(1, 3, 1, dy=1.0), _identity_kernel(1), padding=1,
                              mask=torch.ones(1, 9, 3, 1))
    assert torch.allclose(out.flatten(), torch.tensor([2.0, 4.0, 0.0]), atol=1e-6)


# ----------------------------------------------------------------------------- scalar reference
def _bilinear(img, y, x):
    """torchvision's rule: 0 outside (-1, H) x (-1, W); corners outside the image read 0."""
    h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    val = 0.0
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h and 0 <= xx < w:
                val += wy * wx * float(img[yy, xx])
    return val


def _reference(x, offset, weight, bias, stride, pad, dil, mask):
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    groups, taps = c // cg, kh * kw
    og = offset.shape[1] // (2 * taps)
    ho = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    out = torch.zeros(n, o, ho, wo, dtype=torch.float64)
    for b in range(n):
        for ci in range(c):
            g_off = ci // (c // og)
            g_w = ci // cg
            for i in range(kh):
                for j in range(kw):
                    t = i * kw + j
                    for yo in range(ho):
                        for xo in range(wo):
                            dy = float(offset[b, 2 * (g_off * taps + t), yo, xo])
                            dx = float(offset[b, 2 * (g_off * taps + t) + 1, yo, xo])
                            v = _bilinear(x[b, ci], yo * stride - pad + i * dil + dy, xo * stride - pad + j * dil + dx)
                            if mask is not None:
                                v *= float(mask[b, g_off * taps + t, yo, xo])
                            for oc in range(g_w * (o // groups), (g_w + 1) * (o // groups)):
                                out[b, oc, yo, xo] += float(weight[oc, ci - g_w * cg, i, j]) * v
    if bias is not None:
        out += bias.view(1, -1, 1, 1).double()
    return out


@pytest.mark.parametrize(
    "stride,pad,dil,groups,offset_groups",
    [(1, 1, 1, 1, 1), (2, 2, 2, 2, 2)],
)
def test_matches_scalar_reference_with_random_offsets(stride, pad, dil, groups, offset_groups):
    g = torch.Generator().manual_seed(2)
    n, c, h, w, o = 2, 4, 6, 5, 4
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(o, c // groups, 3, 3, generator=g, dtype=torch.float64)
    bias = torch.randn(o, generator=g, dtype=torch.float64)
    ho = (h + 2 * pad - dil * 2 - 1) // stride + 1
    wo = (w + 2 * pad - dil * 2 - 1) // stride + 1
    # displacements up to +-3 px so that many taps land partly or wholly outside the image
    offset = 3.0 * (2 * torch.rand(n, 2 * offset_groups * 9, ho, wo, generator=g, dtype=torch.float64) - 1)
    mask = torch.rand(n, offset_groups * 9, ho, wo, generator=g, dtype=torch.float64)
    ref = _reference(x, offset, weight, bias, stride, pad, dil, mask)
    out64 = deform_conv2d_torch(x, offset, weight, bias, stride, pad, dil, mask)
    assert (out64 - ref).abs().max().item() < 1e-10
    out32 = deform_conv2d_torch(x.float(), offset.float(), weight.float(), bias.float(), stride, pad, dil, mask.float())
    assert (out32.double() - ref).abs().max().item() < 1e-4


# ----------------------------------------------------------------------------- torchvision
@pytest.mark.skipif(not torchvision_deform_conv_available(),
                    reason="torchvision's compiled ops (deform_conv2d) cannot load with this torch build")
def test_matches_torchvision_op():
    from torchvision.ops import deform_conv2d as tv_deform_conv2d

    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 12, 11, generator=g)
    w = torch.randn(6, 8, 3, 3, generator=g)
    b = torch.randn(6, generator=g)
    off = 2.5 * torch.randn(2, 18, 12, 11, generator=g)
    mask = torch.rand(2, 9, 12, 11, generator=g)
    ours = deform_conv2d_torch(x, off, w, b, 1, 1, 1, mask)
    theirs = tv_deform_conv2d(x, off, w, b, padding=(1, 1), mask=mask)
    assert (ours - theirs).abs().max().item() < 1e-4


def test_backend_dispatch():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 5, 5, generator=g)
    w = torch.randn(2, 2, 3, 3, generator=g)
    off = torch.randn(1, 18, 5, 5, generator=g)
    mask = torch.rand(1, 9, 5, 5, generator=g)
    auto = deform_conv2d(x, off, w, None, padding=1, mask=mask)
    pure = deform_conv2d(x, off, w, None, padding=1, mask=mask, backend="torch")
    assert (auto - pure).abs().max().item() < 1e-4
    if not torchvision_deform_conv_available():
        with pytest.raises(RuntimeError, match="torchvision"):
            deform_conv2d(x, off, w, None, padding=1, mask=mask, backend="torchvision")
    with pytest.raises(ValueError):
        deform_conv2d(x, off, w, backend="mmcv")


def test_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    # keep sampling points away from integer coordinates, where bilinear sampling has kinks
    off = (torch.randint(-1, 2, (1, 18, 4, 4), generator=g) + 0.25 + 0.5 * torch.rand(1, 18, 4, 4, generator=g))
    off = off.double().requires_grad_(True)
    mask = torch.rand(1, 9, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: deform_conv2d_torch(a, b, c, None, 1, 1, 1, d), (x, off, w, mask), eps=1e-6, atol=1e-5
    )


# ----------------------------------------------------------------------------- lean op vs reference
# (n, c, h, w, c_out, kernel, stride, padding, dilation, groups, offset_groups, mask, chunk_elements)
LEAN_CASES = {
    "plain": (2, 4, 6, 5, 4, (3, 3), 1, 1, 1, 1, 1, True, None),
    "groups-stride-dilation": (2, 4, 6, 5, 4, (3, 3), 2, 2, 2, 2, 2, True, 7),
    "no-mask-three-offset-groups": (3, 6, 9, 8, 4, (3, 3), 1, 1, 1, 2, 3, False, 500),
    "one-pixel-wide": (2, 8, 7, 1, 6, (3, 3), 1, 1, 1, 1, 2, True, 20),
    "asymmetric": (1, 4, 5, 6, 2, (2, 3), (1, 2), (0, 1), (2, 1), 2, 1, True, 30),
    "single-image-chunk-of-rows": (2, 3, 8, 8, 5, (3, 3), 1, 1, 1, 1, 1, True, 3 * 9 * 8 * 3),
}


def _lean_case(case, dtype, seed=0):
    n, c, h, w, o, (kh, kw), stride, pad, dil, groups, og, with_mask, chunk = case
    (sh, sw), (ph, pw), (dh, dw) = dc._pair(stride), dc._pair(pad), dc._pair(dil)
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    g = torch.Generator().manual_seed(seed)
    tensors = dict(
        input=torch.randn(n, c, h, w, generator=g, dtype=dtype),
        # displacements up to +-3 px: many samples partly or wholly outside the image
        offset=3.0 * (2 * torch.rand(n, 2 * og * kh * kw, ho, wo, generator=g, dtype=dtype) - 1),
        weight=torch.randn(o, c // groups, kh, kw, generator=g, dtype=dtype),
        bias=torch.randn(o, generator=g, dtype=dtype),
        mask=torch.rand(n, og * kh * kw, ho, wo, generator=g, dtype=dtype) if with_mask else None,
    )
    grad_out = torch.randn(n, o, ho, wo, generator=g, dtype=dtype)
    return tensors, grad_out, dict(stride=stride, padding=pad, dilation=dil), chunk


def _output_and_grads(fn, tensors, grad_out, geometry, **extra):
    leaves = {k: v.clone().requires_grad_(True) for k, v in tensors.items() if v is not None}
    out = fn(leaves["input"], leaves["offset"], leaves["weight"], leaves["bias"], mask=leaves.get("mask"),
             **geometry, **extra)
    out.backward(grad_out)
    return {"output": out.detach(), **{k: v.grad for k, v in leaves.items()}}


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("case", sorted(LEAN_CASES))
def test_lean_matches_reference_outputs_and_all_gradients(case, dtype, tol):
    tensors, grad_out, geometry, chunk = _lean_case(LEAN_CASES[case], dtype)
    ref = _output_and_grads(deform_conv2d_reference, tensors, grad_out, geometry)
    lean = _output_and_grads(deform_conv2d_lean, tensors, grad_out, geometry, chunk_elements=chunk)
    assert set(lean) == set(ref)
    for name in ref:
        assert lean[name].dtype == ref[name].dtype
        diff = (lean[name] - ref[name]).abs().max().item()
        assert diff <= tol, f"{name}: max |lean - reference| = {diff:.2e}"


@pytest.mark.parametrize("chunk", [1, 100, None])
def test_lean_result_does_not_depend_on_chunking(chunk):
    tensors, grad_out, geometry, _ = _lean_case(LEAN_CASES["plain"], torch.float64, seed=6)
    whole = _output_and_grads(deform_conv2d_lean, tensors, grad_out, geometry, chunk_elements=10**9)
    parts = _output_and_grads(deform_conv2d_lean, tensors, grad_out, geometry, chunk_elements=chunk)
    for name in whole:
        assert (parts[name] - whole[name]).abs().max().item() < 1e-12


def test_lean_chunk_plan_covers_every_image_and_row_once():
    for n, per_row, h_out, budget in [(5, 10, 4, 100), (3, 10, 4, 25), (2, 10, 4, 5), (1, 7, 1, 1)]:
        seen = torch.zeros(n, h_out, dtype=torch.int64)
        for b0, b1, r0, r1 in dc._plan_chunks(n, per_row, h_out, budget):
            assert (b1 - b0) * (r1 - r0) * per_row <= max(budget, per_row)
            seen[b0:b1, r0:r1] += 1
        assert torch.equal(seen, torch.ones_like(seen))


def test_lean_gradcheck_float64():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    # away from integer sampling coordinates, where bilinear sampling has kinks
    off = torch.randint(-1, 2, (2, 18, 4, 4), generator=g) + 0.25 + 0.5 * torch.rand(2, 18, 4, 4, generator=g)
    off = off.double().requires_grad_(True)
    mask = torch.rand(2, 9, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    for chunk in (None, 2 * 9 * 4):  # whole batch at once; bands of two rows
        assert torch.autograd.gradcheck(
            lambda a, o, c, m, e: deform_conv2d_lean(a, o, c, e, 1, 1, 1, m, chunk_elements=chunk),
            (x, off, w, mask, b), eps=1e-6, atol=1e-5,
        )


def test_lean_saves_only_its_inputs():
    """Saved for backward: input, offset, mask, weight; the reference also keeps the sampled columns."""
    g = torch.Generator().manual_seed(8)
    n, c, h, w = 2, 8, 16, 16
    x = torch.randn(n, c, h, w, generator=g, requires_grad=True)
    weight = torch.randn(8, c, 3, 3, generator=g, requires_grad=True)
    off = torch.randn(n, 18, h, w, generator=g, requires_grad=True)
    mask = torch.rand(n, 9, h, w, generator=g, requires_grad=True)

    def saved_bytes(fn):
        storages = {}

        def pack(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x, off, weight, None, 1, 1, 1, mask)
        return sum(storages.values())

    inputs = sum(t.numel() * t.element_size() for t in (x, off, mask, weight))
    columns = n * c * 9 * h * w * 4
    assert saved_bytes(deform_conv2d_lean) <= inputs
    assert saved_bytes(deform_conv2d_reference) >= columns


def test_lean_double_backward_raises_clearly():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(1, 2, 5, 5, generator=g, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, generator=g, requires_grad=True)
    off, mask = torch.randn(1, 18, 5, 5, generator=g), torch.rand(1, 9, 5, 5, generator=g)
    out = deform_conv2d_lean(x, off, w, None, 1, 1, 1, mask)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(out.square().sum(), x, create_graph=True)
    # the reference op stays twice differentiable
    out = deform_conv2d_reference(x, off, w, None, 1, 1, 1, mask)
    (gx,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    gx.sum().backward()
    assert w.grad is not None


def test_lean_under_bf16_autocast_computes_in_float32():
    tensors, grad_out, geometry, _ = _lean_case(LEAN_CASES["plain"], torch.float32, seed=10)
    full = _output_and_grads(deform_conv2d_lean, tensors, grad_out, geometry)
    leaves = {k: v.clone().requires_grad_(True) for k, v in tensors.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = deform_conv2d_lean(leaves["input"], leaves["offset"], leaves["weight"], leaves["bias"],
                                 mask=leaves["mask"], **geometry)
    assert out.dtype == torch.bfloat16  # the autocast dtype, like a convolution under autocast
    out.float().backward(grad_out)
    # float32 inside: the only error is the final rounding to bfloat16 (8 mantissa bits)
    assert (out.float() - full["output"]).abs().max().item() <= 2 ** -8 * full["output"].abs().max().item()
    for name, t in leaves.items():  # the incoming gradient is bfloat16 too (the cast's backward)
        assert t.grad.dtype == torch.float32
        assert (t.grad - full[name]).abs().max().item() <= 2 ** -7 * full[name].abs().max().item(), name
    # bfloat16 tensors without autocast: float32 inside, bfloat16 result
    out16 = deform_conv2d_lean(*(tensors[k].bfloat16() for k in ("input", "offset", "weight", "bias")),
                               mask=tensors["mask"].bfloat16(), **geometry)
    assert out16.dtype == torch.bfloat16


def test_memory_switch_and_dispatch():
    tensors, _, geometry, _ = _lean_case(LEAN_CASES["plain"], torch.float32, seed=11)
    args = (tensors["input"], tensors["offset"], tensors["weight"], tensors["bias"])
    ref = deform_conv2d_reference(*args, mask=tensors["mask"], **geometry)
    for memory in ("lean", "reference", None):
        out = deform_conv2d_torch(*args, mask=tensors["mask"], memory=memory, **geometry)
        assert (out - ref).abs().max().item() <= 1e-5
    with memory_mode("reference"):
        assert dc._default_memory == "reference"
        out = deform_conv2d(*args, mask=tensors["mask"], backend="torch", **geometry)
        assert out.grad_fn is None
    assert dc._default_memory == "lean"
    x = tensors["input"].clone().requires_grad_(True)
    out = deform_conv2d(x, *args[1:], mask=tensors["mask"], backend="torch", **geometry)
    assert "LeanDeformConv2d" in type(out.grad_fn).__name__
    with pytest.raises(ValueError, match="memory"):
        deform_conv2d_torch(*args, memory="small")
    with pytest.raises(ValueError, match="memory"):
        with memory_mode("small"):
            pass


def test_lean_in_airnet_mini_gives_reference_loss_and_gradients(monkeypatch):
    # small chunks so that the model's layers run in several row bands
    monkeypatch.setattr(dc, "DEFAULT_CHUNK_ELEMENTS", 16 * 9 * 32 * 5)
    torch.manual_seed(0)
    model = baselines.create_model("airnet", dcn_backend="torch", **baselines.mini_config("airnet")).train()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-zero offsets (~1.5 px on average) and masks instead of the zero init
        for name, module in model.named_modules():
            if name.endswith("conv_offset_mask"):
                module.weight.normal_(0, 0.1, generator=g)
                module.bias.normal_(0, 1.0, generator=g)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    results = {}
    for memory in ("reference", "lean"):
        m = copy.deepcopy(model)
        torch.manual_seed(3)  # same key crops
        with memory_mode(memory):
            loss = m.training_loss(x, y)
            loss.backward()
        results[memory] = loss.detach(), {k: p.grad for k, p in m.named_parameters() if p.grad is not None}
    (loss_ref, grads_ref), (loss_lean, grads_lean) = results["reference"], results["lean"]
    assert abs(loss_lean.item() - loss_ref.item()) <= 1e-5 * abs(loss_ref.item())
    assert grads_lean.keys() == grads_ref.keys() and any("dcn.weight" in k for k in grads_ref)
    for k, ref in grads_ref.items():
        assert (grads_lean[k] - ref).abs().max().item() <= 1e-5 * ref.abs().max().item() + 1e-12, k
