"""Statistics of samples: median, p95, spread, and bootstrap confidence intervals.

reports/ may not import bench/, so it computes its own statistics from the raw samples.
Conventions: p95 uses linear interpolation between order statistics (numpy's default,
the same as `statistics.quantiles(method="inclusive")`); the stddev uses ddof=1 and is
undefined (None) for fewer than two samples; confidence intervals are percentile
bootstraps of the median with a fixed seed, so a report is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
N_BOOT = 2000
SEED = 20260528
HIGH_CV = 0.25  # above this coefficient of variation the report warns about noise


@dataclass(frozen=True)
class Summary:
    """What the report says about one set of samples. Fields are None when undefined."""

    n: int
    n_dropped: int
    median: float | None
    p95: float | None
    ci_low: float | None
    ci_high: float | None
    mean: float | None
    stddev: float | None
    minimum: float | None
    maximum: float | None

    @property
    def cv(self) -> float | None:
        """Coefficient of variation (stddev / mean), None when undefined."""
        if self.stddev is None or not self.mean:
            return None
        return self.stddev / abs(self.mean)

    @property
    def noisy(self) -> bool:
        """True when the spread is large enough that the median should be read with care."""
        cv = self.cv
        return cv is not None and cv > HIGH_CV


def finite(values) -> np.ndarray:
    """The finite values of `values` as a float array (NaN, Inf and None dropped)."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    return arr[np.isfinite(arr)]


def _boot_medians(x: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Medians of `n_boot` resamples of x, in chunks so large inputs stay small in memory."""
    # With x sorted, the median of a resample is read off its sorted indices: sorting small
    # integers is several times faster than np.median on the gathered floats.
    xs = np.sort(x)
    n = len(xs)
    lo_i, hi_i = (n - 1) // 2, n // 2
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        idx.sort(axis=1)
        out[start:stop] = (xs[idx[:, lo_i]] + xs[idx[:, hi_i]]) / 2
    return out


def summarize(values, *, n_boot: int = N_BOOT, seed: int = SEED) -> Summary:
    """Summarize samples: median, p95, bootstrap CI of the median, mean, stddev, range."""
    raw = list(values)
    x = finite(raw)
    dropped = len(raw) - len(x)
    n = len(x)
    if n == 0:
        return Summary(0, dropped, None, None, None, None, None, None, None, None)
    median = float(np.median(x))
    p95 = float(np.percentile(x, 95))
    lo = hi = None
    if n >= 2:
        rng = np.random.default_rng(seed)
        boots = _boot_medians(x, rng, n_boot)
        alpha = (1 - CONFIDENCE) / 2
        lo, hi = (float(v) for v in np.quantile(boots, [alpha, 1 - alpha]))
    stddev = float(np.std(x, ddof=1)) if n >= 2 else None
    return Summary(n, dropped, median, p95, lo, hi, float(np.mean(x)), stddev, float(x.min()), float(x.max()))


@dataclass(frozen=True)
class Ratio:
    """A ratio of two medians with a bootstrap confidence interval."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_num: int
    n_den: int


def ratio_of_medians(num, den, *, n_boot: int = N_BOOT, seed: int = SEED) -> Ratio:
    """median(num) / median(den), with a CI from resampling both sides independently."""
    a, b = finite(num), finite(den)
    if len(a) == 0 or len(b) == 0:
        return Ratio(None, None, None, len(a), len(b))
    mb = float(np.median(b))
    if mb == 0:
        return Ratio(None, None, None, len(a), len(b))
    value = float(np.median(a)) / mb
    if len(a) < 2 or len(b) < 2:
        return Ratio(value, None, None, len(a), len(b))
    rng = np.random.default_rng(seed)
    ba, bb = _boot_medians(a, rng, n_boot), _boot_medians(b, rng, n_boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ba / bb
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return Ratio(value, None, None, len(a), len(b))
    alpha = (1 - CONFIDENCE) / 2
    lo, hi = (float(v) for v in np.quantile(r, [alpha, 1 - alpha]))
    return Ratio(value, lo, hi, len(a), len(b))


def geomean(values) -> float | None:
    """Geometric mean of positive finite values, None if there are none."""
    x = finite(values)
    x = x[x > 0]
    if len(x) == 0:
        return None
    return float(math.exp(np.mean(np.log(x))))
