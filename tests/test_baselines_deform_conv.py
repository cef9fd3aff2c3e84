"""Modulated deformable convolution (baselines/deform_conv.py) against independent references.

References used here, none of which calls the code under test:
* hand-computed cases: integer offsets that shift the sampling by one pixel,
  half-pixel offsets, zero and half masks, a single active tap to pin the offset layout;
* ``F.conv2d`` for zero offsets;
* a scalar loop implementing torchvision's documented bilinear rule (float64);
* ``torchvision.ops.deform_conv2d`` itself where its C++ ops load.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.deform_conv import deform_conv2d, deform_conv2d_torch, torchvision_deform_conv_available


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
