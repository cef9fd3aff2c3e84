"""Paired significance between two methods scored on the same images.

``paired_comparison(a, b)`` gives the mean difference a − b, a 95% confidence interval from
a paired bootstrap (resampling images, percentile interval) and the two-sided Wilcoxon
signed-rank p-value (scipy). The bootstrap is seeded, so the interval is reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedComparison:
    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_wilcoxon: float

    def significant(self, alpha: float = 0.05) -> bool:
        """Both tests agree: the interval excludes zero and the Wilcoxon p is below alpha."""
        return (self.ci_low > 0 or self.ci_high < 0) and self.p_wilcoxon < alpha


def paired_comparison(a, b, *, n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0) -> PairedComparison:
    from scipy.stats import wilcoxon

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_comparison needs two 1-D arrays over the same images, got {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError("paired_comparison needs at least two images")
    diff = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(n_boot, diff.size))
    boot_means = diff[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot_means, [tail, 1.0 - tail])
    if np.all(diff == 0):
        p = 1.0
    else:
        # scipy's exact test needs distinct, non-zero |differences|; with ties or zeros it would
        # fall back to a slow permutation test, so use the normal approximation there.
        magnitudes = np.abs(diff[diff != 0])
        exact = magnitudes.size == diff.size and np.unique(magnitudes).size == magnitudes.size
        method = "auto" if exact else "asymptotic"
        p = float(wilcoxon(a, b, zero_method="wilcox", alternative="two-sided", method=method).pvalue)
    return PairedComparison(int(diff.size), float(diff.mean()), float(low), float(high), p)
