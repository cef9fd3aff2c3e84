"""PromptIR (Potlapalli et al., NeurIPS 2023) re-implemented for dacode-bench.

Architecture facts: docs/models/promptir.md (va1shn9v/PromptIR
``net/model.py`` @106159a); key names and shapes: specs/promptir_state_dict.json.
The defaults build the released model, ``PromptIR(decoder=True)``: 548 tensors,
35,592,263 parameters, including the six 1x1 convolutions that the released
forward never calls (kept so the released checkpoint loads strictly).

Layout: a Restormer-style 4-level U-Net of transformer blocks (MDTA attention +
gated depth-wise feed-forward) whose decoder is interleaved with three prompt
blocks.  After the latent level and after decoder levels 3 and 2 the features
are concatenated with a generated prompt, passed through one transformer block
(``noise_level*``) and reduced by a 1x1 convolution.

Channel arithmetic is derived from the data flow rather than hard-coded, so
smaller configurations (``dim``, ``prompt_dims``, ...) work; with the defaults
every shape equals the released one.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PromptIR", "TransformerBlock", "PromptGenBlock", "MINI_CONFIG"]

# Offline "mini" profile: a quarter of the width, one block per level
# (~1.07M parameters, about 3 training steps/s at batch 4 x 64x64 on one core here).
# Prompt widths are the released (64, 128, 320) scaled by dim/48 = 1/4; prompt sizes
# equal the feature size at which each prompt is used for 64x64 training patches (the
# released sizes 64/32/16 match its 128x128 patches).  Heads stay (1, 2, 4, 8).
MINI_CONFIG = dict(
    dim=12,
    num_blocks=(1, 1, 1, 1),
    num_refinement_blocks=1,
    heads=(1, 2, 4, 8),
    prompt_dims=(16, 32, 80),
    prompt_sizes=(32, 16, 8),
)


def _conv1x1(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=1, bias=bias)


def _conv3x3(c_in: int, c_out: int, bias: bool, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, groups=groups, bias=bias)


class _NormWithBias(nn.Module):
    """Layer norm over the channel axis (biased variance, eps 1e-5), affine."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, eps=1e-5)
        return y.permute(0, 3, 1, 2)


