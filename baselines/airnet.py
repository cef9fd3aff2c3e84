"""AirNet (Li et al., CVPR 2022) re-implemented for dacode-bench.

Architecture facts: docs/models/airnet.md (XLearning-SCU/2022-CVPR-AirNet
``net/*.py`` @bedea82); key names and shapes: specs/airnet_state_dict.json.  The
defaults build the all-in-one release (``ckpt/All.pth``): 584 state-dict entries
(528 parameters + 56 buffers), 8,930,313 parameters, MoCo queue 256 x 1280.

Two parts:

* ``E`` (CBDE): a MoCo wrapper around two ResNet-style encoders (query, and a
  momentum-updated key copy) with a queue of negative keys.  It learns a
  degradation representation contrastively.
* ``R`` (DGRN): 5 groups x 5 blocks of degradation-guided modules; each module
  adds a modulated deformable convolution and a spatial feature transform, both
  conditioned on the query encoder's first feature map (``inter``).

Only ``inter`` = ``E.E.encoder_q.E_pre(x)`` reaches the restored image, so
``forward`` computes just that and the restorer; the rest of the encoder, the
key encoder and the queue matter for training only (``training_loss``).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from baselines.deform_conv import deform_conv2d

__all__ = ["AirNet", "MINI_CONFIG", "DCNLayer"]

# Offline "mini" profile: 2 groups x 1 block of 16 channels (4
# deformable convolutions instead of 50), encoder widths a quarter of the release, a
# 256-entry queue (~0.23M parameters, 3-4 training steps/s at batch 4 x 64x64 here).
MINI_CONFIG = dict(
    n_feats=16,
    n_groups=2,
    n_blocks=1,
    encoder_channels=(16, 32, 64),
    moco_dim=64,
    queue_size=256,
    activation_checkpointing=False,  # small activations: recomputing them would only cost time
)


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.1, inplace=True)


def _conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    """DGRN's convolution: 'same' padding, with bias."""
    return nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=True)


