"""Modulated deformable 2-D convolution (DCNv2) without mmcv.

AirNet calls ``mmcv.ops.modulated_deform_conv2d``; the same operation is
``torchvision.ops.deform_conv2d(..., mask=...)`` (baselines.md §2.1).  On the
CPU machines of this project torchvision's compiled ops cannot load, so this
module carries a pure-torch implementation with the same semantics and
dispatches to torchvision's kernel whenever that kernel is usable.

Semantics reproduced (torchvision's documented ``deform_conv2d`` contract):

* ``offset`` has ``2 * offset_groups * kh * kw`` channels.  For offset group
  ``g`` and kernel tap ``t = i * kw + j`` channel ``2 * (g * kh * kw + t)``
  holds the vertical and the next channel the horizontal displacement.
* ``mask`` has ``offset_groups * kh * kw`` channels, tap ``t`` of group ``g`` at
  channel ``g * kh * kw + t``; it multiplies the sampled value.
* The value for output pixel ``(y, x)`` and tap ``(i, j)`` is read at
  ``(y * stride - pad + i * dilation + dy, x * stride - pad + j * dilation + dx)``
  with bilinear interpolation.  A point with ``py <= -1``, ``py >= H``,
  ``px <= -1`` or ``px >= W`` reads 0; otherwise each of the four neighbouring
  pixels that lies outside the image contributes 0.
* Input channels are split into ``offset_groups`` contiguous blocks, one offset
  field per block; ``groups`` is the usual grouped convolution.

The pure-torch path samples every tap with :func:`torch.nn.functional.grid_sample`
(``align_corners=True``, zero padding), whose per-corner zero padding is exactly
the rule above, then contracts the sampled columns with the weight.  It is
differentiable with respect to input, offset, mask, weight and bias.
"""
from __future__ import annotations

import functools
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

IntPair = Union[int, Tuple[int, int]]

__all__ = ["deform_conv2d", "deform_conv2d_torch", "torchvision_deform_conv_available"]


def _pair(v: IntPair) -> Tuple[int, int]:
    if isinstance(v, (tuple, list)):
        a, b = v
        return int(a), int(b)
    return int(v), int(v)


@functools.lru_cache(maxsize=1)
def _torchvision_kernel():
    """torchvision.ops.deform_conv2d if its compiled kernel runs here, else None."""
    try:  # the harness shim makes ``import torchvision`` safe beside a CPU-only torch
        from harness._compat import install_torchvision_shim

        install_torchvision_shim()
    except Exception:  # pragma: no cover - harness absent or changed
        pass
    try:
        from torchvision.ops import deform_conv2d as tv_deform_conv2d

        x = torch.zeros(1, 1, 3, 3)
        tv_deform_conv2d(x, torch.zeros(1, 18, 3, 3), torch.zeros(1, 1, 3, 3), padding=1,
                         mask=torch.ones(1, 9, 3, 3))
        return tv_deform_conv2d
    except Exception:
        return None


def torchvision_deform_conv_available() -> bool:
    """True when torchvision's compiled ``deform_conv2d`` can run in this process."""
    return _torchvision_kernel() is not None


def deform_conv2d_torch(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: Optional[Tensor] = None,
) -> Tensor:
    """Pure-torch ``deform_conv2d`` with torchvision's argument order and layout."""
    n, c, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    taps = kh * kw
    if c % c_per_group:
        raise ValueError(f"input channels {c} not divisible by weight's {c_per_group} channels per group")
    groups = c // c_per_group
    if offset.shape[1] % (2 * taps):
        raise ValueError(f"offset has {offset.shape[1]} channels, not a multiple of 2*{taps}")
    offset_groups = offset.shape[1] // (2 * taps)
    if c % offset_groups:
        raise ValueError(f"input channels {c} not divisible by {offset_groups} offset groups")
    h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if tuple(offset.shape) != (n, 2 * offset_groups * taps, h_out, w_out):
        raise ValueError(f"offset shape {tuple(offset.shape)} does not fit output {h_out}x{w_out}")
    if mask is not None and tuple(mask.shape) != (n, offset_groups * taps, h_out, w_out):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not fit offset groups/taps/output")

    # grid_sample with align_corners=True maps -1/+1 to the centres of the first/last
    # pixel, which needs at least two pixels per axis; a one-pixel axis is zero-padded
    # (points outside read 0 either way, so this changes nothing but the arithmetic).
    pad_y = 1 if h < 2 else 0
    pad_x = 1 if w < 2 else 0
    if pad_y or pad_x:
        input = F.pad(input, (pad_x, pad_x, pad_y, pad_y))
    hp, wp = h + 2 * pad_y, w + 2 * pad_x

    dev, dt = offset.device, offset.dtype
    # sampling position of tap t at output (y, x), before the learned displacement
    tap_y = (torch.arange(kh, device=dev, dtype=dt) * dh).repeat_interleave(kw)  # (taps,)
    tap_x = (torch.arange(kw, device=dev, dtype=dt) * dw).repeat(kh)
    out_y = torch.arange(h_out, device=dev, dtype=dt) * sh - ph + pad_y
    out_x = torch.arange(w_out, device=dev, dtype=dt) * sw - pw + pad_x
    base_y = tap_y.view(taps, 1, 1) + out_y.view(1, h_out, 1)  # (taps, h_out, 1)
    base_x = tap_x.view(taps, 1, 1) + out_x.view(1, 1, w_out)  # (taps, 1, w_out)

    off = offset.view(n, offset_groups, taps, 2, h_out, w_out)
    pos_y = base_y + off[:, :, :, 0]  # (n, G, taps, h_out, w_out)
    pos_x = base_x + off[:, :, :, 1]
    grid = torch.stack((pos_x * (2.0 / (wp - 1)) - 1.0, pos_y * (2.0 / (hp - 1)) - 1.0), dim=-1)
    grid = grid.view(n * offset_groups, taps * h_out, w_out, 2).to(input.dtype)

    cols = F.grid_sample(
        input.reshape(n * offset_groups, c // offset_groups, hp, wp),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )  # (n*G, c/G, taps*h_out, w_out)
    cols = cols.view(n, offset_groups, c // offset_groups, taps, h_out * w_out)
    if mask is not None:
        cols = cols * mask.view(n, offset_groups, 1, taps, h_out * w_out).to(cols.dtype)
    # channel-major, then tap: the same flattening as weight.view(c_out, c_per_group*kh*kw)
    cols = cols.reshape(n, groups, c_per_group * taps, h_out * w_out)
    w_mat = weight.reshape(groups, c_out // groups, c_per_group * taps)
    out = torch.matmul(w_mat.unsqueeze(0), cols)  # (n, groups, c_out/groups, L)
    out = out.reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: Optional[Tensor] = None,
    backend: str = "auto",
) -> Tensor:
    """Modulated deformable convolution.

    ``backend``: ``"auto"`` (torchvision's kernel when it loads, else pure torch),
    ``"torch"`` or ``"torchvision"`` (raises if the kernel cannot run).
    """
    if backend not in ("auto", "torch", "torchvision"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'torchvision', got {backend!r}")
    if backend != "torch":
        kernel = _torchvision_kernel()
        if kernel is not None:
            return kernel(input, offset, weight, bias, stride=_pair(stride), padding=_pair(padding),
                          dilation=_pair(dilation), mask=mask)
        if backend == "torchvision":
            raise RuntimeError("torchvision.ops.deform_conv2d cannot run here (its C++ ops did not load)")
    return deform_conv2d_torch(input, offset, weight, bias, stride, padding, dilation, mask)
