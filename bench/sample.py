"""The Sample record: one measurement, one row of samples.csv, never a value without a unit."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.errors import ConfigError

FIELDS = ("run_id", "backend", "workload", "metric", "value", "unit", "repetition", "metadata", "timestamp")


def utc_now_iso() -> str:
    """The current time as ISO 8601 UTC with microseconds, the timestamp format of samples.csv."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Sample:
    """One measurement of one metric of one workload on one backend.

    `repetition` counts measured repetitions from 0; warm-ups are never recorded.
    `metadata` is copied on construction so later changes to the caller's dict do not leak in.
    """

    run_id: str
    backend: str
    workload: str
    metric: str
    value: float
    unit: str
    repetition: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: str = field(default_factory=utc_now_iso)

    def __post_init__(self) -> None:
        if not self.unit:
            raise ConfigError(f"sample {self.metric} of {self.backend}/{self.workload} has no unit")
        if not self.metric:
            raise ConfigError(f"sample of {self.backend}/{self.workload} has no metric name")
        try:
            value = float(self.value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"sample {self.metric} has a value that is not a number: {self.value!r}") from exc
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "repetition", int(self.repetition))
        object.__setattr__(self, "metadata", json.loads(json.dumps(self.metadata or {}, default=str)))

    @property
    def finite(self) -> bool:
        """Whether the value is a real number (not NaN or infinite)."""
        return math.isfinite(self.value)

    def to_row(self) -> dict[str, str]:
        """The CSV row: numbers in repr form (round-trip exact), metadata as compact sorted JSON."""
        return {
            "run_id": self.run_id,
            "backend": self.backend,
            "workload": self.workload,
            "metric": self.metric,
            "value": repr(self.value) if self.finite else str(self.value).lower(),
            "unit": self.unit,
            "repetition": str(self.repetition),
            "metadata": json.dumps(self.metadata, sort_keys=True, separators=(",", ":")),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Sample:
        """Parse one samples.csv row back into a Sample."""
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise ConfigError(f"samples.csv row lacks columns: {', '.join(missing)}")
        return cls(
            run_id=row["run_id"],
            backend=row["backend"],
            workload=row["workload"],
            metric=row["metric"],
            value=float(row["value"]),
            unit=row["unit"],
            repetition=int(row["repetition"]),
            metadata=json.loads(row["metadata"] or "{}"),
            timestamp=row["timestamp"],
        )
