"""Statistics of repeated measurements: median, p95, bootstrap CI, outliers, CV warnings.

Pure Python, no numpy: the harness must not pull heavy imports, and the sample counts
are small. The outlier rule is hyperfine's (Iglewicz and Hoaglin's modified Z-score,
`(x - median) / MAD`, flagged above 1.4826 * 10, with MAD = 0 guarded). The confidence
interval of the median is a percentile bootstrap with a recorded seed, so a report can
reproduce it exactly.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.errors import ConfigError

OUTLIER_THRESHOLD = 1.4826 * 10.0  # hyperfine, src/outlier_detection.rs
CV_WARN = 0.10  # a coefficient of variation above 10% gets a warning
DEFAULT_BOOTSTRAP = 2000
DEFAULT_SEED = 20261128


def _finite(values: list[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def median(values: list[float]) -> float:
    """The median of finite values (NaN when there are none)."""
    xs = sorted(_finite(values))
    n = len(xs)
    if n == 0:
        return math.nan
    mid = n // 2
    return xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks (numpy's default)."""
    if not 0.0 <= q <= 100.0:
        raise ConfigError(f"percentile {q} is outside 0..100")
    xs = sorted(_finite(values))
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def mean(values: list[float]) -> float:
    """The arithmetic mean of finite values (NaN when there are none)."""
    xs = _finite(values)
    return sum(xs) / len(xs) if xs else math.nan


def stdev(values: list[float]) -> float | None:
    """The sample standard deviation (ddof=1); None for fewer than two values, as hyperfine does."""
    xs = _finite(values)
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def mad(values: list[float]) -> float:
    """The median absolute deviation from the median (unscaled)."""
    xs = _finite(values)
    m = median(xs)
    return median([abs(x - m) for x in xs])


def modified_zscores(values: list[float]) -> list[float]:
    """hyperfine's modified Z-scores `(x - median) / MAD`, with MAD = 0 replaced by machine epsilon."""
    xs = _finite(values)
    if not xs:
        return []
    m = median(xs)
    d = mad(xs)
    d = d if d > 0 else sys.float_info.epsilon
    return [(x - m) / d for x in xs]


def outlier_flags(values: list[float], threshold: float = OUTLIER_THRESHOLD) -> list[bool]:
    """For each value, whether its modified Z-score exceeds the threshold (in either direction).

    Non-finite values are always flagged. With MAD = 0 (most values identical), any
    value that differs at all from the median is flagged, which is what hyperfine does.
    """
    finite = _finite(values)
    if not finite:
        return [True for _ in values]
    m = median(finite)
    d = mad(finite)
    d = d if d > 0 else sys.float_info.epsilon
    flags = []
    for v in values:
        if v is None or not math.isfinite(float(v)):
            flags.append(True)
        else:
            flags.append(abs((float(v) - m) / d) > threshold)
    return flags


def bootstrap_median_ci(
    values: list[float], confidence: float = 0.95, resamples: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_SEED
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (seeded, so reproducible).

    With one value the interval is that value; with none it is (NaN, NaN).
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence {confidence} must be between 0 and 1")
    if resamples < 1:
        raise ConfigError(f"bootstrap needs at least one resample, not {resamples}")
    xs = _finite(values)
    if not xs:
        return (math.nan, math.nan)
    if len(xs) == 1:
        return (xs[0], xs[0])
    rng = random.Random(seed)
    n = len(xs)
    meds = sorted(median([xs[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    alpha = (1.0 - confidence) / 2.0
    return (percentile(meds, 100.0 * alpha), percentile(meds, 100.0 * (1.0 - alpha)))


@dataclass
class Summary:
    """The summary of one metric's repetitions, in hyperfine's vocabulary plus CI and flags."""

    n: int
    n_invalid: int
    median: float
    mean: float
    stddev: float | None
    min: float
    max: float
    p95: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_seed: int
    ci_resamples: int
    cv: float | None
    outliers: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def summarize(
    values: list[float],
    *,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
    resamples: int = DEFAULT_BOOTSTRAP,
    cv_warn: float = CV_WARN,
) -> Summary:
    """Summarise repetitions: centre, spread, p95, bootstrap CI of the median, outliers and warnings.

    `outliers` holds the indices (into `values`) of flagged repetitions. Warnings name what
    a reader must know: too few runs, invalid values, outliers, a high CV.
    """
    xs = _finite(values)
    n_invalid = len(values) - len(xs)
    lo, hi = bootstrap_median_ci(xs, confidence, resamples, seed) if xs else (math.nan, math.nan)
    sd = stdev(xs)
    m = mean(xs)
    cv = (sd / abs(m)) if sd is not None and m and math.isfinite(m) else None
    flags = outlier_flags(values)
    outliers = [i for i, f in enumerate(flags) if f]
    warnings = []
    if not xs:
        warnings.append("no valid measurement")
    elif len(xs) < 3:
        warnings.append(f"only {len(xs)} measurement(s): no meaningful spread or confidence interval")
    if n_invalid:
        warnings.append(f"{n_invalid} invalid value(s) (NaN or infinite)")
    n_out = len([i for i in outliers if values[i] is not None and math.isfinite(float(values[i]))])
    if n_out:
        warnings.append(f"{n_out} statistical outlier(s) (modified Z-score > {OUTLIER_THRESHOLD:.2f}); rerun on a quieter host")
    if cv is not None and cv > cv_warn:
        warnings.append(f"high variation: CV {cv:.1%} > {cv_warn:.0%}")
    return Summary(
        n=len(xs),
        n_invalid=n_invalid,
        median=median(xs),
        mean=m,
        stddev=sd,
        min=min(xs) if xs else math.nan,
        max=max(xs) if xs else math.nan,
        p95=percentile(xs, 95.0),
        ci_low=lo,
        ci_high=hi,
        ci_level=confidence,
        ci_seed=seed,
        ci_resamples=resamples,
        cv=cv,
        outliers=outliers,
        warnings=warnings,
    )


def interleaved_order(names: list[str], rounds: int, mode: str = "alternate", seed: int = DEFAULT_SEED) -> list[list[str]]:
    """The backend order for each round: `alternate` (A,B then B,A ...), `fixed` (A,B every round) or `random` (seeded).

    Alternating reverses the order every other round so neither backend always runs
    first (first-position and warm-cache effects cancel out over pairs of rounds).
    """
    if rounds < 0:
        raise ConfigError(f"rounds must not be negative: {rounds}")
    if mode == "fixed":
        return [list(names) for _ in range(rounds)]
    if mode == "alternate":
        return [list(names) if r % 2 == 0 else list(reversed(names)) for r in range(rounds)]
    if mode == "random":
        rng = random.Random(seed)
        out = []
        for _ in range(rounds):
            order = list(names)
            rng.shuffle(order)
            out.append(order)
        return out
    raise ConfigError(f"unknown order {mode!r}: use alternate, fixed or random")
