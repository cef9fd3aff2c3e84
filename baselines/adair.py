"""AdaIR (Cui et al., "AdaIR: Adaptive All-in-One Image Restoration via Frequency Mining
and Modulation", ICLR 2025, arXiv:2403.14614) re-implemented for dacode-bench.

Architecture facts come from the public code, ``c-yn/AdaIR:net/model.py@ccb8b98``
(MIT licence); key names and shapes are checked against specs/adair_state_dict.json.
The defaults build the released model, ``AdaIR(decoder=True)``: 587 tensors,
28,784,824 parameters, no buffers.  Notes on the port: ../docs/models/adair.md.

Layout: the Restormer U-Net of PromptIR (same transformer blocks, down/up-sampling,
no prompts) with three adaptive frequency learning blocks (``FreModule`` in the
official code): ``fre1`` on the latent, ``fre2`` after decoder level 3 and ``fre3``
after decoder level 2.  Each one resizes the *input image* to the feature size,
splits it into a high- and a low-frequency part with a centred FFT mask whose size
a small head predicts, lets each part attend to the features, mixes the two parts
(spatial / channel gates) and adds the result to the features with a learned scale.

Channel arithmetic is derived from ``dim`` (and ``inp_channels`` for the image
branch), so small configurations keep the released structure.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.promptir import Downsample, PatchEmbed, TransformerBlock, Upsample, pad_to_multiple

__all__ = ["AdaIR", "FreModule", "FreRefine", "CrossChannelAttention", "fft_mask_half_size", "MINI_CONFIG"]

# Offline "mini" profile: a quarter of the width, one block per level, one refinement
# block.  Heads stay (1, 2, 4, 8); the frequency blocks use heads[2] = 4 on 24/48/96
# channels.  640,409 parameters; about 3.1 steps/s = 12.5 img/s training (L1 + AdamW) on
# 4 x 64x64 patches, one thread of the shared 2-core CPU (benchmarks/bench_baselines.py step).
MINI_CONFIG = dict(
    dim=12,
    num_blocks=(1, 1, 1, 1),
    num_refinement_blocks=1,
    heads=(1, 2, 4, 8),
)

# The official ``fft(x, n=128)``: the mask grows by one frequency per side for
# every full 128 pixels of the feature map (before scaling by the predicted rate).
FFT_MASK_UNIT = 128


def fft_mask_half_size(h: int, w: int, t) -> Tuple[int, int]:
    """Half-height and half-width of the low-pass mask of an ``h`` x ``w`` feature map.

    ``int((h // 128) * t_h)`` and ``int((w // 128) * t_w)``, truncated like the
    official ``.int()``.  ``t`` is one rate for both axes or a pair ``(t_h, t_w)``;
    the product is formed in the rate's dtype (float32 for Python numbers), as in the
    official code where the rate is a sigmoid output.  Empty below 128 px per axis,
    and below 256 px unless the rate is exactly 1.
    """
    rates = t if isinstance(t, Tensor) else torch.as_tensor(t, dtype=torch.float32)
    rates = rates.reshape(-1)
    t_h, t_w = rates[0], rates[-1]
    half_h = ((h // FFT_MASK_UNIT) * t_h).to(torch.int32)
    half_w = ((w // FFT_MASK_UNIT) * t_w).to(torch.int32)
    return int(half_h), int(half_w)


def _conv1x1(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=1, bias=bias)


def _dwconv3x3(channels: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels, bias=bias)


def _stage(n: int, channels: int, heads: int, expansion: float, bias: bool, norm: str) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(channels, heads, expansion, bias, norm) for _ in range(n)])


class CrossChannelAttention(nn.Module):
    """MDTA-style channel attention with queries from ``x`` and keys/values from ``y``."""

    def __init__(self, channels: int, heads: int, bias: bool):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels cannot be split into {heads} heads")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.q = _conv1x1(channels, channels, bias)
        self.q_dwconv = _dwconv3x3(channels, bias)
        self.kv = _conv1x1(channels, 2 * channels, bias)
        self.kv_dwconv = _dwconv3x3(2 * channels, bias)
        self.project_out = _conv1x1(channels, channels, bias)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape:
            raise ValueError(f"query and key/value maps differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
        n, c, h, w = x.shape
        q = self.q_dwconv(self.q(x)).reshape(n, self.heads, c // self.heads, h * w)
        k, v = self.kv_dwconv(self.kv(y)).reshape(n, 2, self.heads, c // self.heads, h * w).unbind(1)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.temperature
        out = torch.matmul(scores.softmax(dim=-1), v)
        return self.project_out(out.reshape(n, c, h, w))


class SpatialGate(nn.Module):
    """sigmoid(7x7 conv of the channel-wise max and mean): one weight per pixel."""

    def __init__(self):
        super().__init__()
        self.spatial = nn.Conv2d(2, 1, kernel_size=7, padding=3, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.spatial(pooled))


class ChannelGate(nn.Module):
    """sigmoid(mlp(avg-pool) + mlp(max-pool)), one shared bottleneck MLP (ratio 16)."""

    def __init__(self, channels: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, channels // 16, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels // 16, channels, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        peak = self.mlp(F.adaptive_max_pool2d(x, 1))
        return torch.sigmoid(avg + peak)


class FreRefine(nn.Module):
    """Frequency modulation: each band is gated by the other, summed, then a 1x1 conv (with bias).

    The high band is scaled per channel by a gate computed from the low band, and the
    low band per pixel by a gate computed from the high band.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.SpatialGate = SpatialGate()  # noqa: N815 (released key names)
        self.ChannelGate = ChannelGate(channels)  # noqa: N815
        self.proj = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        pixel_weight = self.SpatialGate(high)
        channel_weight = self.ChannelGate(low)
        return self.proj(low * pixel_weight + high * channel_weight)


class FreModule(nn.Module):
    """Adaptive frequency learning block: ``para1 * attn(features, bands of image) + para2 * features``.

    ``conv`` and ``score_gen`` are never called by the official forward; they are kept
    so the released checkpoint loads strictly.  ``rate_conv`` only reaches the output
    through the integer mask size, so it gets no gradient (as in the official code).
    """

    def __init__(self, channels: int, heads: int, bias: bool, in_channels: int = 3):
        super().__init__()
        if channels < 16:
            raise ValueError(f"FreModule needs at least 16 channels (its channel gate divides by 16), got {channels}")
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False)  # unused (release)
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False)
        self.score_gen = nn.Conv2d(2, 2, 7, padding=3)  # unused (release)
        self.para1 = nn.Parameter(torch.zeros(channels, 1, 1))  # starts as the identity on the features
        self.para2 = nn.Parameter(torch.ones(channels, 1, 1))
        self.channel_cross_l = CrossChannelAttention(channels, heads, bias)
        self.channel_cross_h = CrossChannelAttention(channels, heads, bias)
        self.channel_cross_agg = CrossChannelAttention(channels, heads, bias)
        self.frequency_refine = FreRefine(channels)
        self.rate_conv = nn.Sequential(
            nn.Conv2d(channels, channels // 8, 1, bias=False),
            nn.GELU(),
            nn.Conv2d(channels // 8, 2, 1, bias=False),
        )

    def low_pass_mask(self, feat: Tensor) -> Tensor:
        """N x 1 x H x W float32 mask, 1 on the centred box of the *shifted* spectrum."""
        n, _, h, w = feat.shape
        rates = torch.sigmoid(self.rate_conv(F.adaptive_avg_pool2d(feat, 1)))  # N x 2 x 1 x 1
        mask = torch.zeros(n, 1, h, w, device=feat.device)  # float32, as in the official code
        for i in range(n):
            hh, hw = fft_mask_half_size(h, w, rates[i, :, 0, 0])
            mask[i, :, h // 2 - hh:h // 2 + hh, w // 2 - hw:w // 2 + hw] = 1
        return mask

    def split_frequencies(self, image: Tensor) -> Tuple[Tensor, Tensor]:
        """(high, low): magnitudes of the inverse FFT of the spectrum outside / inside the mask."""
        feat = self.conv1(image)
        mask = self.low_pass_mask(feat)
        h, w = feat.shape[-2:]
        centre = (h // 2, w // 2)  # the official shift rolls by int(h/2), int(w/2)
        spectrum = torch.roll(torch.fft.fft2(feat, norm="forward", dim=(-2, -1)), shifts=centre, dims=(2, 3))

        def back(part: Tensor) -> Tensor:
            part = torch.roll(part, shifts=(-centre[0], -centre[1]), dims=(2, 3))
            return torch.fft.ifft2(part, norm="forward", dim=(-2, -1)).abs()

        return back(spectrum * (1 - mask)), back(spectrum * mask)

    def forward(self, image: Tensor, feat: Tensor) -> Tensor:
        image = F.interpolate(image, size=feat.shape[-2:], mode="bilinear", align_corners=False)
        high, low = self.split_frequencies(image)
        # The official naming is crossed: channel_cross_l takes the high band, _h the low one.
        high = self.channel_cross_l(high, feat)
        low = self.channel_cross_h(low, feat)
        mixed = self.frequency_refine(low, high)
        return self.channel_cross_agg(feat, mixed) * self.para1 + feat * self.para2


class AdaIR(nn.Module):
    """AdaIR; the defaults are the released ``AdaIR(decoder=True)``.

    Keyword names follow the official constructor.  ``decoder=False`` drops the three
    frequency blocks (a plain Restormer U-Net), as the official code does.
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
    ):
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError("num_blocks and heads need 4 entries")
        if out_channels != inp_channels:
            raise ValueError("the global residual adds the input to the output: out_channels must equal inp_channels")
        c1, c2, c3, c4 = dim, 2 * dim, 4 * dim, 8 * dim
        ex, nt = ffn_expansion_factor, LayerNorm_type
        self.decoder = bool(decoder)
        self.config = dict(
            inp_channels=inp_channels, out_channels=out_channels, dim=dim, num_blocks=tuple(num_blocks),
            num_refinement_blocks=num_refinement_blocks, heads=tuple(heads), ffn_expansion_factor=ex,
            bias=bias, LayerNorm_type=nt, decoder=self.decoder,
        )

        # Registration order = the released checkpoint's key order.
        self.patch_embed = PatchEmbed(inp_channels, c1, False)  # the official embed ignores `bias`
        if self.decoder:
            # All three blocks use heads[2] (the official code passes heads[2] to each).
            self.fre1 = FreModule(c4, heads[2], bias, inp_channels)
            self.fre2 = FreModule(c3, heads[2], bias, inp_channels)
            self.fre3 = FreModule(c2, heads[2], bias, inp_channels)
        self.encoder_level1 = _stage(num_blocks[0], c1, heads[0], ex, bias, nt)
        self.down1_2 = Downsample(c1)
        self.encoder_level2 = _stage(num_blocks[1], c2, heads[1], ex, bias, nt)
        self.down2_3 = Downsample(c2)
        self.encoder_level3 = _stage(num_blocks[2], c3, heads[2], ex, bias, nt)
        self.down3_4 = Downsample(c3)
        self.latent = _stage(num_blocks[3], c4, heads[3], ex, bias, nt)
        self.up4_3 = Upsample(c4)  # 8d -> 4d, concatenated with the 4d skip
        self.reduce_chan_level3 = _conv1x1(c4, c3, bias)
        self.decoder_level3 = _stage(num_blocks[2], c3, heads[2], ex, bias, nt)
        self.up3_2 = Upsample(c3)
        self.reduce_chan_level2 = _conv1x1(c3, c2, bias)
        self.decoder_level2 = _stage(num_blocks[1], c2, heads[1], ex, bias, nt)
        self.up2_1 = Upsample(c2)  # no reduction after this skip: level 1 decodes at 2d
        self.decoder_level1 = _stage(num_blocks[0], c2, heads[0], ex, bias, nt)
        self.refinement = _stage(num_refinement_blocks, c2, heads[0], ex, bias, nt)
        self.output = nn.Conv2d(c2, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward_unpadded(self, x: Tensor) -> Tensor:
        """The network proper; H and W must be multiples of ``pad_multiple``."""
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        lat = self.latent(self.down3_4(enc3))
        if self.decoder:
            lat = self.fre1(x, lat)

        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(lat), enc3], dim=1)))
        if self.decoder:
            dec3 = self.fre2(x, dec3)

        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1)))
        if self.decoder:
            dec2 = self.fre3(x, dec2)

        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        return self.output(self.refinement(dec1)) + x

    def forward(self, x: Tensor) -> Tensor:
        """N x C x H x W -> same shape; other sizes are reflect-padded and cropped back.

        The frequency blocks see the padded image, so their mask sizes follow the padded size.
        """
        h, w = x.shape[-2:]
        m = self.pad_multiple
        if not ((-h) % m or (-w) % m):
            return self.forward_unpadded(x)
        return self.forward_unpadded(pad_to_multiple(x, m))[..., :h, :w]
