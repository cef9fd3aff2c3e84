"""Physics and protocol checks for the synthetic degradations and the mini data."""
import numpy as np
import pytest

from harness.data import center_crop_multiple, dihedral, mini
from harness.data.catalog import CDD11_TYPES
from harness.data.degradations import (
    add_gaussian_noise,
    add_haze,
    add_low_light,
    add_motion_blur,
    add_rain,
    add_snow,
    compose,
    degrade,
    legacy_noise_stream,
    motion_kernel,
    seed_for,
)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    """The mini set's disk cache goes to a temporary folder, never ~/.cache."""
    monkeypatch.setenv(mini.CACHE_ENV, str(tmp_path / "cache"))
    mini.clear_memory_cache()


def _clean(h=48, w=64):
    rng = np.random.default_rng(123)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_noise_is_the_denoising_protocol():
    """clip(clean + randn·σ, 0, 255) then a truncating uint8 cast (docs/protocols.md#denoising-noise)."""
    clean = _clean()
    noisy = add_gaussian_noise(clean, 25, np.random.default_rng(7))
    expected_noise = np.random.default_rng(7).standard_normal(clean.shape)
    raw = np.clip(clean + expected_noise * 25, 0, 255)
    np.testing.assert_array_equal(noisy, np.floor(raw).astype(np.uint8))
    # truncation, not rounding: some pixels differ from the rounded version
    assert (np.round(raw).astype(np.uint8) != noisy).any()


def test_noise_level_is_sigma():
    clean = np.full((256, 256, 3), 128, np.uint8)
    noisy = add_gaussian_noise(clean, 15, np.random.default_rng(0)).astype(np.float64)
    # truncation lowers the mean by ~0.5 but leaves the spread at sigma
    assert noisy.std() == pytest.approx(15, rel=0.02)
    assert noisy.mean() == pytest.approx(127.5, abs=0.2)


def test_seed_depends_on_parts_not_order():
    assert seed_for("bsd68", "img1", 25) == seed_for("bsd68", "img1", 25)
    assert seed_for("bsd68", "img1", 25) != seed_for("bsd68", "img1", 15)
    assert seed_for("bsd68", "img1", 25) != seed_for("bsd68", "img2", 25)
    assert 0 <= seed_for("x") < 2**63
    assert seed_for("bsd68", "img1", 25.0) == seed_for("bsd68", "img1", 25)