class _NormBiasFree(nn.Module):
    """Scale-only variant: divides by the channel standard deviation, keeps the mean."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + 1e-5) * self.weight.view(1, -1, 1, 1)


class ChannelNorm(nn.Module):
    """Holds the norm in ``body`` (the released key is ``<block>.norm1.body.weight``)."""

    def __init__(self, channels: int, kind: str = "WithBias"):
        super().__init__()
        if kind == "WithBias":
            self.body = _NormWithBias(channels)
        elif kind == "BiasFree":
            self.body = _NormBiasFree(channels)
        else:
            raise ValueError(f"LayerNorm_type must be 'WithBias' or 'BiasFree', got {kind!r}")

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class ChannelAttention(nn.Module):
    """MDTA: attention across channels, per head, with L2-normalised q/k rows."""

    def __init__(self, channels: int, heads: int, bias: bool):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels cannot be split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = _conv1x1(channels, 3 * channels, bias)
        self.qkv_dwconv = _conv3x3(3 * channels, 3 * channels, bias, groups=3 * channels)
        self.project_out = _conv1x1(channels, channels, bias)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.temperature
        out = torch.matmul(scores.softmax(dim=-1), v)
        return self.project_out(out.reshape(n, c, h, w))


class GatedFeedForward(nn.Module):
    """GDFN: 1x1 expand to two branches, 3x3 depth-wise, GELU(a) * b, 1x1 project."""

    def __init__(self, channels: int, expansion: float, bias: bool):
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = _conv1x1(channels, 2 * hidden, bias)
        self.dwconv = _conv3x3(2 * hidden, 2 * hidden, bias, groups=2 * hidden)
        self.project_out = _conv1x1(hidden, channels, bias)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + attn(norm1(x)), then + ffn(norm2(.))."""

    def __init__(self, channels: int, heads: int, expansion: float, bias: bool, norm: str):
        super().__init__()
        self.norm1 = ChannelNorm(channels, norm)
        self.attn = ChannelAttention(channels, heads, bias)
        self.norm2 = ChannelNorm(channels, norm)
        self.ffn = GatedFeedForward(channels, expansion, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, c_in: int, channels: int, bias: bool):
        super().__init__()
        self.proj = _conv3x3(c_in, channels, bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 conv C -> C/2 then pixel-unshuffle: half resolution, 2C channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv3x3(channels, channels // 2, False), nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv C -> 2C then pixel-shuffle: double resolution, C/2 channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv3x3(channels, 2 * channels, False), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class PromptGenBlock(nn.Module):
    """Input-conditioned prompt: softmax-weighted mix of ``length`` learned components.

    The weights come from a linear layer on the spatial mean of the features; the
    mixed component is resized (bilinear, align_corners=False) to the feature size
    and passed through a 3x3 convolution.
    """

    def __init__(self, prompt_dim: int, length: int, size: int, feat_dim: int, learnable: bool = True):
        super().__init__()
        self.prompt_param = nn.Parameter(torch.rand(1, length, prompt_dim, size, size))
        self.linear_layer = nn.Linear(feat_dim, length)
        self.conv3x3 = _conv3x3(prompt_dim, prompt_dim, False)
        # The released checkpoint was trained while the prompt components got no
        # gradient (docs/models/promptir.md#prompt-gradients-in-the-released-checkpoint);
        # learnable=False reproduces that.
        self.learnable = learnable

    def forward(self, x: Tensor) -> Tensor:
        weights = F.softmax(self.linear_layer(x.mean(dim=(2, 3))), dim=1)  # (N, length)
        components = self.prompt_param[0]
        if not self.learnable:
            components = components.detach()
        mixed = torch.einsum("nl,lchw->nchw", weights, components)
        mixed = F.interpolate(mixed, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv3x3(mixed)


def _stage(n: int, channels: int, heads: int, expansion: float, bias: bool, norm: str) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(channels, heads, expansion, bias, norm) for _ in range(n)])


class PromptIR(nn.Module):
    """PromptIR with the prompt decoder (the released configuration by default).

    Keyword names follow the official constructor; ``prompt_dims``,
    ``prompt_sizes``, ``prompt_len`` and ``unused_reduce3_channels`` expose what
    the official code hard-codes for ``dim=48``.
    """

    pad_multiple = 8  # three 2x down-samplings

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: Sequence[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: str = "WithBias",  # noqa: N803 (official keyword)
        decoder: bool = True,
        prompt_dims: Sequence[int] = (64, 128, 320),
        prompt_sizes: Sequence[int] = (64, 32, 16),
        prompt_len: int = 5,
        unused_reduce3_channels: int | None = None,
        learnable_prompts: bool = True,
    ):
        super().__init__()
        if not decoder:
            raise ValueError(
                "PromptIR(decoder=False) cannot run: the official up4_3 then receives the 8*dim latent "
                "where it expects 4*dim channels (docs/models/promptir.md#released-model); "
                "the released model is decoder=True"
            )
        if len(num_blocks) != 4 or len(heads) != 4 or len(prompt_dims) != 3 or len(prompt_sizes) != 3:
            raise ValueError("num_blocks and heads need 4 entries, prompt_dims and prompt_sizes 3")
        c1, c2, c3, c4 = dim, 2 * dim, 4 * dim, 8 * dim
        p1, p2, p3 = (int(p) for p in prompt_dims)
        r3 = int(unused_reduce3_channels) if unused_reduce3_channels is not None else (p3 * 4) // 5
        ex, nt = ffn_expansion_factor, LayerNorm_type
        self.config = dict(
            inp_channels=inp_channels, out_channels=out_channels, dim=dim, num_blocks=tuple(num_blocks),
            num_refinement_blocks=num_refinement_blocks, heads=tuple(heads), ffn_expansion_factor=ex,
            bias=bias, LayerNorm_type=nt, decoder=True, prompt_dims=(p1, p2, p3),
            prompt_sizes=tuple(prompt_sizes), prompt_len=prompt_len, unused_reduce3_channels=r3,
            learnable_prompts=learnable_prompts,
        )

        # Registration order = the released checkpoint's key order.
        self.patch_embed = PatchEmbed(inp_channels, c1, bias)
        self.prompt1 = PromptGenBlock(p1, prompt_len, prompt_sizes[0], c2, learnable_prompts)
        self.prompt2 = PromptGenBlock(p2, prompt_len, prompt_sizes[1], c3, learnable_prompts)
        self.prompt3 = PromptGenBlock(p3, prompt_len, prompt_sizes[2], c4, learnable_prompts)
        # Never called in forward; present in the release (docs/models/promptir.md#dead-modules).
        self.chnl_reduce1 = _conv1x1(p1, p1, bias)
        self.chnl_reduce2 = _conv1x1(p2, p2, bias)
        self.chnl_reduce3 = _conv1x1(p3, r3, bias)
        self.reduce_noise_channel_1 = _conv1x1(c1 + p1, c1, bias)
        self.encoder_level1 = _stage(num_blocks[0], c1, heads[0], ex, bias, nt)
        self.down1_2 = Downsample(c1)
        self.reduce_noise_channel_2 = _conv1x1(c2 + p2, c2, bias)
        self.encoder_level2 = _stage(num_blocks[1], c2, heads[1], ex, bias, nt)
        self.down2_3 = Downsample(c2)
        self.reduce_noise_channel_3 = _conv1x1(c3 + r3, c3, bias)
        self.encoder_level3 = _stage(num_blocks[2], c3, heads[2], ex, bias, nt)
        self.down3_4 = Downsample(c3)
        self.latent = _stage(num_blocks[3], c4, heads[3], ex, bias, nt)
        # decoder, level 3 (the latent is reduced to 4*dim before up-sampling)
        self.up4_3 = Upsample(c3)
        self.reduce_chan_level3 = _conv1x1(c3 // 2 + c3, c3, bias)
        self.noise_level3 = TransformerBlock(c4 + p3, heads[2], ex, bias, nt)
        self.reduce_noise_level3 = _conv1x1(c4 + p3, c3, bias)
        self.decoder_level3 = _stage(num_blocks[2], c3, heads[2], ex, bias, nt)
        # level 2
        self.up3_2 = Upsample(c3)
        self.reduce_chan_level2 = _conv1x1(c3 // 2 + c2, c2, bias)
        self.noise_level2 = TransformerBlock(c3 + p2, heads[2], ex, bias, nt)
        self.reduce_noise_level2 = _conv1x1(c3 + p2, c3, bias)
        self.decoder_level2 = _stage(num_blocks[1], c2, heads[1], ex, bias, nt)
        # level 1 (no channel reduction after the skip concatenation)
        self.up2_1 = Upsample(c2)
        self.noise_level1 = TransformerBlock(c2 + p1, heads[2], ex, bias, nt)
        self.reduce_noise_level1 = _conv1x1(c2 + p1, c2, bias)
        self.decoder_level1 = _stage(num_blocks[0], c2, heads[0], ex, bias, nt)
        self.refinement = _stage(num_refinement_blocks, c2, heads[0], ex, bias, nt)
        self.output = _conv3x3(c2, out_channels, bias)

    @staticmethod
    def _with_prompt(x: Tensor, prompt: PromptGenBlock, block: nn.Module, reduce: nn.Module) -> Tensor:
        return reduce(block(torch.cat([x, prompt(x)], dim=1)))

    def forward_unpadded(self, x: Tensor) -> Tensor:
        """The network proper; H and W must be multiples of ``pad_multiple``."""
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        lat = self.latent(self.down3_4(enc3))
        lat = self._with_prompt(lat, self.prompt3, self.noise_level3, self.reduce_noise_level3)

        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(lat), enc3], dim=1))
        dec3 = self.decoder_level3(dec3)
        dec3 = self._with_prompt(dec3, self.prompt2, self.noise_level2, self.reduce_noise_level2)

        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1))
        dec2 = self.decoder_level2(dec2)
        dec2 = self._with_prompt(dec2, self.prompt1, self.noise_level1, self.reduce_noise_level1)

        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        return self.output(self.refinement(dec1)) + x

    def forward(self, x: Tensor) -> Tensor:
        """N x C x H x W -> same shape; other sizes are reflect-padded and cropped back."""
        h, w = x.shape[-2:]
        m = self.pad_multiple
        ph, pw = (-h) % m, (-w) % m
        if not (ph or pw):
            return self.forward_unpadded(x)
        return self.forward_unpadded(pad_to_multiple(x, m))[..., :h, :w]


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad bottom/right up to a multiple; reflect, or replicate where the image is too small to reflect."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
