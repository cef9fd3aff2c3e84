"""Named image-quality protocols: ``score(name, restored, target)``.

Papers in this field compute "PSNR/SSIM" in incompatible ways (RGB vs Y, window, 8-bit
vs float; docs/protocols.md#metrics), so every protocol has a name and a stated
convention, and tables footnote the one they used.

Default protocol (``psnr_y`` / ``ssim_y``), the BasicSR/MATLAB convention:
- the restored image is clipped to [0, 1] and rounded to 8 bits (what saving a PNG does,
  and what BasicSR's ``tensor2img`` does before its metrics);
- Y = 16 + 65.481·R + 128.553·G + 24.966·B (R, G, B in [0, 1]), ITU-R BT.601 limited range,
  as MATLAB's ``rgb2ycbcr``;
- computed by pyiqa with ``test_y_channel=True`` and ``color_space='ycbcr'``. pyiqa's own
  default is YIQ, which reads 20·log10(255/219) ≈ 1.32 dB lower — never use it;
- SSIM: 11×11 Gaussian window σ = 1.5, valid region, Y rounded to integers (pyiqa follows
  MATLAB here; BasicSR, which does not round Y, reads ~1e-3 higher:
  docs/dependencies.md#basicsr-vs-matlab-ssim-rounding).
  pyiqa filters with a dense 11×11 float64 depth-wise convolution (~0.4 s per 481×321 image
  on a 2-core CPU). The Gaussian window is separable, so ``ssim_y`` runs pyiqa's own Y
  conversion and pyiqa's SSIM formula (including its ReLU on the contrast-structure map)
  with two 11-tap passes instead: ~5× faster, equal to pyiqa's ``ssim`` within 1e-6
  (pyiqa rounds its window to float32, ours is the float64 Gaussian; they differ by ~1e-7)
  (tests/test_metrics.py holds it to that).
- no border crop.

RGB protocols of the compared papers (docs/protocols.md#rgb-protocols-of-the-compared-papers):
- ``psnr_rgb`` / ``ssim_rgb`` — PromptIR, AirNet, AdaIR: scikit-image on RGB floats in [0, 1]
  (restored output clipped, *not* quantised), ``data_range=1``; SSIM with the default uniform
  7×7 window and sample covariance, averaged over the three channels
  (``channel_axis=-1``, the modern spelling of their ``multichannel=True``);
- ``ssim_rgb_gauss`` — MoCE-IR: the same with ``gaussian_weights=True`` (σ 1.5, 11 taps).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import torch
import torch.nn.functional as F

from harness.errors import HarnessError


@dataclass(frozen=True)
class MetricProtocol:
    name: str
    display: str
    channel: str
    library: str
    window: str
    data_range: str
    quantisation: str
    border_crop: int
    higher_is_better: bool
    compute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    decimals: int = 2  # printed precision in tables (the paper: PSNR 2, SSIM 3)
    gate_tolerance: float = 0.05  # allowed |drift| of a cell mean in `dacode-bench gate`

    def footnote(self) -> str:
        return (f"{self.display}: protocol '{self.name}' — {self.channel}, {self.library}, window {self.window}, "
                f"{self.quantisation}, border crop {self.border_crop}.")


@lru_cache(maxsize=None)
def _pyiqa_metric(kind: str, device: str):
    from harness._compat import install_torchvision_shim

    install_torchvision_shim()  # pyiqa imports torchvision
    import pyiqa

    # color_space='ycbcr' is the point: pyiqa defaults to 'yiq' (1.32 dB off MATLAB's Y).
    return pyiqa.create_metric(kind, test_y_channel=True, color_space="ycbcr", device=torch.device(device))


def quantise_8bit(img: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to the nearest of 256 levels."""
    return torch.round(img.clamp(0.0, 1.0) * 255.0) / 255.0


