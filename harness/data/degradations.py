"""Synthetic degradations, each a small seeded function of a clean uint8 RGB image.

Every function takes ``clean`` as an H×W×3 uint8 array and a ``numpy.random.Generator``
and returns an H×W×3 uint8 array, so the same seed always gives the same image.

- ``add_gaussian_noise``: exactly the denoising test protocol of PromptIR/AirNet
  (docs/protocols.md#denoising-noise): float64 standard-normal noise times sigma added
  to the uint8 image, clipped to [0, 255], then *truncated* (not rounded) to uint8.
- ``add_haze``: the atmospheric scattering model I = J·t + A·(1 − t), t = exp(−β·d), as
  used to synthesise RESIDE/SOTS, with a synthetic smooth depth map d ∈ [0, 1].
- ``add_rain``: additive rain streaks (the Rain100L synthesis style): sparse impulses
  smeared along one direction by a line kernel, added to the image and clipped.
- ``add_motion_blur``: a linear motion kernel (length, angle), a stand-in for GoPro's
  frame averaging.
- ``add_low_light``: LOL-style under-exposure, I = s·J^γ plus signal-dependent noise.
- ``add_snow``: opaque snow flakes of several sizes blended over the image (a veil of
  small flakes plus a few large ones), I = J·(1 − m) + m.
- ``compose``: CDD-11-style composites applied in a fixed physical order: haze (scene,
  depends on depth) → rain or snow (in front of the scene) → low light (illumination of
  everything the camera sees), e.g. ``low_haze_rain`` = low(rain(haze(J))).
- ``legacy_noise_stream``: the official test scripts' noise, replayed for parity with
  published numbers (docs/protocols.md#official-single-stream; the per-image alternative:
  docs/protocols.md#per-image-seeds): one global
  stream seeded with 0 once, σ 15 → 25 → 50 back to back over the same images, ``randn``
  float64 per image, clip, truncating uint8 cast.

Everything here is synthetic except ``add_gaussian_noise`` / ``legacy_noise_stream``, which
are the denoising protocol itself. The mini profile (``harness.data.mini``) uses the others as
stand-ins for the real sets: haze for SOTS, rain for Rain100L, motion blur for GoPro, low
light for LOL-v1 and the composites for CDD-11.
"""
from __future__ import annotations

import hashlib

import cv2
import numpy as np


def seed_for(*parts: object) -> int:
    """A 63-bit seed derived from the parts, e.g. (dataset, image id, sigma).

    Independent of file order, worker count and what ran before (unlike one global stream).
    """
    # 25 and 25.0 must give the same seed: a suite's sigma arrives as a float.
    canonical = [int(p) if isinstance(p, float) and p.is_integer() else p for p in parts]
    text = "/".join(str(p) for p in canonical)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1


