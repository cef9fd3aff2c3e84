"""MoCE-IR and MoCE-IR-S (Zamfir et al., CVPR 2025) re-implemented for dacode-bench.

Paper: E. Zamfir, Z. Wu, N. Mehta, Y. Tan, D. P. Paudel, Y. Zhang, R. Timofte,
"Complexity Experts are Task-Discriminative Learners for Any Image Restoration",
CVPR 2025, arXiv:2411.18466.  Facts (layer order, shapes, formulas, router,
losses) were read from ``eduardzamfir/MoCE-IR:src/net/moce_ir.py@a1a6e74``; the
losses from ``src/train.py``, ``src/utils/loss_utils.py`` and the training
commands in ``README.md`` at the same commit.  Key names and shapes:
specs/moce_ir_state_dict.json and specs/moce_ir_s_state_dict.json.  Longer notes:
docs/models/moce_ir.md.

The defaults build the released MoCE-IR (``dim=48``); ``dim=32`` is MoCE-IR-S.
Both have 1262 state-dict entries (10 of them the routers' ``complexity``
buffers); 25,353,796 and 11,477,752 parameters.

Layout
------
* Encoder: a Restormer-style U-Net (``levels`` = 4) of MDTA + gated-FFN blocks
  whose convolutions carry biases; width ``dim * 2**i`` at level i.
* Latent -> ``freq_embed``: depth-wise 3x3 Laplacian (initialised
  [-1..8..-1], trainable: the official ``requires_grad_ = False`` assigns an
  attribute instead of freezing), GELU, spatial mean, MLP (C -> 2C -> C).
* Decoder level i: up-sample, concatenate the skip, 1x1 fusion to the level
  width, then ``num_dec_blocks`` (reversed: [4, 4, 2] for the release)
  decoder blocks.  A decoder block normalises x, makes two 1x1 projections,
  runs MDTA on the first ("shared" path) and a mixture of complexity experts on
  the second (conditioned on the shared features), merges them with a
  cross-attention (queries from the expert path, keys/values from the shared
  path: 3x3 / 7x7 depth-wise), adds the block input, then a gated FFN.
* Experts: E = ``num_experts`` low-rank blocks; at a decoder level of width C
  expert j has rank ``C // 2**(E-1-j)`` ("spread": C/8, C/4, C/2, C) and an attention
  in the Fourier domain over non-overlapping ``2**(j+2)``-pixel patches
  (4, 8, 16, 32).  expert(x, s) = x + W_out(body(W_in x) * silu(W_s s)).
* Router (one per decoder block, image level): logits = W_g avgpool(x) +
  W_f freq_emb; **Gaussian noise is added in training and in eval**
  (``randn_like(logits) / num_experts``); softmax; top-k; the selected experts'
  outputs are weighted by their (noisy) softmax scores and summed, then 1x1.
* Refinement blocks at width ``dim``, 3x3 output conv, global residual.

Randomness
----------
Every router draws exactly one ``torch.randn_like(logits)`` (shape
N x num_experts, dtype/device of the logits, torch's global generator) per
forward, in decoder order (dec.0 blocks 0..3, dec.1 blocks 0..3, dec.2 blocks
0..1 for the release), and nothing else in the forward draws random numbers.
A forward after ``torch.manual_seed(s)`` therefore uses the same draws as the
official forward after the same seed on the same device type.  Set
``model.router_noise = False`` for deterministic outputs (not the official
behaviour).  ``stochastic = True`` tells the harness to seed per image.

Deviation for batches > 1 in eval: the official eval path applies the experts
chosen for *every* sample of the batch to the whole batch and sums them (it
was written for batch 1).  Here each sample gets its own experts, which is what
the official code computes for batch 1 and in training mode for any batch.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.promptir import ChannelAttention, Downsample, GatedFeedForward, Upsample, pad_to_multiple

__all__ = ["MoCEIR", "FFTAttention", "RoutingFunction", "MINI_CONFIG", "MINI_CONFIG_S", "fft_l1_loss"]

# Offline "mini" profiles: the release structure (4 levels, 4 complexity experts with
# ranks spread over dim/8..dim, patch sizes 4..32, heads 1/2/4/8, top-1 routing with
# eval-time noise) at a quarter of each release's width (MoCE-IR 48 -> 12, MoCE-IR-S
# 32 -> 8) with one block per stage: 534,327 / 249,043 parameters, about 11 / 18
# training images/s (4 x 64x64, AdamW, one thread) here.  In both, the smallest expert of
# the full-resolution decoder level has rank width // 8 = 1 (its channel layer norm then
# returns its bias), as the official rank rule dictates.
MINI_CONFIG = dict(
    dim=12,
    num_blocks=(1, 1, 1, 1),
    num_dec_blocks=(1, 1, 1),
    num_refinement_blocks=1,
    heads=(1, 2, 4, 8),
)
MINI_CONFIG_S = dict(MINI_CONFIG, dim=8)

_DEPTH_TYPES = ("lin", "double", "exp", "fact", "constant")
_RANK_TYPES = ("constant", "lin", "double", "exp", "fact", "spread")


def _conv1x1(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=1, bias=bias)


def _dwconv(channels: int, k: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size=k, padding=k // 2, groups=channels, bias=bias)


def fft_l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of the real and imaginary parts of ``rfft2`` (norm "backward").

    ``loss_utils.FFTLoss``: both spectra as ``stack([real, imag], -1)``, then ``L1Loss(mean)``.
    """
    p = torch.view_as_real(torch.fft.rfft2(pred))
    t = torch.view_as_real(torch.fft.rfft2(target))
    return F.l1_loss(p, t)


