"""Large-sample intervals of a comparison: from ASYMPTOTIC_FROM runs the mean's interval is
the normal one and the median's the order-statistic one (no bootstrap), and they cover the
truth at their nominal rate — on skewed, paired and unpaired samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.analysis.compare import (
    ASYMPTOTIC_FROM,
    _intervals,
    _mean_median,
    _mean_median_shift,
    difference,
)

N = ASYMPTOTIC_FROM
REPS = 200


def _covers(paired: bool, seed: int) -> tuple[float, float]:
    """Share of REPS comparisons whose mean and median intervals cover the true shift."""
    rng = np.random.default_rng(seed)
    sigma = 0.8
    true_median = 0.5  # b = a * e^0.5 for the paired case; a shift of medians unpaired
    mean_hits = median_hits = 0
    for _ in range(REPS):
        a = rng.lognormal(0.0, sigma, N)
        if paired:
            b = a + 0.5 + rng.normal(0, 1, N)
            true_mean, true_med = 0.5, 0.5
        else:
            b = rng.lognormal(0.0, sigma, N) + true_median
            true_mean, true_med = true_median, true_median
        # What difference() computes for its intervals (without its KS and distances)
        if paired:
            x = b - a
            center = (float(np.mean(x)), float(np.median(x)))
            lows, highs, used = _intervals((x,), _mean_median, center, 0.95, 2000)
        else:
            center = (float(b.mean() - a.mean()), float(np.median(b) - np.median(a)))
            lows, highs, used = _intervals((a, b), _mean_median_shift, center, 0.95, 2000)
        assert used == 0
        mean_hits += lows[0] <= true_mean <= highs[0]
        median_hits += lows[1] <= true_med <= highs[1]
    return mean_hits / REPS, median_hits / REPS


@pytest.mark.parametrize("paired", [True, False])
def test_large_sample_intervals_cover_at_their_level(paired):
    mean_rate, median_rate = _covers(paired, seed=11)
    # 95% nominal; 200 reps: a binomial 99.9% band around 0.95 is about 0.90-0.99
    low, high = stats.binom.ppf([0.0005, 0.9995], REPS, 0.95) / REPS
    assert low <= mean_rate <= high
    assert low <= median_rate <= 1.0  # order statistics are exact or conservative


def test_below_the_threshold_it_is_the_bootstrap():
    rng = np.random.default_rng(2)
    a = rng.normal(size=ASYMPTOTIC_FROM - 1)
    d = difference(a, a + rng.normal(size=len(a)), paired=True)
    assert d.resamples > 0


def test_large_sample_and_bootstrap_intervals_agree_at_the_threshold():
    rng = np.random.default_rng(5)
    a = rng.gamma(2.0, 1.0, ASYMPTOTIC_FROM)
    b = a + rng.normal(0.3, 1, ASYMPTOTIC_FROM)
    theory = difference(a, b, paired=True)
    booted = difference(a[:-1], b[:-1], paired=True)  # one run fewer: the bootstrap
    width = theory.mean_high - theory.mean_low
    assert abs(theory.mean_low - booted.mean_low) < 0.1 * width
    assert abs(theory.mean_high - booted.mean_high) < 0.1 * width
    mwidth = theory.median_high - theory.median_low
    assert abs(theory.median_low - booted.median_low) < 0.25 * mwidth
