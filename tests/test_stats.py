import numpy as np
import pytest

from harness.stats import paired_comparison


def test_clear_improvement_is_significant():
    rng = np.random.default_rng(0)
    base = rng.normal(30, 2, 68)
    better = base + 0.3 + rng.normal(0, 0.05, 68)
    result = paired_comparison(better, base)
    assert result.mean_diff == pytest.approx(np.mean(better - base))
    assert result.ci_low < result.mean_diff < result.ci_high
    assert result.ci_low > 0.25 and result.ci_high < 0.35
    assert result.p_wilcoxon < 1e-10 and result.significant()


def test_noise_only_difference_is_not_significant():
    rng = np.random.default_rng(1)
    base = rng.normal(30, 2, 40)
    other = base + rng.normal(0, 0.3, 40)
    result = paired_comparison(other, base)
    assert result.ci_low < 0 < result.ci_high
    assert not result.significant()


def test_wilcoxon_hand_case():
    # differences 1..6 all positive: exact two-sided p = 2 / 2**6 = 0.03125
    a = np.array([1.0, 2, 3, 4, 5, 6]) + 10
    b = np.full(6, 10.0)
    assert paired_comparison(a, b).p_wilcoxon == pytest.approx(0.03125)


def test_identical_and_bad_inputs():
    same = np.arange(5.0)
    r = paired_comparison(same, same)
    assert (r.mean_diff, r.ci_low, r.ci_high, r.p_wilcoxon) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="same images"):
        paired_comparison(np.arange(3.0), np.arange(4.0))


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=20), rng.normal(size=20)
    assert paired_comparison(a, b, seed=5) == paired_comparison(a, b, seed=5)


def test_ties_use_the_normal_approximation_quickly():
    import time

    from scipy.stats import wilcoxon

    a = np.array([1.0, 2, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9]) + 0.5
    b = np.array([1.0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
    t0 = time.perf_counter()
    p = paired_comparison(a, b, n_boot=200).p_wilcoxon
    assert time.perf_counter() - t0 < 0.5
    assert p == pytest.approx(wilcoxon(a, b, method="asymptotic").pvalue)
