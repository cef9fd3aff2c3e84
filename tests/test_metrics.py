"""The default metric protocol against independent references (BasicSR/MATLAB conventions)."""
import numpy as np
import pytest
import torch

from harness.data.degradations import add_gaussian_noise
from harness.data.images import bundled_image, center_square
from harness.errors import HarnessError
from harness.metrics import score


def _to_tensor(*imgs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).double().div(255.0)


def _y(img_uint8: np.ndarray, rounded: bool) -> np.ndarray:
    """MATLAB rgb2ycbcr's Y (BT.601, 16-235), written from the published coefficients."""
    rgb = img_uint8.astype(np.float64) / 255.0
    y = 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]
    return np.round(y) if rounded else y


def _psnr_reference(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((_y(a, False) - _y(b, False)) ** 2)
    return 10.0 * np.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 SSIM as MATLAB computes it on rounded Y: Gaussian 11/1.5, 'valid' region."""
    from scipy.signal import correlate2d

    x, y = _y(a, True), _y(b, True)
    w = _gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(img):
        return correlate2d(img, w, mode="valid")

    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(ssim_map.mean())


@pytest.fixture(scope="module")
def noisy_pairs():
    pairs = []
    for i, name in enumerate(["astronaut", "coffee", "chelsea"]):
        clean = center_square(bundled_image(name), 96)
        noisy = add_gaussian_noise(clean, 15, np.random.default_rng(i))
        pairs.append((noisy, clean))
    return pairs


def test_psnr_y_matches_basicsr_convention(noisy_pairs):
    restored = _to_tensor(*[p[0] for p in noisy_pairs])
    target = _to_tensor(*[p[1] for p in noisy_pairs])
    ours = score("psnr_y", restored, target)
    assert ours.dtype == torch.float64 and ours.shape == (3,)
    for value, (a, b) in zip(ours.tolist(), noisy_pairs):
        assert value == pytest.approx(_psnr_reference(a, b), abs=1e-3)


def test_ssim_y_matches_matlab_convention(noisy_pairs):
    restored = _to_tensor(*[p[0] for p in noisy_pairs])
    target = _to_tensor(*[p[1] for p in noisy_pairs])
    ours = score("ssim_y", restored, target)
    for value, (a, b) in zip(ours.tolist(), noisy_pairs):
        assert value == pytest.approx(_ssim_reference(a, b), abs=1e-4)


def test_known_mse_hand_computed():
    # A uniform +10/255 shift of R, G and B moves Y by 10·219/255 (the Y range is 16..235),
    # so PSNR-Y = 20·log10(255 / (10·219/255)) = 29.4517 dB.
    target = np.full((32, 32, 3), 100, np.uint8)
    shifted = target + np.uint8(10)
    value = score("psnr_y", _to_tensor(shifted), _to_tensor(target)).item()
    assert value == pytest.approx(20 * np.log10(255 / (10 * 219 / 255)), abs=1e-3)


def test_identical_images():
    img = center_square(bundled_image("coffee"), 64)
    t = _to_tensor(img)
    assert score("ssim_y", t, t).item() == pytest.approx(1.0, abs=1e-9)
    assert score("psnr_y", t, t).item() > 70  # pyiqa adds eps=1e-8 to the MSE: 80 dB, not inf


def test_never_yiq(noisy_pairs):
    """pyiqa's default colour space (YIQ) reads 20·log10(255/219) ≈ 1.32 dB lower; we must not."""
    import pyiqa

    restored = _to_tensor(noisy_pairs[0][0])
    target = _to_tensor(noisy_pairs[0][1])
    yiq = pyiqa.create_metric("psnry", device="cpu")(restored.float(), target.float()).item()
    ours = score("psnr_y", restored, target).item()
    assert ours - yiq == pytest.approx(20 * np.log10(255 / 219), abs=0.02)


def test_restored_overshoot_is_clipped_and_quantised():
    target = np.full((16, 16, 3), 200, np.uint8)
    t = _to_tensor(target)
    overshoot = t + 0.5  # clipped to 1.0 = 255 before scoring
    expected = 20 * np.log10(255 / (55 * 219 / 255))
    assert score("psnr_y", overshoot, t).item() == pytest.approx(expected, abs=1e-3)
    # 0.4/255 rounds back to the same 8-bit level, so the images are identical after quantisation
    assert score("ssim_y", t + 0.4 / 255, t).item() == pytest.approx(1.0, abs=1e-9)


def test_bad_inputs():
    with pytest.raises(HarnessError, match="unknown metric protocol 'psnr'.*psnr_y"):
        score("psnr", torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="equal shape"):
        score("psnr_y", torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


def _ssim_uniform_reference(a: np.ndarray, b: np.ndarray, win: int = 7) -> float:
    """SSIM with a uniform win×win window and sample covariance, per channel, mean over the
    valid interior and over channels (the PromptIR/AirNet protocol), on floats in [0, 1]."""
    from scipy.signal import correlate2d

    k = np.full((win, win), 1.0 / win**2)
    n = win * win
    cov_norm = n / (n - 1)
    c1, c2 = 0.01**2, 0.03**2
    per_channel = []
    for ch in range(3):
        x, y = a[..., ch], b[..., ch]
        f = lambda img: correlate2d(img, k, mode="valid")  # noqa: E731
        mx, my = f(x), f(y)
        vx = cov_norm * (f(x * x) - mx**2)
        vy = cov_norm * (f(y * y) - my**2)
        vxy = cov_norm * (f(x * y) - mx * my)
        s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        per_channel.append(s.mean())
    return float(np.mean(per_channel))


def test_rgb_protocols_match_independent_references(noisy_pairs):
    restored = _to_tensor(*[p[0] for p in noisy_pairs])
    target = _to_tensor(*[p[1] for p in noisy_pairs])
    psnr = score("psnr_rgb", restored, target)
    ssim = score("ssim_rgb", restored, target)
    for i, (a, b) in enumerate(noisy_pairs):
        af, bf = a / 255.0, b / 255.0
        assert psnr[i].item() == pytest.approx(10 * np.log10(1.0 / np.mean((af - bf) ** 2)), abs=1e-6)
        assert ssim[i].item() == pytest.approx(_ssim_uniform_reference(af, bf), abs=1e-4)


def test_rgb_protocols_do_not_quantise():
    target = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64)
    restored = target + 0.001  # below half an 8-bit step
    assert score("psnr_rgb", restored, target).item() == pytest.approx(60.0, abs=1e-6)
    assert score("psnr_y", restored, target).item() > 70  # quantised back to identical


def test_gaussian_and_uniform_ssim_differ(noisy_pairs):
    restored = _to_tensor(noisy_pairs[0][0])
    target = _to_tensor(noisy_pairs[0][1])
    uniform = score("ssim_rgb", restored, target).item()
    gauss = score("ssim_rgb_gauss", restored, target).item()
    # the variants are not interchangeable (docs/protocols.md#ssim-variants-are-not-interchangeable)
    assert abs(uniform - gauss) > 1e-3


def test_ssim_y_equals_pyiqa_ssim_ycbcr(noisy_pairs):
    """Our separable-filter SSIM-Y is pyiqa's SSIM (ycbcr), only faster."""
    import pyiqa

    restored = _to_tensor(*[p[0] for p in noisy_pairs]).float()
    target = _to_tensor(*[p[1] for p in noisy_pairs]).float()
    reference = pyiqa.create_metric("ssim", test_y_channel=True, color_space="ycbcr", device="cpu")(restored, target)
    ours = score("ssim_y", restored, target)
    # pyiqa rounds its 11×11 window to float32; ours is the exact float64 Gaussian: ~1e-7 apart
    assert torch.allclose(ours, reference.double(), atol=1e-6, rtol=0)
    yiq = pyiqa.create_metric("ssim", test_y_channel=True, device="cpu")(restored, target)
    assert (ours - yiq.double()).abs().min() > 1e-3  # the YIQ default must never come back
