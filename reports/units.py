"""Format numbers with their units the same way everywhere (tables, figures, terminal).

Bytes use decimal prefixes (kB, MB, GB) because the textbook's claim is written in MB and GB.
Times pick ns, µs, ms, s or min so that three significant digits stay readable.
"""

from __future__ import annotations

import math


def _sig(value: float, digits: int) -> str:
    """`value` with `digits` significant digits, without scientific notation for usual sizes."""
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - exponent)
    text = f"{value:.{decimals}f}"
    return text


def fmt_seconds(value: float | None, digits: int = 3) -> str:
    """A duration in seconds as text with a fitting unit."""
    if value is None or not math.isfinite(value):
        return "–"
    a = abs(value)
    if a == 0:
        return "0 s"
    if a < 1e-6:
        return f"{_sig(value * 1e9, digits)} ns"
    if a < 1e-3:
        return f"{_sig(value * 1e6, digits)} µs"
    if a < 1:
        return f"{_sig(value * 1e3, digits)} ms"
    if a < 120:
        return f"{_sig(value, digits)} s"
    return f"{_sig(value / 60, digits)} min"


def fmt_bytes(value: float | None, digits: int = 3) -> str:
    """A byte count as text with a decimal prefix (B, kB, MB, GB, TB)."""
    if value is None or not math.isfinite(value):
        return "–"
    a = abs(value)
    for factor, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if a >= factor:
            return f"{_sig(value / factor, digits)} {unit}"
    return f"{_sig(value, digits)} B" if a else "0 B"


def fmt_number(value: float | None, digits: int = 3) -> str:
    """A plain number with thousands separators when it is large."""
    if value is None or not math.isfinite(value):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return str(int(value))
    return _sig(value, digits)


def fmt_value(value: float | None, unit: str, digits: int = 3) -> str:
    """`value` in base unit `unit` (s, bytes, or anything else) as text with its unit."""
    if unit == "s":
        return fmt_seconds(value, digits)
    if unit == "bytes":
        return fmt_bytes(value, digits)
    if value is None or not math.isfinite(value):
        return "–"
    return f"{fmt_number(value, digits)} {unit}".rstrip()


def fmt_ratio(value: float | None) -> str:
    """A ratio to native, such as 0.97×."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{_sig(value, 3)}×"


def fmt_percent(value: float | None) -> str:
    """A fraction as a whole percentage."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:.0f}%"
