"""Statistics: median, p95, bootstrap CI, undefined spread, non-finite input."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from reports.stats import geomean, ratio_of_medians, summarize


def test_summary_matches_an_independent_computation():
    rng = random.Random(7)
    values = [rng.lognormvariate(0, 0.3) for _ in range(57)]
    s = summarize(values)
    assert s.n == 57 and s.n_dropped == 0
    assert s.median == pytest.approx(statistics.median(values), rel=1e-12)
    assert s.p95 == pytest.approx(statistics.quantiles(values, n=20, method="inclusive")[18], rel=1e-12)
    assert s.stddev == pytest.approx(statistics.stdev(values), rel=1e-12)
    assert s.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert s.minimum == min(values) and s.maximum == max(values)
    assert s.ci_low <= s.median <= s.ci_high
    assert s.ci_low > min(values) and s.ci_high < max(values)


def test_bootstrap_is_reproducible_and_narrows_with_n():
    rng = random.Random(1)
    small = [rng.gauss(10, 1) for _ in range(10)]
    big = [rng.gauss(10, 1) for _ in range(2000)]
    assert summarize(small) == summarize(small)
    s_small, s_big = summarize(small), summarize(big)
    assert (s_big.ci_high - s_big.ci_low) < (s_small.ci_high - s_small.ci_low)


def test_one_sample_has_no_spread_and_no_ci():
    s = summarize([0.25])
    assert s.n == 1 and s.median == 0.25 and s.p95 == 0.25
    assert s.stddev is None and s.ci_low is None and s.ci_high is None and s.cv is None


def test_no_sample_gives_no_number():
    s = summarize([])
    assert s.n == 0 and s.median is None and s.p95 is None and s.mean is None


def test_nan_and_inf_are_dropped_and_counted():
    s = summarize([1.0, float("nan"), 2.0, float("inf"), -float("inf"), None, 3.0])
    assert s.n == 3 and s.n_dropped == 4 and s.median == 2.0


def test_noisy_flag_follows_the_coefficient_of_variation():
    assert not summarize([1.0, 1.01, 0.99, 1.0]).noisy
    assert summarize([1.0, 3.0, 0.2, 5.0]).noisy


def test_ratio_of_medians_and_its_interval():
    a = [2.0, 2.1, 1.9, 2.05, 1.95]
    b = [1.0, 1.02, 0.98, 1.01, 0.99]
    r = ratio_of_medians(a, b)
    assert r.value == pytest.approx(2.0)
    assert r.ci_low <= 2.0 <= r.ci_high
    one = ratio_of_medians([3.0], [1.5])
    assert one.value == 2.0 and one.ci_low is None
    assert ratio_of_medians([], [1.0]).value is None
    assert ratio_of_medians([1.0], [0.0]).value is None


def test_geomean():
    assert geomean([1.0, 4.0]) == pytest.approx(2.0)
    assert geomean([]) is None
    assert geomean([0.0, -1.0, math.nan]) is None


def test_bootstrap_medians_equal_numpy_medians_of_the_same_resamples():
    import numpy as np

    from reports.stats import _boot_medians

    x = np.random.default_rng(3).normal(size=31)
    for n in (31, 30):
        got = _boot_medians(x[:n], np.random.default_rng(9), 50)
        rng = np.random.default_rng(9)
        idx = rng.integers(0, n, size=(50, n))
        want = np.median(np.sort(x[:n])[idx], axis=1)
        assert np.allclose(got, want)
