"""Modulated deformable 2-D convolution (DCNv2) without mmcv.

AirNet calls ``mmcv.ops.modulated_deform_conv2d``; the same operation is
``torchvision.ops.deform_conv2d(..., mask=...)`` (docs/models/airnet.md#deformable-convolution).  On the
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

The pure-torch path samples taps with :func:`torch.nn.functional.grid_sample`
(``align_corners=True``, zero padding), whose per-corner zero padding is exactly
the rule above, then contracts the sampled columns with the weight.  Two variants:

* ``memory="lean"`` (default): a custom autograd function that saves only its
  inputs (input, offset, mask, weight) and recomputes the sampling in backward,
  chunk by chunk (several whole images, or row bands of one image, each holding at
  most ``chunk_elements`` sampled values), so neither pass keeps the
  ``C*kh*kw x H*W`` columns of a whole batch.  Not twice differentiable
  (double backward raises).
* ``memory="reference"``: the original op (:func:`deform_conv2d_reference`),
  whose autograd graph keeps the sampled columns of every call.

Both are differentiable with respect to input, offset, mask, weight and bias.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

IntPair = Union[int, Tuple[int, int]]

__all__ = [
    "deform_conv2d",
    "deform_conv2d_torch",
    "deform_conv2d_reference",
    "deform_conv2d_lean",
    "memory_mode",
    "torchvision_deform_conv_available",
]

MEMORY_MODES = ("lean", "reference")
# sampled values (input channels x taps x output pixels) held per chunk: 16 MiB in float32
DEFAULT_CHUNK_ELEMENTS = 1 << 22
_default_memory = "lean"


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


def deform_conv2d_reference(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: Optional[Tensor] = None,
) -> Tensor:
    """Pure-torch ``deform_conv2d`` sampling all taps at once; autograd keeps the sampled columns.

    The original implementation, kept as the reference the lean op is tested and benchmarked against.
    """
    n, c, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    taps = kh * kw
    groups, offset_groups, h_out, w_out = _validate(input, offset, weight, mask, stride, padding, dilation)

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


def _check_memory(memory: str) -> str:
    if memory not in MEMORY_MODES:
        raise ValueError(f"memory must be 'lean' or 'reference', got {memory!r}")
    return memory


@contextlib.contextmanager
def memory_mode(memory: str) -> Iterator[None]:
    """Within the block, pure-torch calls that pass no ``memory`` use this variant.

    For comparing the variants inside a whole model (tests, benchmarks); not thread-safe.
    """
    global _default_memory
    previous, _default_memory = _default_memory, _check_memory(memory)
    try:
        yield
    finally:
        _default_memory = previous


class _Geometry(NamedTuple):
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    kernel: Tuple[int, int]
    pad_yx: Tuple[int, int]  # zero rows/columns added around a one-pixel axis
    groups: int
    offset_groups: int
    out_hw: Tuple[int, int]
    chunks: Tuple[Tuple[int, int, int, int], ...]  # (first image, end image, first row, end row)


def _plan_chunks(n: int, per_row: int, h_out: int, budget: int) -> Tuple[Tuple[int, int, int, int], ...]:
    """Whole images while an image fits the budget (fewer, larger matmuls), else row bands of one image."""
    per_image = per_row * h_out
    if per_image <= budget:
        k = max(1, budget // max(per_image, 1))
        return tuple((b, min(b + k, n), 0, h_out) for b in range(0, n, k))
    rows = max(1, budget // max(per_row, 1))
    return tuple((b, b + 1, r, min(r + rows, h_out)) for b in range(n) for r in range(0, h_out, rows))


def _grid(offset_chunk: Tensor, geo: _Geometry, hp: int, wp: int, r0: int, r1: int, dtype: torch.dtype) -> Tensor:
    """grid_sample grid for output rows r0:r1 of the images in ``offset_chunk`` (same arithmetic as the reference)."""
    nb = offset_chunk.shape[0]
    kh, kw = geo.kernel
    taps = kh * kw
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    pad_y, pad_x = geo.pad_yx
    w_out = geo.out_hw[1]
    dev, dt = offset_chunk.device, offset_chunk.dtype
    tap_y = (torch.arange(kh, device=dev, dtype=dt) * dh).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=dev, dtype=dt) * dw).repeat(kh)
    out_y = torch.arange(r0, r1, device=dev, dtype=dt) * sh - ph + pad_y
    out_x = torch.arange(w_out, device=dev, dtype=dt) * sw - pw + pad_x
    base_y = tap_y.view(taps, 1, 1) + out_y.view(1, -1, 1)
    base_x = tap_x.view(taps, 1, 1) + out_x.view(1, 1, w_out)
    off = offset_chunk.reshape(nb, geo.offset_groups, taps, 2, r1 - r0, w_out)
    pos_y = base_y + off[:, :, :, 0]
    pos_x = base_x + off[:, :, :, 1]
    grid = torch.stack((pos_x * (2.0 / (wp - 1)) - 1.0, pos_y * (2.0 / (hp - 1)) - 1.0), dim=-1)
    return grid.view(nb * geo.offset_groups, taps * (r1 - r0), w_out, 2).to(dtype)


def _sample(inp_chunk: Tensor, grid: Tensor, offset_groups: int) -> Tensor:
    nb, c, hp, wp = inp_chunk.shape
    return F.grid_sample(inp_chunk.reshape(nb * offset_groups, c // offset_groups, hp, wp), grid,
                         mode="bilinear", padding_mode="zeros", align_corners=True)


def _mask_chunk(mask: Tensor, geo: _Geometry, b0: int, b1: int, r0: int, r1: int, dtype: torch.dtype) -> Tensor:
    """(nb, offset_groups, 1, taps, rows*w_out): broadcasts over the channels of an offset group."""
    taps = geo.kernel[0] * geo.kernel[1]
    m = mask[b0:b1, :, r0:r1]
    return m.reshape(b1 - b0, geo.offset_groups, 1, taps, -1).to(dtype)


def _no_autocast(device: torch.device):
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except Exception:  # pragma: no cover - a device type autocast does not know
        return contextlib.nullcontext()


class _LeanDeformConv2d(torch.autograd.Function):
    """Saves (input, offset, mask, weight); backward recomputes each chunk's sampled columns."""

    @staticmethod
    def forward(ctx, input: Tensor, offset: Tensor, mask: Optional[Tensor], weight: Tensor,
                bias: Optional[Tensor], geo: _Geometry) -> Tensor:
        n, c, hp, wp = input.shape
        c_out, c_per_group, kh, kw = weight.shape
        taps, G, groups = kh * kw, geo.offset_groups, geo.groups
        h_out, w_out = geo.out_hw
        w_mat = weight.reshape(groups, c_out // groups, c_per_group * taps)
        out = input.new_empty(n, c_out, h_out, w_out)
        with _no_autocast(input.device):
            for b0, b1, r0, r1 in geo.chunks:
                nb, rows = b1 - b0, r1 - r0
                cols = _sample(input[b0:b1], _grid(offset[b0:b1, :, r0:r1], geo, hp, wp, r0, r1, input.dtype), G)
                cols = cols.view(nb, G, c // G, taps, rows * w_out)
                if mask is not None:
                    cols.mul_(_mask_chunk(mask, geo, b0, b1, r0, r1, cols.dtype))
                cols = cols.view(nb, groups, c_per_group * taps, rows * w_out)
                out[b0:b1, :, r0:r1] = torch.matmul(w_mat, cols).view(nb, c_out, rows, w_out)
                del cols
        if bias is not None:
            out += bias.view(1, c_out, 1, 1)
        ctx.geo = geo
        ctx.has_mask = mask is not None
        ctx.save_for_backward(input, offset, mask if mask is not None else input.new_empty(0), weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        # grad mode is on here only under create_graph=True, i.e. when a second derivative is wanted
        if torch.is_grad_enabled():
            raise RuntimeError("deform_conv2d (memory='lean') does not support double backward "
                               "(create_graph=True); use memory='reference' for higher-order gradients")
        input, offset, mask, weight = ctx.saved_tensors
        mask = mask if ctx.has_mask else None
        geo: _Geometry = ctx.geo
        need_in, need_off, need_mask, need_w, need_b = ctx.needs_input_grad[:5]
        n, c, hp, wp = input.shape
        c_out, c_per_group, kh, kw = weight.shape
        taps, G, groups = kh * kw, geo.offset_groups, geo.groups
        h_out, w_out = geo.out_hw
        w_mat = weight.reshape(groups, c_out // groups, c_per_group * taps)
        w_mat_t = w_mat.transpose(1, 2)
        grad_out = grad_out.to(weight.dtype)

        g_in = torch.zeros_like(input) if need_in else None
        g_off = torch.zeros_like(offset) if need_off else None
        g_mask = torch.zeros_like(mask) if need_mask and mask is not None else None
        g_w = torch.zeros_like(w_mat) if need_w else None
        g_b = grad_out.sum((0, 2, 3)) if need_b else None
        leaves_wanted = need_in or need_off
        with _no_autocast(input.device):
            for b0, b1, r0, r1 in geo.chunks:
                nb, rows = b1 - b0, r1 - r0
                L = rows * w_out
                go = grad_out[b0:b1, :, r0:r1].reshape(nb, groups, c_out // groups, L)
                with torch.enable_grad():
                    inp_leaf = input[b0:b1].detach().requires_grad_(need_in)
                    off_leaf = offset[b0:b1, :, r0:r1].detach().requires_grad_(need_off)
                    raw_graph = _sample(inp_leaf, _grid(off_leaf, geo, hp, wp, r0, r1, input.dtype), G)
                raw = raw_graph.detach().view(nb, G, c // G, taps, L)
                m = _mask_chunk(mask, geo, b0, b1, r0, r1, raw.dtype) if mask is not None else None
                if need_w:
                    cols = raw * m if m is not None else raw
                    g_w += torch.matmul(go, cols.reshape(nb, groups, c_per_group * taps, L).transpose(2, 3)).sum(0)
                    del cols
                if not (leaves_wanted or g_mask is not None):
                    continue
                g_cols = torch.matmul(w_mat_t, go).view(nb, G, c // G, taps, L)  # d loss / d masked columns
                if g_mask is not None:
                    g_mask[b0:b1, :, r0:r1] = (g_cols * raw).sum(2).view(nb, G * taps, rows, w_out)
                del raw
                if leaves_wanted:
                    if m is not None:
                        g_cols.mul_(m)
                    leaves = [t for t, want in ((inp_leaf, need_in), (off_leaf, need_off)) if want]
                    grads = torch.autograd.grad(raw_graph, leaves, g_cols.view_as(raw_graph))
                    grads = list(grads)
                    if need_in:
                        g_in[b0:b1] += grads.pop(0)
                    if need_off:
                        g_off[b0:b1, :, r0:r1] = grads.pop(0)
                del g_cols, raw_graph
        return (g_in, g_off, g_mask, g_w.view_as(weight) if g_w is not None else None, g_b, None)


def _validate(input: Tensor, offset: Tensor, weight: Tensor, mask: Optional[Tensor], stride: IntPair,
              padding: IntPair, dilation: IntPair) -> Tuple[int, int, int, int]:
    """(groups, offset_groups, h_out, w_out); raises on inconsistent shapes (same messages for both variants)."""
    n, c, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    taps = kh * kw
    if c % c_per_group:
        raise ValueError(f"input channels {c} not divisible by weight's {c_per_group} channels per group")
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
    return c // c_per_group, offset_groups, h_out, w_out


_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    try:
        if torch.is_autocast_enabled(device.type):
            return torch.get_autocast_dtype(device.type)
    except Exception:  # pragma: no cover - older torch or an unknown device type
        pass
    return None


def deform_conv2d_lean(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: Optional[Tensor] = None,
    chunk_elements: Optional[int] = None,
) -> Tensor:
    """Pure-torch ``deform_conv2d`` that recomputes the sampling in backward instead of storing it.

    ``chunk_elements`` bounds the sampled values held at once (default
    ``DEFAULT_CHUNK_ELEMENTS``).  Precision: under autocast, or with float16/bfloat16
    inputs, everything runs in float32 (sampling positions need it: bfloat16 resolves
    only 0.5 px at coordinate 128) and the result is cast to the autocast dtype, or to
    the input's dtype.  Otherwise the op runs in the input's dtype.
    """
    groups, offset_groups, h_out, w_out = _validate(input, offset, weight, mask, stride, padding, dilation)
    amp = _autocast_dtype(input.device)
    out_dtype = amp if amp is not None else input.dtype
    tensors = [t for t in (input, offset, weight, bias, mask) if t is not None]
    work = torch.float32 if amp is not None or any(t.dtype in _LOW_PRECISION for t in tensors) else input.dtype
    # the casts (if any) are ordinary autograd ops: gradients reach the original dtypes
    input, offset, weight = input.to(work), offset.to(work), weight.to(work)
    bias = bias.to(work) if bias is not None else None
    mask = mask.to(work) if mask is not None else None

    _, c, h, w = input.shape
    # a one-pixel axis is zero-padded, as in the reference (grid_sample's align_corners=True needs two pixels)
    pad_y, pad_x = (1 if h < 2 else 0), (1 if w < 2 else 0)
    if pad_y or pad_x:
        input = F.pad(input, (pad_x, pad_x, pad_y, pad_y))
    kh, kw = weight.shape[2:]
    budget = int(chunk_elements) if chunk_elements is not None else DEFAULT_CHUNK_ELEMENTS
    if budget < 1:
        raise ValueError(f"chunk_elements must be positive, got {chunk_elements}")
    geo = _Geometry(_pair(stride), _pair(padding), _pair(dilation), (int(kh), int(kw)), (pad_y, pad_x),
                    groups, offset_groups, (h_out, w_out),
                    _plan_chunks(input.shape[0], c * kh * kw * w_out, h_out, budget))
    out = _LeanDeformConv2d.apply(input, offset, mask, weight, bias, geo)
    return out if out.dtype == out_dtype else out.to(out_dtype)


def deform_conv2d_torch(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    mask: Optional[Tensor] = None,
    memory: Optional[str] = None,
    chunk_elements: Optional[int] = None,
) -> Tensor:
    """Pure-torch ``deform_conv2d`` with torchvision's argument order and layout.

    ``memory``: ``"lean"`` (recompute in backward, :func:`deform_conv2d_lean`) or
    ``"reference"`` (:func:`deform_conv2d_reference`); ``None`` takes the current
    default (``"lean"`` unless changed by :func:`memory_mode`).
    """
    memory = _check_memory(memory if memory is not None else _default_memory)
    if memory == "reference":
        return deform_conv2d_reference(input, offset, weight, bias, stride, padding, dilation, mask)
    return deform_conv2d_lean(input, offset, weight, bias, stride, padding, dilation, mask, chunk_elements)


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
    memory: Optional[str] = None,
) -> Tensor:
    """Modulated deformable convolution.

    ``backend``: ``"auto"`` (torchvision's kernel when it loads, else pure torch),
    ``"torch"`` or ``"torchvision"`` (raises if the kernel cannot run).  ``memory``
    picks the pure-torch variant (see :func:`deform_conv2d_torch`); torchvision's
    kernel ignores it.
    """
    if memory is not None:
        _check_memory(memory)
    if backend not in ("auto", "torch", "torchvision"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'torchvision', got {backend!r}")
    if backend != "torch":
        kernel = _torchvision_kernel()
        if kernel is not None:
            return kernel(input, offset, weight, bias, stride=_pair(stride), padding=_pair(padding),
                          dilation=_pair(dilation), mask=mask)
        if backend == "torchvision":
            raise RuntimeError("torchvision.ops.deform_conv2d cannot run here (its C++ ops did not load)")
    return deform_conv2d_torch(input, offset, weight, bias, stride, padding, dilation, mask, memory)