def _pyiqa_y(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def compute(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        metric = _pyiqa_metric(kind, str(restored.device))
        with torch.no_grad():
            restored_q, target_q = quantise_8bit(restored.float()), quantise_8bit(target.float())
            return metric(restored_q, target_q).to(torch.float64).reshape(-1)

    return compute


def _hwc_float64(batch: torch.Tensor) -> list:
    return [img.detach().cpu().permute(1, 2, 0).double().numpy() for img in batch]


def _skimage_rgb(kind: str, **kwargs) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def compute(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        values = []
        for r, t in zip(_hwc_float64(restored.clamp(0.0, 1.0)), _hwc_float64(target.clamp(0.0, 1.0))):
            if kind == "psnr":
                values.append(peak_signal_noise_ratio(t, r, data_range=1.0))
            else:
                values.append(structural_similarity(t, r, data_range=1.0, channel_axis=-1, **kwargs))
        return torch.tensor(values, dtype=torch.float64)

    return compute


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    return g / g.sum()


_GAUSS_11 = _gaussian_1d()


def _separable_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Filter each channel of N×C×H×W with the outer product g·gᵀ, 'valid' region."""
    n, c, h, w = x.shape
    k = g.numel()
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(flat, g.view(1, 1, 1, k).to(x))
    flat = F.conv2d(flat, g.view(1, 1, k, 1).to(x))
    return flat.reshape(n, c, h - k + 1, w - k + 1)


def _ssim_y(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from harness._compat import install_torchvision_shim

    install_torchvision_shim()
    from pyiqa.archs.func_util import preprocess_rgb

    data_range = 255.0
    x = preprocess_rgb(quantise_8bit(restored.float()), True, data_range, "ycbcr").to(torch.float64)
    y = preprocess_rgb(quantise_8bit(target.float()), True, data_range, "ycbcr").to(torch.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    with torch.no_grad():
        stats = _separable_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), _GAUSS_11)
        mu_x, mu_y, xx, yy, xy = stats.unbind(dim=1)
        var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
        cs = F.relu((2 * cov + c2) / (var_x + var_y + c2))
        ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return ssim_map.mean(dim=(1, 2))


PROTOCOLS: dict[str, MetricProtocol] = {
    "psnr_y": MetricProtocol(
        name="psnr_y", display="PSNR", channel="Y (BT.601, 16-235)", library="pyiqa 0.1.16",
        window="-", data_range="255", quantisation="8-bit (rounded)", border_crop=0,
        higher_is_better=True, compute=_pyiqa_y("psnr"),
    ),
    "ssim_y": MetricProtocol(
        name="ssim_y", display="SSIM", channel="Y (BT.601, 16-235, rounded)",
        library="pyiqa 0.1.16 Y + SSIM formula, separable filter (= pyiqa ssim within 1e-6)",
        window="Gaussian 11x11, sigma 1.5", data_range="255", quantisation="8-bit (rounded)",
        border_crop=0, higher_is_better=True, compute=_ssim_y, decimals=3, gate_tolerance=0.002,
    ),
    "psnr_rgb": MetricProtocol(
        name="psnr_rgb", display="PSNR", channel="RGB", library="scikit-image",
        window="-", data_range="1", quantisation="none (float, clipped)", border_crop=0,
        higher_is_better=True, compute=_skimage_rgb("psnr"),
    ),
    "ssim_rgb": MetricProtocol(
        name="ssim_rgb", display="SSIM", channel="RGB (channel mean)", library="scikit-image",
        window="uniform 7x7, sample covariance", data_range="1", quantisation="none (float, clipped)",
        border_crop=0, higher_is_better=True, compute=_skimage_rgb("ssim"), decimals=3, gate_tolerance=0.002,
    ),
    "ssim_rgb_gauss": MetricProtocol(
        name="ssim_rgb_gauss", display="SSIM", channel="RGB (channel mean)", library="scikit-image",
        window="Gaussian 11x11, sigma 1.5, sample covariance", data_range="1",
        quantisation="none (float, clipped)", border_crop=0, higher_is_better=True,
        compute=_skimage_rgb("ssim", gaussian_weights=True), decimals=3, gate_tolerance=0.002,
    ),
}


def get_protocol(name: str) -> MetricProtocol:
    if name not in PROTOCOLS:
        raise HarnessError(f"unknown metric protocol '{name}'; allowed: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def score(name: str, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Score a batch: inputs N×3×H×W in [0, 1] (restored may overshoot; it is clipped).

    Returns a float64 tensor of shape (N,).
    """
    protocol = get_protocol(name)
    if restored.shape != target.shape or restored.ndim != 4 or restored.shape[1] != 3:
        raise ValueError(
            f"score('{name}'): expected two N×3×H×W tensors of equal shape, "
            f"got {tuple(restored.shape)} and {tuple(target.shape)}"
        )
    if protocol.border_crop:  # BasicSR's crop_border: drop that many pixels on every side first
        b = protocol.border_crop
        if restored.shape[-1] <= 2 * b or restored.shape[-2] <= 2 * b:
            raise ValueError(f"score('{name}'): a {restored.shape[-1]}×{restored.shape[-2]} image is too small for "
                             f"border crop {b}")
        restored, target = restored[..., b:-b, b:-b], target[..., b:-b, b:-b]
    return protocol.compute(restored, target)