# --------------------------------------------------------------------------- building blocks
class _WithBiasNorm(nn.Module):
    """Per-pixel layer norm over channels, biased variance, eps 1e-5, affine.

    Computed as the official code does: (N, H*W, C) copy, normalise the last axis,
    then a channels-last view back to N x C x H x W.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        mu = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(var + 1e-5) * self.weight + self.bias


class _BiasFreeNorm(nn.Module):
    """Scale-only variant: x / std * weight (the mean is kept)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        var = x.var(-1, keepdim=True, unbiased=False)
        return x / torch.sqrt(var + 1e-5) * self.weight


class ChannelNorm(nn.Module):
    """Layer norm over the channel axis of N x C x H x W (released key ``<...>.body.weight``)."""

    def __init__(self, channels: int, kind: str = "WithBias"):
        super().__init__()
        # as in the official code, anything but 'BiasFree' means WithBias
        self.body = _BiasFreeNorm(channels) if kind == "BiasFree" else _WithBiasNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        y = self.body(x.permute(0, 2, 3, 1).reshape(n, h * w, c))
        return y.reshape(n, h, w, c).permute(0, 3, 1, 2)


class CrossAttention(nn.Module):
    """Channel (transposed) attention with queries from x and keys/values from y.

    q: 1x1 then 3x3 depth-wise; k, v: 1x1 to 2C then 7x7 depth-wise; L2-normalised
    q/k rows, per-head learned temperature, softmax over channels, 1x1 out.
    """

    def __init__(self, channels: int, heads: int, bias: bool):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels cannot be split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.q = _conv1x1(channels, channels, bias)
        self.q_dwconv = _dwconv(channels, 3, bias)
        self.kv = _conv1x1(channels, 2 * channels, bias)
        self.kv_dwconv = _dwconv(2 * channels, 7, bias)
        self.project_out = _conv1x1(channels, channels, bias)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q = self.q_dwconv(self.q(x)).reshape(n, self.heads, c // self.heads, h * w)
        k, v = self.kv_dwconv(self.kv(y)).reshape(n, 2, self.heads, c // self.heads, h * w).unbind(1)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (torch.matmul(q, k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out(torch.matmul(attn, v).reshape(n, c, h, w))


class FFTAttention(nn.Module):
    """An expert's body: patch-wise product of q and k spectra, normalised, gating v.

    q = dw3x3(1x1(x)) (depth-wise conv with bias), [k, v] = dw7x7(1x1(x)).  q and k are
    zero-padded at the bottom/right to a multiple of ``patch_size`` and cut into
    non-overlapping p x p patches; per patch irfft2(rfft2(q) * rfft2(k)) (a circular
    cross-correlation-like product, computed in float32); patches are put back and cropped,
    layer-normalised over channels, multiplied by v, 1x1 out (with bias).
    ``kernel_size`` is accepted and unused, as in the official expert (7x7 is fixed).
    """

    def __init__(self, dim: int, patch_size: int, kernel_size: Optional[int] = None):
        super().__init__()
        self.patch_size = int(patch_size)
        self.q = _conv1x1(dim, dim, False)
        self.q_dwconv = _dwconv(dim, 3, True)
        self.kv = _conv1x1(dim, 2 * dim, False)
        self.kv_dwconv = _dwconv(2 * dim, 7, True)
        self.norm = ChannelNorm(dim, "WithBias")
        self.proj_out = _conv1x1(dim, dim, True)

    def _to_patches(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        p = self.patch_size
        x = F.pad(x, (0, (-w) % p, 0, (-h) % p))  # zeros
        hp, wp = x.shape[-2] // p, x.shape[-1] // p
        return x.reshape(n, c, hp, p, wp, p).permute(0, 1, 2, 4, 3, 5)  # n c hp wp p p

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        p = self.patch_size
        q = self.q_dwconv(self.q(x))
        k, v = self.kv_dwconv(self.kv(x)).chunk(2, dim=1)
        spec = torch.fft.rfft2(self._to_patches(q).float()) * torch.fft.rfft2(self._to_patches(k).float())
        out = torch.fft.irfft2(spec, s=(p, p))
        hp, wp = out.shape[2], out.shape[3]
        out = out.permute(0, 1, 2, 4, 3, 5).reshape(n, c, hp * p, wp * p)[:, :, :h, :w]
        return self.proj_out(self.norm(out) * v)


class ModExpert(nn.Module):
    """Low-rank complexity expert: x + proj[2](body(proj[0](x)) * silu(proj[1](shared)))."""

    def __init__(self, dim: int, rank: int, body: Callable[..., nn.Module], depth: int,
                 patch_size: int, kernel_size: int):
        super().__init__()
        # The official loop runs `depth` times but always restarts from the block input, so the
        # result equals one application; it is computed once here.  depth < 1 fails there.
        if depth < 1:
            raise ValueError(f"expert depth must be >= 1, got {depth} (see depth_type / stage_depth)")
        self.depth = depth
        self.proj = nn.ModuleList([
            _conv1x1(dim, rank, False),
            _conv1x1(dim, rank, False),
            _conv1x1(rank, dim, False),
        ])
        self.body = body(rank, kernel_size=kernel_size, patch_size=patch_size)

    def forward(self, x: Tensor, shared: Tensor) -> Tensor:
        if x.shape[0] == 0:
            return x
        y = self.body(self.proj[0](x)) * F.silu(self.proj[1](shared))
        return self.proj[2](y) + x


class ExpertChain(nn.ModuleList):
    """Holds one expert at index 0 (the released key is ``experts.<j>.0.*``)."""

    def forward(self, x: Tensor, shared: Tensor) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, shared)
        return x


def _normal_cdf(z: Tensor) -> Tensor:
    """Phi(z) as torch.distributions.Normal(0, 1).cdf computes it."""
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


class RoutingFunction(nn.Module):
    """Image-level noisy top-k router with the importance + load auxiliary loss.

    ``complexity`` (buffer): the experts' parameter counts, divided by their max
    ("max", the release) or min ("min"); only the importance loss uses it, and only
    when ``use_complexity_bias`` (the official ``with_complexity``) is set.
    """

    def __init__(self, dim: int, freq_dim: int, num_experts: int, k: int, complexity: Tensor,
                 use_complexity_bias: bool = False, complexity_scale: Optional[str] = "max"):
        super().__init__()
        if not 1 <= k <= num_experts:
            raise ValueError(f"topk must lie in [1, num_experts={num_experts}], got {k}")
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(dim, num_experts, bias=False),
        )
        self.freq_gate = nn.Linear(freq_dim, num_experts, bias=False)
        if complexity_scale == "min":
            complexity = complexity / complexity.min()
        elif complexity_scale == "max":
            complexity = complexity / complexity.max()
        self.register_buffer("complexity", complexity)
        self.k = k
        self.tau = 1.0
        self.num_experts = num_experts
        self.noise_std = 1.0 / num_experts
        self.use_complexity_bias = use_complexity_bias

    def forward(self, x: Tensor, freq_emb: Tensor, noise: bool = True
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Returns (gates N x E, top-k indices, top-k scores, auxiliary loss)."""
        logits = self.gate(x) + self.freq_gate(freq_emb)
        if noise:
            noisy = logits + torch.randn_like(logits) * self.noise_std  # drawn in eval mode too
        else:
            noisy = logits
        scores = noisy.softmax(dim=-1)
        top_values, top_indices = torch.topk(scores, self.k, dim=-1)
        if self.training:
            aux = 0.5 * self.importance_loss(logits.softmax(dim=-1)) + 0.5 * self.load_loss(logits, noisy)
        else:
            aux = logits.new_zeros(())
        gates = torch.zeros_like(logits).scatter(1, top_indices, top_values)
        return gates, top_indices, top_values, aux

    def importance_loss(self, probs: Tensor) -> Tensor:
        """CV^2 of the per-expert sum of the noise-free softmax (optionally x complexity)."""
        importance = probs.sum(dim=0)
        if self.use_complexity_bias:
            importance = importance * (self.complexity * self.tau)
        return (importance.std() / (importance.mean() + 1e-8)) ** 2

    def load_loss(self, logits: Tensor, noisy: Tensor) -> Tensor:
        """CV^2 of the mean probability that each expert's noisy logit beats the k-th best.

        threshold_b = noisy[b, index of the k-th largest noisy logit];
        p[b, e] = 1 - Phi((threshold_b - logits[b, e]) / noise_std).
        """
        kth = torch.topk(noisy, self.k, dim=-1).indices[:, -1:]
        threshold = noisy.gather(1, kth)
        p = 1.0 - _normal_cdf((threshold - logits) / self.noise_std)
        p_mean = p.mean(dim=0)
        return (p_mean.std() / (p_mean.mean() + 1e-8)) ** 2


def _expert_depths(depth_type: Union[str, int], stage_depth: int, n: int) -> List[int]:
    if isinstance(depth_type, bool) or not isinstance(depth_type, (str, int)):
        raise ValueError(f"depth_type must be one of {_DEPTH_TYPES} or an int, got {depth_type!r}")
    if depth_type == "lin":
        return [stage_depth + i for i in range(n)]
    if depth_type == "double":
        return [stage_depth + 2 * i for i in range(n)]
    if depth_type == "exp":
        return [2 ** i for i in range(n)]
    if depth_type == "fact":
        return [math.factorial(i + 1) for i in range(n)]
    if isinstance(depth_type, int):
        return [depth_type] * n
    if depth_type == "constant":
        return [stage_depth] * n
    raise ValueError(f"depth_type must be one of {_DEPTH_TYPES} or an int, got {depth_type!r}")


def _expert_ranks(rank_type: str, rank: int, dim: int, n: int) -> List[int]:
    if rank_type == "constant":
        ranks = [rank] * n
    elif rank_type == "lin":
        ranks = [rank + i for i in range(n)]
    elif rank_type == "double":
        ranks = [rank + 2 * i for i in range(n)]
    elif rank_type == "exp":
        ranks = [rank ** (i + 1) for i in range(n)]
    elif rank_type == "fact":
        ranks = [math.factorial(rank + i) for i in range(n)]
    elif rank_type == "spread":
        ranks = [dim // 2 ** i for i in range(n)][::-1]
    else:
        raise ValueError(f"rank_type must be one of {_RANK_TYPES}, got {rank_type!r}")
    if min(ranks) < 1:
        raise ValueError(f"rank_type={rank_type!r} gives expert ranks {ranks} at width {dim}; all must be >= 1")
    return ranks


class AdapterLayer(nn.Module):
    """Mixture of complexity experts: route, run the chosen experts, weight, sum, 1x1."""

    def __init__(self, dim: int, rank: int, num_experts: int, top_k: int, expert_layer: Callable[..., nn.Module],
                 stage_depth: int, depth_type: Union[str, int], rank_type: str, freq_dim: int,
                 with_complexity: bool, complexity_scale: Optional[str]):
        super().__init__()
        self.num_experts = num_experts
        self.top_k = top_k
        patch_sizes = [2 ** (i + 2) for i in range(num_experts)]
        kernel_sizes = [3 + 2 * i for i in range(num_experts)]  # passed on, unused by FFTAttention
        depths = _expert_depths(depth_type, stage_depth, num_experts)
        ranks = _expert_ranks(rank_type, rank, dim, num_experts)
        self.experts = nn.ModuleList([
            ExpertChain([ModExpert(dim, r, expert_layer, d, p, k)])
            for d, r, p, k in zip(depths, ranks, patch_sizes, kernel_sizes)
        ])
        self.proj_out = _conv1x1(dim, dim, False)
        complexity = torch.tensor([sum(p.numel() for p in e.parameters()) for e in self.experts])
        self.routing = RoutingFunction(dim, freq_dim, num_experts, top_k, complexity,
                                       use_complexity_bias=with_complexity, complexity_scale=complexity_scale)
        self.loss: Tensor | None = None

    def forward(self, x: Tensor, freq_emb: Tensor, shared: Tensor, noise: bool = True) -> Tensor:
        _, top_indices, top_values, aux = self.routing(x, freq_emb, noise)
        self.loss = aux
        # out[b] = sum_j score[b, j] * expert_{idx[b, j]}(x[b], shared[b]), summed in top-k order
        # (the official eval order; training sums by expert index, equal for top-1).
        out = torch.zeros_like(x)
        n = x.shape[0]
        for j in range(self.top_k):
            choice = top_indices[:, j]
            for e in torch.unique(choice).tolist():
                weight = top_values[:, j].view(n, 1, 1, 1)
                if n == 1 or bool((choice == e).all()):
                    out = out + weight * self.experts[e](x, shared)
                else:
                    sel = (choice == e).nonzero().squeeze(1)
                    contrib = weight[sel] * self.experts[e](x[sel], shared[sel])
                    out = out.index_add(0, sel, contrib)
        return self.proj_out(out)


# --------------------------------------------------------------------------- blocks and groups
class EncoderBlock(nn.Module):
    """Restormer block: x + MDTA(norm(x)), then + GDFN(norm(.))."""

    def __init__(self, dim: int, heads: int, expansion: float, bias: bool, norm: str):
        super().__init__()
        self.norms = nn.ModuleList([ChannelNorm(dim, norm), ChannelNorm(dim, norm)])
        self.mixer = ChannelAttention(dim, heads, bias)
        self.ffn = GatedFeedForward(dim, expansion, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.mixer(self.norms[0](x))
        return x + self.ffn(self.norms[1](x))


class DecoderBlock(nn.Module):
    """Shared MDTA path + expert path, merged by cross-attention; then GDFN."""

    def __init__(self, dim: int, heads: int, expansion: float, bias: bool, norm: str, *, rank: int,
                 num_experts: int, top_k: int, expert_layer: Callable[..., nn.Module], stage_depth: int,
                 depth_type: Union[str, int], rank_type: str, freq_dim: int, with_complexity: bool,
                 complexity_scale: Optional[str]):
        super().__init__()
        self.norms = nn.ModuleList([ChannelNorm(dim, norm), ChannelNorm(dim, norm)])
        self.proj = nn.ModuleList([_conv1x1(dim, dim, True), _conv1x1(dim, dim, True)])
        self.shared = ChannelAttention(dim, heads, bias)
        self.mixer = CrossAttention(dim, heads, bias)
        self.ffn = GatedFeedForward(dim, expansion, bias)
        self.adapter = AdapterLayer(dim, rank, num_experts, top_k, expert_layer, stage_depth, depth_type,
                                    rank_type, freq_dim, with_complexity, complexity_scale)

    def forward(self, x: Tensor, freq_emb: Tensor, noise: bool = True) -> Tuple[Tensor, Tensor]:
        y = self.norms[0](x)
        shared = self.shared(self.proj[0](y))
        expert = self.adapter(self.proj[1](y), freq_emb, shared, noise)
        x = self.mixer(expert, shared) + x
        x = x + self.ffn(self.norms[1](x))
        return x, self.adapter.loss


class EncoderGroup(nn.Module):
    def __init__(self, dim: int, heads: int, n: int, expansion: float, norm: str, bias: bool):
        super().__init__()
        self.layers = nn.ModuleList([EncoderBlock(dim, heads, expansion, bias, norm) for _ in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class DecoderGroup(nn.Module):
    """Decoder blocks in sequence; ``loss`` = sum of their routers' auxiliary losses."""

    def __init__(self, dim: int, heads: int, n: int, expansion: float, norm: str, bias: bool, **adapter_kw):
        super().__init__()
        self.layers = nn.ModuleList([DecoderBlock(dim, heads, expansion, bias, norm, **adapter_kw)
                                     for _ in range(n)])
        self.loss: Tensor | None = None

    def forward(self, x: Tensor, freq_emb: Tensor, noise: bool = True) -> Tensor:
        total = x.new_zeros(())
        for layer in self.layers:
            x, aux = layer(x, freq_emb, noise)
            total = total + aux
        self.loss = total
        return x


class HighPassConv2d(nn.Module):
    """Depth-wise 3x3, no bias, initialised to the 8-neighbour Laplacian; trainable (see module doc)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels, bias=False)
        kernel = torch.full((3, 3), -1.0)
        kernel[1, 1] = 8.0
        with torch.no_grad():
            self.conv.weight.copy_(kernel.to(self.conv.weight.device).expand_as(self.conv.weight))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class FrequencyEmbedding(nn.Module):
    """Latent -> Laplacian -> GELU -> spatial mean -> Linear(C, 2C), GELU, Linear(2C, C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.high_conv = nn.Sequential(HighPassConv2d(dim), nn.GELU())
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.high_conv(x).mean(dim=(-2, -1)))


class PatchEmbed(nn.Module):
    def __init__(self, c_in: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


# --------------------------------------------------------------------------- the network
class MoCEIR(nn.Module):
    """MoCE-IR (defaults: the released dim-48 model; ``dim=32`` is MoCE-IR-S).

    Keyword names follow the official constructor.  ``forward(x)`` restores; in
    training mode it also leaves the averaged router auxiliary loss in
    ``total_loss`` (also ``aux_loss``).  ``training_loss(degraded, clean)``:
    L1 + ``fft_loss_weight`` x FFT-L1 + ``balance_loss_weight`` x auxiliary loss
    (released recipe: 0.1 and 0.01; docs/models/moce_ir.md).
    """

    stochastic = True  # the router draws Gaussian noise at test time too

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        levels: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_dec_blocks: Sequence[int] = (2, 4, 4),
        ffn_expansion_factor: float = 2,
        num_refinement_blocks: int = 4,
        LayerNorm_type: str = "WithBias",  # noqa: N803 (official keyword)
        bias: bool = False,
        rank: int = 2,
        num_experts: int = 4,
        depth_type: Union[str, int] = "constant",
        stage_depth: Sequence[int] = (1, 1, 1),
        rank_type: str = "spread",
        topk: int = 1,
        expert_layer: Optional[Callable[..., nn.Module]] = None,
        with_complexity: bool = False,
        complexity_scale: Optional[str] = "max",
        fft_loss_weight: float = 0.1,
        balance_loss_weight: float = 0.01,
    ):
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        if len(num_blocks) != levels or len(heads) != levels:
            raise ValueError(f"num_blocks and heads need levels={levels} entries, got {list(num_blocks)} "
                             f"and {list(heads)}")
        if len(num_dec_blocks) != levels - 1 or len(stage_depth) != levels - 1:
            raise ValueError(f"num_dec_blocks and stage_depth need levels-1={levels - 1} entries, got "
                             f"{list(num_dec_blocks)} and {list(stage_depth)}")
        if sum(num_dec_blocks) < 1:
            raise ValueError("num_dec_blocks must contain at least one decoder block (the loss divides by the sum)")
        if complexity_scale not in ("max", "min", None, "none"):
            raise ValueError(f"complexity_scale must be 'max', 'min' or None, got {complexity_scale!r}")
        expert_layer = FFTAttention if expert_layer is None else expert_layer
        self.config = dict(
            inp_channels=inp_channels, out_channels=out_channels, dim=dim, levels=levels, heads=tuple(heads),
            num_blocks=tuple(num_blocks), num_dec_blocks=tuple(num_dec_blocks),
            ffn_expansion_factor=ffn_expansion_factor, num_refinement_blocks=num_refinement_blocks,
            LayerNorm_type=LayerNorm_type, bias=bias, rank=rank, num_experts=num_experts, depth_type=depth_type,
            stage_depth=tuple(stage_depth), rank_type=rank_type, topk=topk, with_complexity=with_complexity,
            complexity_scale=complexity_scale, fft_loss_weight=fft_loss_weight,
            balance_loss_weight=balance_loss_weight,
        )
        self.pad_multiple = 2 ** (levels - 1)  # one 2x pixel-unshuffle per level (8 for the release)
        self.router_noise = True
        self.fft_loss_weight = float(fft_loss_weight)
        self.balance_loss_weight = float(balance_loss_weight)
        self.num_dec_blocks = tuple(num_dec_blocks)
        ex, nt = ffn_expansion_factor, LayerNorm_type
        widths = [dim * 2 ** i for i in range(levels)]

        # Registration order = the released key order.
        self.patch_embed = PatchEmbed(inp_channels, dim)
        self.freq_embed = FrequencyEmbedding(widths[-1])
        self.enc = nn.ModuleList([
            nn.ModuleList([EncoderGroup(widths[i], heads[i], num_blocks[i], ex, nt, bias=True),
                           Downsample(widths[i])])
            for i in range(levels - 1)
        ])
        self.latent = EncoderGroup(widths[-1], heads[-1], num_blocks[-1], ex, nt, bias=True)
        self.dec = nn.ModuleList()
        for i in range(levels - 1):  # deepest first
            c_in, c = widths[levels - 1 - i], widths[levels - 2 - i]
            self.dec.append(nn.ModuleList([
                Upsample(c_in),
                _conv1x1(c_in, c, bias),  # fuses [up-sampled, skip] (c + c channels)
                DecoderGroup(
                    c, heads[levels - 2 - i], num_dec_blocks[levels - 2 - i], ex, nt, bias,
                    rank=rank, num_experts=num_experts, top_k=topk, expert_layer=expert_layer,
                    stage_depth=stage_depth[i], depth_type=depth_type, rank_type=rank_type,
                    freq_dim=widths[-1], with_complexity=with_complexity,
                    complexity_scale=None if complexity_scale == "none" else complexity_scale,
                ),
            ]))
        self.refinement = EncoderGroup(dim, heads[0], num_refinement_blocks, ex, nt, bias=True)
        self.output = nn.Conv2d(dim, out_channels, kernel_size=3, padding=1, bias=bias)
        self.total_loss: Tensor | None = None

    @property
    def aux_loss(self) -> Tensor | None:
        """Router auxiliary loss of the last forward (zero in eval mode), averaged over decoder blocks."""
        return self.total_loss

    def routers(self) -> List[RoutingFunction]:
        """The routers in the order the forward calls them (= the order of their noise draws)."""
        return [m for m in self.modules() if isinstance(m, RoutingFunction)]

    def forward_unpadded(self, x: Tensor) -> Tensor:
        """The network proper; H and W must be multiples of ``pad_multiple``."""
        noise = bool(self.router_noise)
        feats = self.patch_embed(x)
        skips = []
        for group, down in self.enc:
            feats = group(feats)
            skips.append(feats)
            feats = down(feats)
        feats = self.latent(feats)
        freq_emb = self.freq_embed(feats)
        total = x.new_zeros(())
        for up, fuse, group in self.dec:
            feats = fuse(torch.cat([up(feats), skips.pop()], dim=1))
            feats = group(feats, freq_emb, noise)
            total = total + group.loss
        self.total_loss = total / sum(self.num_dec_blocks)
        return self.output(self.refinement(feats)) + x

    def forward(self, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """N x C x H x W -> same shape; other sizes are reflect-padded and cropped back.

        ``labels`` (the official training loop passes degradation ids) is ignored, as there.
        """
        h, w = x.shape[-2:]
        m = self.pad_multiple
        if not (h % m or w % m):
            return self.forward_unpadded(x)
        return self.forward_unpadded(pad_to_multiple(x, m))[..., :h, :w]

    def training_loss(self, degraded: Tensor, clean: Tensor) -> Tensor:
        """L1(restored, clean) + fft_loss_weight * fft_l1_loss + balance_loss_weight * total_loss.

        Official (``src/train.py`` ``PLTrainModel.training_step`` with ``loss_type`` "fft",
        ``--fft_loss_weight 0.1 --balance_loss_weight 0.01``).  The auxiliary loss is
        non-zero only in training mode (as in the official router).
        """
        restored = self(degraded)
        loss = F.l1_loss(restored, clean)
        if self.fft_loss_weight:
            loss = loss + self.fft_loss_weight * fft_l1_loss(restored, clean)
        return loss + self.balance_loss_weight * self.total_loss