# --------------------------------------------------------------------------- encoder (CBDE)
class ResBlock(nn.Module):
    """conv3x3(stride)-BN-LReLU-conv3x3-BN plus a conv1x1(stride)-BN shortcut, then LReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            _lrelu(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.backbone(x) + self.shortcut(x), 0.1)


class ResEncoder(nn.Module):
    """Returns (pooled feature, projection, full-resolution first feature map)."""

    def __init__(self, channels: Sequence[int] = (64, 128, 256), out_dim: int = 256):
        super().__init__()
        c1, c2, c3 = channels
        self.E_pre = ResBlock(3, c1, stride=1)
        self.E = nn.Sequential(ResBlock(c1, c2, stride=2), ResBlock(c2, c3, stride=2), nn.AdaptiveAvgPool2d(1))
        self.mlp = nn.Sequential(nn.Linear(c3, out_dim), _lrelu(), nn.Linear(out_dim, out_dim))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        inter = self.E_pre(x)
        fea = self.E(inter).flatten(1)
        return fea, self.mlp(fea), inter


class MoCo(nn.Module):
    """Query encoder, momentum key encoder (no gradients) and a queue of past keys."""

    def __init__(self, channels: Sequence[int], dim: int, queue_size: int, momentum: float, temperature: float):
        super().__init__()
        self.K, self.m, self.T = int(queue_size), float(momentum), float(temperature)
        self.encoder_q = ResEncoder(channels, dim)
        self.encoder_k = ResEncoder(channels, dim)
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(dim, self.K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """key <- m * key + (1 - m) * query, parameters only (BN statistics are the key encoder's own)."""
        for p_q, p_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            p_k.mul_(self.m).add_(p_q.detach(), alpha=1.0 - self.m)

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Overwrite the oldest queue columns with ``keys`` (wrapping around the end)."""
        n = keys.shape[0]
        ptr = int(self.queue_ptr.item())
        idx = (torch.arange(n, device=keys.device) + ptr) % self.K
        self.queue[:, idx] = keys.detach().t().to(self.queue.dtype)
        self.queue_ptr[0] = (ptr + n) % self.K

    def contrast(self, im_q: Tensor, im_k: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """InfoNCE logits (positive first) and labels; updates the key encoder and the queue."""
        _, q, inter = self.encoder_q(im_q)
        q = F.normalize(q, dim=1)
        with torch.no_grad():
            self.momentum_update()
            _, k, _ = self.encoder_k(im_k)
            k = F.normalize(k, dim=1)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ self.queue.clone().detach()
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        self.enqueue(k)
        return logits, labels, inter


class CBDE(nn.Module):
    def __init__(self, channels: Sequence[int], dim: int, queue_size: int, momentum: float, temperature: float):
        super().__init__()
        self.E = MoCo(channels, dim, queue_size, momentum, temperature)


# --------------------------------------------------------------------------- restorer (DGRN)
class DCNLayer(nn.Module):
    """Modulated deformable 3x3 convolution steered by ``cat(x, inter)``.

    A 3x3 convolution predicts 27 channels, split in three: the first two
    thirds, concatenated, are the 18 offsets (torchvision/mmcv layout) and the
    sigmoid of the last third is the mask.  The main weight has no bias.
    """

    def __init__(self, c_in: int, c_out: int, c_guide: int, kernel_size: int = 3, backend: str = "auto"):
        super().__init__()
        self.padding = kernel_size // 2
        self.backend = backend
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel_size, kernel_size))
        self.conv_offset_mask = nn.Conv2d(c_in + c_guide, 3 * kernel_size * kernel_size, kernel_size,
                                          padding=self.padding, bias=True)
        bound = 1.0 / (c_in * kernel_size * kernel_size) ** 0.5
        nn.init.uniform_(self.weight, -bound, bound)
        # zero offsets and mask logits at start: a plain convolution scaled by 0.5
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def offsets_and_mask(self, x: Tensor, inter: Tensor) -> Tuple[Tensor, Tensor]:
        o1, o2, m = self.conv_offset_mask(torch.cat([x, inter], dim=1)).chunk(3, dim=1)
        return torch.cat([o1, o2], dim=1), torch.sigmoid(m)

    def forward(self, x: Tensor, inter: Tensor) -> Tensor:
        offset, mask = self.offsets_and_mask(x, inter)
        return deform_conv2d(x, offset, self.weight, None, stride=1, padding=self.padding, dilation=1,
                             mask=mask, backend=self.backend)


class SFTLayer(nn.Module):
    """x * gamma(inter) + beta(inter); gamma and beta are 1x1-LReLU-1x1 without bias."""

    def __init__(self, c_guide: int, c_feat: int):
        super().__init__()
        self.conv_gamma = nn.Sequential(nn.Conv2d(c_guide, c_feat, 1, bias=False), _lrelu(),
                                        nn.Conv2d(c_feat, c_feat, 1, bias=False))
        self.conv_beta = nn.Sequential(nn.Conv2d(c_guide, c_feat, 1, bias=False), _lrelu(),
                                       nn.Conv2d(c_feat, c_feat, 1, bias=False))

    def forward(self, x: Tensor, inter: Tensor) -> Tensor:
        return x * self.conv_gamma(inter) + self.conv_beta(inter)


class DGM(nn.Module):
    """x + DCN(x | inter) + SFT(x | inter)."""

    def __init__(self, c: int, c_guide: int, backend: str):
        super().__init__()
        self.dcn = DCNLayer(c, c, c_guide, 3, backend)
        self.sft = SFTLayer(c_guide, c)

    def forward(self, x: Tensor, inter: Tensor) -> Tensor:
        return x + self.dcn(x, inter) + self.sft(x, inter)


class DGB(nn.Module):
    def __init__(self, c: int, c_guide: int, backend: str):
        super().__init__()
        self.dgm1 = DGM(c, c_guide, backend)
        self.dgm2 = DGM(c, c_guide, backend)
        self.conv1 = _conv(c, c)
        self.conv2 = _conv(c, c)

    def forward(self, x: Tensor, inter: Tensor) -> Tensor:
        y = F.leaky_relu(self.dgm1(x, inter), 0.1)
        y = F.leaky_relu(self.conv1(y), 0.1)
        y = F.leaky_relu(self.dgm2(y, inter), 0.1)
        return self.conv2(y) + x


class DGG(nn.Module):
    """``n_blocks`` DGBs then a conv, with a skip over the group (``body`` holds all of them)."""

    def __init__(self, c: int, c_guide: int, n_blocks: int, backend: str):
        super().__init__()
        self.body = nn.Sequential(*[DGB(c, c_guide, backend) for _ in range(n_blocks)], _conv(c, c))
        self.checkpoint_blocks = False  # set by DGRN

    def forward(self, x: Tensor, inter: Tensor) -> Tensor:
        y = x
        recompute = self.checkpoint_blocks and torch.is_grad_enabled() and self.training
        for block in self.body[:-1]:
            # activation checkpointing: a block's inner activations (~70 MB per 128² image at the
            # released width, 25 blocks) are recomputed in backward instead of kept; same numbers
            y = checkpoint(block, y, inter, use_reentrant=False) if recompute else block(y, inter)
        return self.body[-1](y) + x


class DGRN(nn.Module):
    """head conv -> groups + conv with a long skip -> tail conv (no input residual)."""

    def __init__(self, n_feats: int, n_groups: int, n_blocks: int, c_guide: int, backend: str,
                 checkpoint_groups: bool = False):  # checkpoint every block of every group
        super().__init__()
        self.checkpoint_groups = checkpoint_groups
        self.head = nn.Sequential(_conv(3, n_feats))
        self.body = nn.Sequential(*[DGG(n_feats, c_guide, n_blocks, backend) for _ in range(n_groups)],
                                  _conv(n_feats, n_feats))
        for group in self.body[:-1]:
            group.checkpoint_blocks = checkpoint_groups
        self.tail = nn.Sequential(_conv(n_feats, 3))

    def forward(self, x: Tensor, inter: Tensor) -> Tensor:
        feat = self.head(x)
        y = feat
        for group in self.body[:-1]:
            y = group(y, inter)
        return self.tail(self.body[-1](y) + feat)


# --------------------------------------------------------------------------- AirNet
class AirNet(nn.Module):
    """AirNet all-in-one.  ``forward(x)`` restores; ``training_loss(degraded, clean)`` trains.

    ``training_loss`` follows the official recipe in spirit: L1 restoration loss
    plus ``contrast_weight`` x cross-entropy of the MoCo logits (official: 0.1
    after a 100-epoch encoder-only warm-up; set ``contrast_only = True`` for
    that phase).  The official loader draws two random 128x128 crops of one
    degraded image as query and key.  The harness hands over patch batches, so
    both views are cut from each degraded patch: the query is the whole patch
    (which is also what the restorer sees) and the key is a random crop of
    ``key_crop`` x the patch side, at an independent position per sample.
    """

    pad_multiple = 1  # fully convolutional at full resolution

    def __init__(
        self,
        n_feats: int = 64,
        n_groups: int = 5,
        n_blocks: int = 5,
        encoder_channels: Sequence[int] = (64, 128, 256),
        moco_dim: int = 256,
        queue_size: int = 1280,
        momentum: float = 0.999,
        temperature: float = 0.07,
        contrast_weight: float = 0.1,
        key_crop: float = 0.75,
        dcn_backend: str = "auto",
        activation_checkpointing: bool = True,
    ):
        super().__init__()
        if len(encoder_channels) != 3:
            raise ValueError("encoder_channels needs 3 widths (E_pre, E.0, E.1)")
        if not 0.0 < key_crop <= 1.0:
            raise ValueError("key_crop must lie in (0, 1]")
        self.config = dict(
            n_feats=n_feats, n_groups=n_groups, n_blocks=n_blocks, encoder_channels=tuple(encoder_channels),
            moco_dim=moco_dim, queue_size=queue_size, momentum=momentum, temperature=temperature,
            contrast_weight=contrast_weight, key_crop=key_crop, dcn_backend=dcn_backend,
            activation_checkpointing=activation_checkpointing,
        )
        self.contrast_weight = float(contrast_weight)
        self.contrast_only = False
        self.key_crop = float(key_crop)
        self.R = DGRN(n_feats, n_groups, n_blocks, encoder_channels[0], dcn_backend, activation_checkpointing)
        self.E = CBDE(encoder_channels, moco_dim, queue_size, momentum, temperature)

    @property
    def moco(self) -> MoCo:
        return self.E.E

    def degradation_map(self, x: Tensor) -> Tensor:
        """``inter``: the query encoder's first block output, the restorer's only guidance."""
        return self.moco.encoder_q.E_pre(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.R(x, self.degradation_map(x))

    def key_view(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Random ``key_crop``-sized crop of every sample, independent positions."""
        n, _, h, w = x.shape
        ch, cw = max(1, round(h * self.key_crop)), max(1, round(w * self.key_crop))
        if (ch, cw) == (h, w):
            return x
        ys = torch.randint(0, h - ch + 1, (n,), generator=generator).tolist()
        xs = torch.randint(0, w - cw + 1, (n,), generator=generator).tolist()
        return torch.stack([x[i, :, y:y + ch, x0:x0 + cw] for i, (y, x0) in enumerate(zip(ys, xs))])

    def training_loss(self, degraded: Tensor, clean: Tensor) -> Tensor:
        logits, labels, inter = self.moco.contrast(degraded, self.key_view(degraded))
        contrastive = F.cross_entropy(logits, labels)
        if self.contrast_only:
            return contrastive
        restored = self.R(degraded, inter)
        return F.l1_loss(restored, clean) + self.contrast_weight * contrastive
