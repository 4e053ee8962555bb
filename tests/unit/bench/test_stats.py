import math
import statistics

import pytest

from bench import stats
from bench.errors import ConfigError


def test_median_and_percentile_match_the_standard_library():
    xs = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0]
    assert stats.median(xs) == statistics.median(xs)
    assert stats.percentile(xs, 50) == statistics.median(xs)
    assert stats.percentile(xs, 0) == 1.0 and stats.percentile(xs, 100) == 10.0
    # numpy's linear method: position (n-1)*q
    assert stats.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)


def test_stdev_is_none_for_one_value_like_hyperfine():
    assert stats.stdev([1.0]) is None
    assert stats.stdev([1.0, 3.0]) == pytest.approx(math.sqrt(2))


def test_non_finite_values_are_ignored_and_counted():
    s = stats.summarize([1.0, float("nan"), 2.0, float("inf"), 3.0])
    assert s.n == 3 and s.n_invalid == 2
    assert s.median == 2.0
    assert any("invalid" in w for w in s.warnings)


def test_empty_input_gives_nan_and_a_warning():
    s = stats.summarize([])
    assert s.n == 0 and math.isnan(s.median)
    assert "no valid measurement" in s.warnings
    d = s.to_dict()
    assert d["median"] is None


def test_modified_zscore_flags_hyperfines_outliers():
    xs = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0, 30.0]
    flags = stats.outlier_flags(xs)
    assert flags == [False] * 6 + [True]
    # a moderate deviation is not an outlier under the 14.826 threshold
    assert not any(stats.outlier_flags([10, 11, 9, 12, 8, 13]))


def test_mad_zero_is_guarded():
    flags = stats.outlier_flags([1.0, 1.0, 1.0, 1.0, 2.0])
    assert flags == [False, False, False, False, True]
    assert stats.outlier_flags([1.0, 1.0, 1.0]) == [False, False, False]


def test_bootstrap_ci_is_seeded_and_contains_the_median():
    xs = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.3, 0.85]
    a = stats.bootstrap_median_ci(xs, seed=7)
    b = stats.bootstrap_median_ci(xs, seed=7)
    assert a == b
    assert a[0] <= stats.median(xs) <= a[1]
    assert min(xs) <= a[0] and a[1] <= max(xs)


def test_bootstrap_edge_cases():
    assert stats.bootstrap_median_ci([4.0]) == (4.0, 4.0)
    assert all(math.isnan(v) for v in stats.bootstrap_median_ci([]))
    with pytest.raises(ConfigError):
        stats.bootstrap_median_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ConfigError):
        stats.bootstrap_median_ci([1.0, 2.0], resamples=0)
    with pytest.raises(ConfigError):
        stats.percentile([1.0], 101)


def test_cv_warning():
    assert any("CV" in w for w in stats.summarize([1.0, 2.0, 3.0, 1.5]).warnings)
    assert not any("CV" in w for w in stats.summarize([1.0, 1.01, 0.99, 1.0]).warnings)


def test_summary_records_seed_and_level():
    s = stats.summarize([1.0, 2.0, 3.0], seed=42)
    assert s.ci_seed == 42 and s.ci_level == 0.95 and s.ci_resamples == stats.DEFAULT_BOOTSTRAP


def test_interleaved_orders():
    assert stats.interleaved_order(["a", "b"], 4) == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]
    assert stats.interleaved_order(["a", "b"], 2, "fixed") == [["a", "b"], ["a", "b"]]
    r1 = stats.interleaved_order(["a", "b", "c"], 5, "random", seed=1)
    assert r1 == stats.interleaved_order(["a", "b", "c"], 5, "random", seed=1)
    assert all(sorted(o) == ["a", "b", "c"] for o in r1)
    # every backend goes first equally often when alternating an even number of rounds
    firsts = [o[0] for o in stats.interleaved_order(["a", "b", "c"], 6)]
    assert firsts.count("a") == 3 and firsts.count("c") == 3
    with pytest.raises(ConfigError):
        stats.interleaved_order(["a"], 2, "sideways")
    with pytest.raises(ConfigError):
        stats.interleaved_order(["a"], -1)
