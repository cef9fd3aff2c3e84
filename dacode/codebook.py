"""The DACode module (paper §3.1), the DAC block, and codebook-activation recording.

DACode module, for a feature map X (B×D×H×W, flattened to B×N×D) and the global codebook
C (Nc×Dc):

* stage 1, context-aware code adaptation (Eq. 1-2)::

      ΔC = Attention(LN(C), X, X)         codes are queries, pixels are keys/values
      C' = C + α ⊙ ΔC                     α ∈ R^{Nc×1}, one learnable scale per primitive

* stage 2, code-based feature modulation (Eq. 3)::

      X_mod = Attention(LN(X), LN(C'), LN(C'))   pixels are queries, adapted codes keys/values

"Attention" is standard multi-head scaled dot-product attention with bias-free linear
projections for q, k, v and the output. The codebook lives in its own width Dc (``code_dim``),
shared by DAC blocks whose feature widths D differ, so the projections map between D and Dc:
stage 1 takes k/v from D to Dc and keeps ΔC in Dc; stage 2 takes q from D to Dc and projects the
result back to D. Both stages call the fused ``F.scaled_dot_product_attention``; the score
matrices are Nc×N and N×Nc, never N×N.

The model-level design (where blocks sit, why Dc is fixed, α's initial value) is written down
in :mod:`dacode.model`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from dacode.blocks import GDFN, LayerNorm2d

__all__ = [
    "DACode",
    "DACBlock",
    "CodebookRecording",
    "record_codebook",
    "topk_primitives",
    "pixel_mean_attention",
]

# Pixels per chunk when the recording path materialises softmax(q K^T): B×h×chunk×Nc floats.
_RECORD_CHUNK = 4096


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """B×L×(h·dh) → B×h×L×dh (a view; SDPA accepts the strides)."""
    b, length, width = t.shape
    return t.view(b, length, heads, width // heads).transpose(1, 2)


def _merge_heads(t: torch.Tensor) -> torch.Tensor:
    """B×h×L×dh → B×L×(h·dh)."""
    b, heads, length, dh = t.shape
    return t.transpose(1, 2).reshape(b, length, heads * dh)


def pixel_mean_attention(q: torch.Tensor, k: torch.Tensor, chunk: int = _RECORD_CHUNK) -> torch.Tensor:
    """Mean over queries and heads of softmax(q kᵀ/√dh): B×h×N×dh, B×h×Nc×dh → B×Nc.

    Uses mean_n softmax(q_n Kᵀ) = Σ_chunks Σ_n softmax(q_n Kᵀ) / N, so at most
    B×h×chunk×Nc scores exist at once, whatever N is.
    """
    b, heads, n, dh = q.shape
    kt = k.transpose(-2, -1) * dh**-0.5
    total = q.new_zeros(b, heads, k.shape[-2])
    for start in range(0, n, chunk):
        total += (q[:, :, start : start + chunk] @ kt).softmax(dim=-1).sum(dim=2)
    return total.mean(dim=1) / n


class DACode(nn.Module):
    """Dual cross-attention between the feature map and a (global) codebook.

    Args:
        dim: feature width D of the block it sits in.
        code_dim: codebook width Dc (the codebook itself is passed to :meth:`forward`).
        num_codes: Nc, only needed for α's shape.
        heads: attention heads of both stages (Dc must be divisible by it).
        adaptation: False skips stage 1 (Eq. 1-2), so C' = C: the static-codebook ablation
            of Table 5. Its parameters are then not created, so nothing sits unused.
        alpha_init: initial value of every α entry.
    """

    def __init__(
        self,
        dim: int,
        code_dim: int,
        num_codes: int,
        heads: int = 8,
        adaptation: bool = True,
        alpha_init: float = 0.1,
    ) -> None:
        super().__init__()
        if code_dim % heads:
            raise ValueError(f"code_dim {code_dim} is not divisible by code_heads {heads}")
        self.heads = heads
        self.adaptation = adaptation
        if adaptation:
            self.norm_code = nn.LayerNorm(code_dim)  # LN(C), Eq. 1
            self.adapt_q = nn.Linear(code_dim, code_dim, bias=False)
            self.adapt_kv = nn.Linear(dim, 2 * code_dim, bias=False)
            self.adapt_out = nn.Linear(code_dim, code_dim, bias=False)
            self.alpha = nn.Parameter(torch.full((num_codes, 1), float(alpha_init)))  # α_c, Eq. 2
        self.norm_x = nn.LayerNorm(dim)  # LN(X), Eq. 3
        self.norm_adapted = nn.LayerNorm(code_dim)  # LN(C'), Eq. 3 (same LN for keys and values)
        self.mod_q = nn.Linear(dim, code_dim, bias=False)
        self.mod_kv = nn.Linear(code_dim, 2 * code_dim, bias=False)
        self.mod_out = nn.Linear(code_dim, dim, bias=False)
        # Set by record_codebook(); receives the B×Nc pixel- and head-averaged stage-2 attention.
        self._recorder: Callable[[torch.Tensor], None] | None = None

    # -- the two stages on flattened features (B×N×D) ---------------------------------------
    def _adapt(self, x_flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        b = x_flat.shape[0]
        static = codebook.unsqueeze(0).expand(b, -1, -1)
        if not self.adaptation:
            return static
        # The query side is the same for every image; only keys/values are per image, so each
        # image gets its own C' and images in a batch never see each other.
        q = self.adapt_q(self.norm_code(codebook)).unsqueeze(0).expand(b, -1, -1)
        k, v = self.adapt_kv(x_flat).chunk(2, dim=-1)
        h = self.heads
        delta = _merge_heads(F.scaled_dot_product_attention(_split_heads(q, h), _split_heads(k, h), _split_heads(v, h)))
        return static + self.alpha * self.adapt_out(delta)

    def _modulate(self, x_flat: torch.Tensor, adapted: torch.Tensor) -> torch.Tensor:
        h = self.heads
        q = _split_heads(self.mod_q(self.norm_x(x_flat)), h)
        k, v = (_split_heads(t, h) for t in self.mod_kv(self.norm_adapted(adapted)).chunk(2, dim=-1))
        if self._recorder is not None:
            # Fused SDPA does not return weights; recompute their pixel mean chunk-wise, outside autograd.
            with torch.no_grad():
                self._recorder(pixel_mean_attention(q.detach(), k.detach()))
        return self.mod_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))

    # -- public API on B×D×H×W maps -------------------------------------------------------------
    def adapt(self, x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """Stage 1: the per-image adapted codebook C', B×Nc×Dc (equals C when adaptation=False)."""
        return self._adapt(x.flatten(2).transpose(1, 2), codebook)

    def modulate(self, x: torch.Tensor, adapted: torch.Tensor) -> torch.Tensor:
        """Stage 2: X_mod for features x (B×D×H×W) and an adapted codebook (B×Nc×Dc)."""
        b, d, hh, ww = x.shape
        out = self._modulate(x.flatten(2).transpose(1, 2), adapted)
        return out.transpose(1, 2).reshape(b, d, hh, ww)

    def forward(self, x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """X_mod (B×D×H×W) for features x and the shared codebook (Nc×Dc)."""
        b, d, hh, ww = x.shape
        x_flat = x.flatten(2).transpose(1, 2)
        out = self._modulate(x_flat, self._adapt(x_flat, codebook))
        return out.transpose(1, 2).reshape(b, d, hh, ww)


class DACBlock(nn.Module):
    """DAC block (paper Fig. 2): a Transformer Block whose MDTA is replaced by DACode.

    x + DACode(x), then x + FFN(LN(x)) with the backbone's GDFN. The residual around DACode is our
    choice (the paper only says X_mod "is passed to the FFN"): without it every pixel would be
    replaced by a mixture of Nc code vectors, discarding the spatial detail carried by x.
    """

    def __init__(
        self,
        dim: int,
        code_dim: int,
        num_codes: int,
        code_heads: int = 8,
        ffn_expansion: float = 2.66,
        adaptation: bool = True,
        alpha_init: float = 0.1,
    ) -> None:
        super().__init__()
        self.dacode = DACode(dim, code_dim, num_codes, code_heads, adaptation, alpha_init)
        self.norm = LayerNorm2d(dim)
        self.ffn = GDFN(dim, ffn_expansion)

    def forward(self, x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        x = x + self.dacode(x, codebook)
        return x + self.ffn(self.norm(x))


# -- introspection ---------------------------------------------------------------------------


class CodebookRecording:
    """Stage-2 codebook activations collected by :func:`record_codebook`.

    ``activations[layer]`` is an images×Nc float tensor (CPU): for every image passed through
    the model while recording (in call order, batches concatenated), the stage-2 attention of
    that DAC layer averaged over all pixels and heads. Each row sums to 1.
    """

    def __init__(self, layers: list[str]) -> None:
        self.layers = list(layers)  # DAC layer names, in forward order (deepest decoder level first)
        self._chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def _add(self, layer: str, weights: torch.Tensor) -> None:
        self._chunks[layer].append(weights.detach().float().cpu())

    @property
    def activations(self) -> dict[str, torch.Tensor]:
        return {name: torch.cat(chunks) for name, chunks in self._chunks.items() if chunks}

    def mean(self, layer: str) -> torch.Tensor:
        """The layer's activation averaged over every recorded image (length Nc, sums to 1)."""
        return self.activations[layer].mean(dim=0)

    def topk(self, layer: str, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k primitives of the image-averaged activation: (weights, indices), descending."""
        return topk_primitives(self.activations[layer], k)


def topk_primitives(activations: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, indices) of the k most activated primitives, largest first.

    ``activations`` is a length-Nc vector or an images×Nc matrix (averaged over images first),
    e.g. one entry of :attr:`CodebookRecording.activations` — the paper's Top-5 charts.
    """
    vec = activations.mean(dim=0) if activations.dim() == 2 else activations
    return vec.topk(k)


def _dacode_layers(model: nn.Module) -> list[tuple[str, DACode]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, DACode)]


@contextlib.contextmanager
def record_codebook(model: nn.Module) -> Iterator[CodebookRecording]:
    """Record per-image stage-2 codebook activations of every DACode module in ``model``.

    Layer names are the modules' qualified names, e.g. ``decoder_level1.dac.dacode``. Outputs
    are unchanged: the weights are recomputed beside the fused attention, without gradients.
    Raises ValueError when the model has no DACode module (e.g. ``nc=0``).
    """
    layers = _dacode_layers(model)
    if not layers:
        raise ValueError("model has no DACode modules to record (was it built with nc=0?)")
    rec = CodebookRecording([name for name, _ in layers])
    previous = [m._recorder for _, m in layers]
    for name, m in layers:
        m._recorder = lambda w, name=name: rec._add(name, w)
    try:
        yield rec
    finally:
        for (_, m), prev in zip(layers, previous):
            m._recorder = prev