def test_haze_lowers_contrast_monotonically_with_beta():
    clean = _clean(64, 64)
    depth = np.full((64, 64), 0.8)
    stds = [add_haze(clean, np.random.default_rng(0), beta=b, airlight=0.9, depth=depth).std()
            for b in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert stds[0] == pytest.approx(clean.std(), abs=0.5)  # beta 0: transmission 1, no haze
    assert all(a > b for a, b in zip(stds, stds[1:]))


def test_haze_matches_scattering_model():
    clean = np.full((8, 8, 3), 50, np.uint8)
    depth = np.full((8, 8), 1.0)
    hazy = add_haze(clean, np.random.default_rng(0), beta=1.0, airlight=0.9, depth=depth)
    t = np.exp(-1.0)
    expected = round((50 / 255 * t + 0.9 * (1 - t)) * 255)
    assert (hazy == expected).all()


def test_rain_is_additive_and_grows_with_density():
    clean = _clean(96, 96) // 2
    light = add_rain(clean, np.random.default_rng(1), density=0.002, length=11, angle_deg=10)
    heavy = add_rain(clean, np.random.default_rng(1), density=0.02, length=11, angle_deg=10)
    assert (light.astype(int) >= clean).all() and (heavy.astype(int) >= clean).all()
    assert heavy.mean() > light.mean() > clean.mean()


def test_degrade_dispatch_and_errors():
    clean = _clean(16, 16)
    assert degrade("denoise", clean, np.random.default_rng(0), sigma=15).shape == clean.shape
    with pytest.raises(ValueError, match="sigma"):
        degrade("denoise", clean, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no synthetic degradation for task 'sharpen'"):
        degrade("sharpen", clean, np.random.default_rng(0))
    with pytest.raises(ValueError, match="composite needs its parts"):
        degrade("composite", clean, np.random.default_rng(0))


def test_mini_sets_are_seeded_and_disjoint():
    a = mini.test_set("c", "bsd68", "denoise", 25)
    b = mini.test_set("c", "bsd68", "denoise", 25)
    for pa, pb in zip(a.pairs, b.pairs):
        np.testing.assert_array_equal(pa.degraded, pb.degraded)
    assert set(mini.TEST_IMAGES).isdisjoint(mini.TRAIN_IMAGES)
    assert all(p.clean.shape == (mini.TEST_SIZE, mini.TEST_SIZE, 3) for p in a.pairs)
    assert "not comparable with the paper" in a.notes["source"]


def test_mini_sampler_shapes_and_determinism():
    sampler = mini.MiniPatchSampler([("denoise", 25.0), ("derain", None), ("dehaze", None)])
    d1, c1 = sampler.sample(np.random.default_rng(3), 5, 32)
    d2, c2 = sampler.sample(np.random.default_rng(3), 5, 32)
    assert d1.shape == c1.shape == (5, 32, 32, 3) and d1.dtype == np.uint8
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(c1, c2)


def test_dihedral_gives_eight_distinct_variants():
    img = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    variants = {dihedral(img, k).tobytes() + bytes(dihedral(img, k).shape) for k in range(8)}
    assert len(variants) == 8


def test_center_crop_multiple_matches_promptir_arithmetic():
    img = np.zeros((321, 481, 3), np.uint8)
    img[0, :, :] = 1  # the first row is cropped (321 % 16 = 1 → top 0, bottom 1)
    out = center_crop_multiple(img, 16)
    assert out.shape == (320, 480, 3)
    assert out[0].max() == 1  # ch // 2 = 0 rows removed at the top


def test_motion_blur_kernel_and_effect():
    k = motion_kernel(9, 0.0)
    assert k.sum() == pytest.approx(1.0) and (k[4] > 0).sum() == 9 and k[:4].sum() == 0  # horizontal line
    clean = np.zeros((32, 32, 3), np.uint8)
    clean[:, 16] = 255  # a vertical line smears horizontally
    blurred = add_motion_blur(clean, np.random.default_rng(0), length=9, angle_deg=0.0)
    assert blurred[10, 16, 0] == round(255 / 9) and blurred[10, 12, 0] == round(255 / 9) and blurred[10, 10, 0] == 0
    vertical = add_motion_blur(clean, np.random.default_rng(0), length=9, angle_deg=90.0)
    assert vertical[10, 16, 0] == 255  # blur along the line leaves it unchanged


def test_low_light_lowers_mean_luminance():
    clean = _clean(64, 64)
    dark = add_low_light(clean, np.random.default_rng(0))
    darker = add_low_light(clean, np.random.default_rng(0), scale=0.05, gamma=1.5, noise=0.01)
    brighter = add_low_light(clean, np.random.default_rng(0), scale=0.3, gamma=1.5, noise=0.01)
    assert dark.mean() < 0.35 * clean.mean()
    assert darker.mean() < brighter.mean() < clean.mean()


def test_snow_only_brightens_and_grows_with_density():
    clean = _clean(96, 96) // 2
    light = add_snow(clean, np.random.default_rng(2), density=0.002)
    heavy = add_snow(clean, np.random.default_rng(2), density=0.02)
    assert (light.astype(int) >= clean.astype(int) - 1).all()  # blending towards white, up to rounding
    assert heavy.mean() > light.mean() > clean.mean()


def test_composite_applies_parts_in_the_stated_order():
    clean = _clean(48, 48)
    got = compose("rain_low_haze", clean, np.random.default_rng(4))  # name order does not matter
    rng = np.random.default_rng(4)
    expected = add_low_light(add_rain(add_haze(clean, rng), rng), rng)  # haze → rain → low
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(degrade("composite", clean, np.random.default_rng(4), parts="low_haze_rain"), expected)
    with pytest.raises(ValueError, match="unknown composite part"):
        compose("low_fog", clean, np.random.default_rng(0))


def test_legacy_stream_is_one_global_stream_over_all_sigmas():
    """np.random.seed(0) once; σ 15 → 25 → 50 back to back; σ 25 depends on σ 15 having run."""
    images = [("b", _clean(16, 16)), ("a", _clean(8, 24))]
    got = legacy_noise_stream(images)
    np.random.seed(0)
    for sigma in (15, 25, 50):
        for image_id, clean in images:  # in the order given
            expected = np.clip(clean + np.random.randn(*clean.shape) * sigma, 0, 255).astype(np.uint8)
            np.testing.assert_array_equal(got[(float(sigma), image_id)], expected)
    # a fresh stream at σ 25 alone is not the legacy σ 25
    fresh = np.clip(images[0][1] + np.random.RandomState(0).randn(16, 16, 3) * 25, 0, 255).astype(np.uint8)
    assert not np.array_equal(fresh, got[(25.0, "b")])
    assert set(legacy_noise_stream(images, keep={25.0})) == {(25.0, "b"), (25.0, "a")}


def test_haze_tends_to_the_airlight_as_transmission_vanishes():
    clean = _clean(32, 32)
    thick = add_haze(clean, np.random.default_rng(0), beta=20.0, airlight=0.8, depth=np.ones((32, 32)))
    assert np.abs(thick.astype(int) - round(0.8 * 255)).max() <= 1
    # nearer pixels (smaller depth) keep more contrast
    depth = np.linspace(0, 1, 32)[:, None].repeat(32, axis=1)
    hazy = add_haze(clean, np.random.default_rng(0), beta=2.0, airlight=0.9, depth=depth).astype(float)
    assert hazy[:8].std() > hazy[-8:].std()


def test_low_light_darkens_monotonically_with_scale():
    clean = _clean(64, 64)
    means = [add_low_light(clean, np.random.default_rng(0), scale=s, gamma=1.5, noise=0.0).mean()
             for s in (0.05, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(means, means[1:]))


def test_motion_blur_keeps_mean_brightness():
    clean = _clean(64, 64)
    blurred = add_motion_blur(clean, np.random.default_rng(0), length=11, angle_deg=30.0)
    assert blurred.mean() == pytest.approx(clean.mean(), abs=1.0)
    assert blurred.astype(float).std() < clean.astype(float).std()


def test_every_cdd11_type_is_a_composite_of_its_parts():
    clean = _clean(32, 32)
    outputs = {t: compose(t, clean, np.random.default_rng(1)) for t in CDD11_TYPES}
    assert len({o.tobytes() for o in outputs.values()}) == 11
    for t, out in outputs.items():
        if "low" in t:
            assert out.mean() < 0.5 * clean.mean(), t  # low light is applied last: everything gets darker
        else:
            assert out.mean() > clean.mean(), t  # haze, rain and snow only add light