def _check_image(clean: np.ndarray) -> None:
    if clean.dtype != np.uint8 or clean.ndim != 3 or clean.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 image, got {clean.dtype} {clean.shape}")


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def add_gaussian_noise(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """clip(clean + N(0, 1)·σ, 0, 255) then a truncating uint8 cast (the PromptIR/AirNet protocol)."""
    _check_image(clean)
    noise = rng.standard_normal(clean.shape)  # float64, as np.random.randn in the protocol
    return np.clip(clean.astype(np.float64) + noise * sigma, 0, 255).astype(np.uint8)


def synthetic_depth(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth depth map in [0, 1]: far at the top, near at the bottom, with low-frequency bumps."""
    ramp = np.linspace(1.0, 0.0, height, dtype=np.float64)[:, None].repeat(width, axis=1)
    coarse = rng.random((4, 4))
    bumps = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    depth = 0.7 * ramp + 0.3 * bumps
    depth -= depth.min()
    return depth / max(depth.max(), 1e-12)


def add_haze(
    clean: np.ndarray,
    rng: np.random.Generator,
    beta: float | None = None,
    airlight: float | None = None,
    depth: np.ndarray | None = None,
) -> np.ndarray:
    """Haze by the scattering model; β (density) and A (airlight) are drawn when not given."""
    _check_image(clean)
    h, w, _ = clean.shape
    beta = float(rng.uniform(0.8, 2.0)) if beta is None else float(beta)
    airlight = float(rng.uniform(0.75, 0.95)) if airlight is None else float(airlight)
    depth = synthetic_depth(h, w, rng) if depth is None else depth
    t = np.exp(-beta * depth)[..., None]
    hazy = clean.astype(np.float64) / 255.0 * t + airlight * (1.0 - t)
    return _to_uint8(hazy)


def rain_layer(
    height: int,
    width: int,
    rng: np.random.Generator,
    density: float,
    length: int,
    angle_deg: float,
) -> np.ndarray:
    """A streak layer in [0, 1]: impulses smeared by a normalised line kernel at one angle."""
    impulses = (rng.random((height, width)) < density) * rng.uniform(0.6, 1.0, (height, width))
    kernel = np.zeros((length, length), dtype=np.float64)
    kernel[:, length // 2] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(kernel.sum(), 1e-12)
    streaks = cv2.filter2D(impulses, -1, kernel * length * 0.5, borderType=cv2.BORDER_REFLECT)
    streaks = cv2.GaussianBlur(streaks, (3, 3), 0.5)
    return np.clip(streaks, 0.0, 1.0)


def add_rain(
    clean: np.ndarray,
    rng: np.random.Generator,
    density: float | None = None,
    length: int | None = None,
    angle_deg: float | None = None,
    strength: float = 0.8,
) -> np.ndarray:
    """Additive rain streaks; density, streak length and angle are drawn when not given."""
    _check_image(clean)
    h, w, _ = clean.shape
    density = float(rng.uniform(0.004, 0.012)) if density is None else float(density)
    length = int(rng.integers(9, 20)) if length is None else int(length)
    length += 1 - length % 2  # odd, so the kernel has a centre
    angle_deg = float(rng.uniform(-25.0, 25.0)) if angle_deg is None else float(angle_deg)
    streaks = rain_layer(h, w, rng, density, length, angle_deg)
    rainy = clean.astype(np.float64) / 255.0 + strength * streaks[..., None]
    return _to_uint8(np.clip(rainy, 0.0, 1.0))


def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised line kernel: uniform linear motion over ``length`` pixels at ``angle_deg``."""
    length += 1 - length % 2
    kernel = np.zeros((length, length), dtype=np.float64)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return kernel / max(kernel.sum(), 1e-12)


def add_motion_blur(
    clean: np.ndarray, rng: np.random.Generator, length: int | None = None, angle_deg: float | None = None
) -> np.ndarray:
    """Uniform linear camera motion: the image convolved with ``motion_kernel(length, angle)``.

    A normalised kernel keeps the mean brightness; length (7–15 px) and angle are drawn when
    not given. GoPro averages real sharp frames instead; this is the mini stand-in.
    """
    _check_image(clean)
    length = int(rng.integers(7, 16)) if length is None else int(length)
    angle_deg = float(rng.uniform(0.0, 180.0)) if angle_deg is None else float(angle_deg)
    blurred = cv2.filter2D(clean.astype(np.float64) / 255.0, -1, motion_kernel(length, angle_deg),
                           borderType=cv2.BORDER_REFLECT)
    return _to_uint8(blurred)


def add_low_light(
    clean: np.ndarray,
    rng: np.random.Generator,
    scale: float | None = None,
    gamma: float | None = None,
    noise: float | None = None,
) -> np.ndarray:
    """Under-exposure as in LOL: I = s·J^γ (s < 1 darkens, γ > 1 crushes the shadows) plus
    signal-dependent noise (shot noise ∝ signal, a small read-noise floor); s, γ and the noise
    level are drawn when not given."""
    _check_image(clean)
    scale = float(rng.uniform(0.08, 0.3)) if scale is None else float(scale)
    gamma = float(rng.uniform(1.2, 2.0)) if gamma is None else float(gamma)
    noise = float(rng.uniform(0.005, 0.02)) if noise is None else float(noise)
    dark = scale * (clean.astype(np.float64) / 255.0) ** gamma
    # shot noise grows with the signal, read noise does not
    dark = dark + rng.standard_normal(dark.shape) * np.sqrt(noise * dark + (noise / 4) ** 2)
    return _to_uint8(np.clip(dark, 0.0, 1.0))


def snow_mask(height: int, width: int, rng: np.random.Generator, density: float) -> np.ndarray:
    """Flake opacity in [0, 1]: many small soft flakes and a few large ones."""
    mask = np.zeros((height, width), dtype=np.float64)
    for radius, share in ((0.6, 1.0), (1.5, 0.25), (3.0, 0.05)):
        flakes = (rng.random((height, width)) < density * share).astype(np.float64)
        size = int(2 * np.ceil(3 * radius) + 1)
        blurred = cv2.GaussianBlur(flakes, (size, size), radius) * (2 * np.pi * radius**2)
        mask = np.maximum(mask, np.clip(blurred, 0.0, 1.0))
    return mask


def add_snow(clean: np.ndarray, rng: np.random.Generator, density: float | None = None) -> np.ndarray:
    """Opaque white flakes blended over the image, I = J·(1 − m) + m, with ``snow_mask`` m;
    only brightens, and more with ``density`` (drawn when not given)."""
    _check_image(clean)
    h, w, _ = clean.shape
    density = float(rng.uniform(0.003, 0.01)) if density is None else float(density)
    m = snow_mask(h, w, rng, density)[..., None]
    snowy = clean.astype(np.float64) / 255.0 * (1.0 - m) + m
    return _to_uint8(snowy)


# Order in which composite parts are applied (see the module docstring).
COMPOSITE_ORDER = ("haze", "rain", "snow", "low")
_SINGLE = {
    "haze": lambda img, rng: add_haze(img, rng),
    "rain": lambda img, rng: add_rain(img, rng),
    "snow": lambda img, rng: add_snow(img, rng),
    "low": lambda img, rng: add_low_light(img, rng),
}


def compose(parts: str, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A CDD-11 composite named like its folder, e.g. 'low_haze_rain' (parts in any order)."""
    names = parts.split("_")
    unknown = [n for n in names if n not in _SINGLE]
    if unknown or not names:
        raise ValueError(f"unknown composite part(s) {unknown} in '{parts}'; known: {', '.join(COMPOSITE_ORDER)}")
    img = clean
    for name in sorted(set(names), key=COMPOSITE_ORDER.index):
        img = _SINGLE[name](img, rng)
    return img


def _noise(clean: np.ndarray, rng: np.random.Generator, sigma=None, parts=None) -> np.ndarray:
    if sigma is None:
        raise ValueError("denoise needs sigma")
    return add_gaussian_noise(clean, sigma, rng)


def _composite(clean: np.ndarray, rng: np.random.Generator, sigma=None, parts=None) -> np.ndarray:
    if not parts:
        raise ValueError("a composite needs its parts, e.g. 'low_haze_rain'")
    return compose(parts, clean, rng)


# The synthetic degradation of each column task: fn(clean, rng, sigma=, parts=) -> degraded.
DEGRADATIONS = {
    "denoise": _noise,
    "dehaze": lambda clean, rng, **_: add_haze(clean, rng),
    "derain": lambda clean, rng, **_: add_rain(clean, rng),
    "deblur": lambda clean, rng, **_: add_motion_blur(clean, rng),
    "lowlight": lambda clean, rng, **_: add_low_light(clean, rng),
    "desnow": lambda clean, rng, **_: add_snow(clean, rng),
    "composite": _composite,
}
TASKS = tuple(DEGRADATIONS)


def degrade(
    task: str, clean: np.ndarray, rng: np.random.Generator, sigma: float | None = None, parts: str | None = None
) -> np.ndarray:
    """Apply the degradation of a table column's task."""
    if task not in DEGRADATIONS:
        raise ValueError(f"no synthetic degradation for task '{task}'; known: {', '.join(TASKS)}")
    return DEGRADATIONS[task](clean, rng, sigma=sigma, parts=parts)


LEGACY_SIGMAS = (15.0, 25.0, 50.0)


def check_legacy_sigma(column_id: str, sigma) -> None:
    """The legacy stream is the official σ 15 → 25 → 50 replay; any other σ is not in it."""
    from harness.data.errors import ColumnDataError

    if sigma is None or float(sigma) not in LEGACY_SIGMAS:
        raise ColumnDataError(
            f"column '{column_id}': noise 'legacy_stream' replays the official σ 15 → 25 → 50 stream; "
            f"σ {sigma} is not in it (use noise: per_image)"
        )


def legacy_noise_stream(
    images: list[tuple[str, np.ndarray]],
    keep: set[float] | None = None,
    sigmas: tuple[float, ...] = LEGACY_SIGMAS,
    seed: int = 0,
) -> dict[tuple[float, str], np.ndarray]:
    """The official scripts' denoising inputs: {(σ, image id): noisy uint8 image}.

    PromptIR/AirNet/AdaIR ``test.py`` (docs/protocols.md#official-single-stream) seed numpy's global stream once
    (``np.random.seed(0)``) and run σ = 15, 25, 50 back to back over the same images, drawing
    ``np.random.randn(H, W, 3)`` (float64) per image after the crop, then
    ``np.clip(clean + noise·σ, 0, 255).astype(np.uint8)``. So σ = 25's noise depends on σ = 15
    having run first and on the file order. ``images`` are given in the order to replay (the
    officials use ``os.listdir`` order, which is filesystem-dependent; the harness passes them
    sorted by image id and records that). The whole stream is drawn; only the σ in ``keep`` are
    returned (all when None).
    """
    state = np.random.RandomState(seed)  # the legacy MT19937 stream behind np.random.seed/randn
    out: dict[tuple[float, str], np.ndarray] = {}
    for sigma in sigmas:
        for image_id, clean in images:
            _check_image(clean)
            noise = state.randn(*clean.shape)
            if keep is None or float(sigma) in keep:
                out[(float(sigma), image_id)] = np.clip(clean + noise * sigma, 0, 255).astype(np.uint8)
    return out
