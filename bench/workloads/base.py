"""The Workload shape: defined once, run unchanged on every backend.

A workload is either `repeated` (setup once per backend, then measured in interleaved
rounds across backends, warm-ups first) or `once` (one measurement per backend, such as
disk, density and isolation). It returns Samples; the runner writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.backends.base import Backend
from bench.sample import Sample


@dataclass
class Context:
    """What a workload gets from the runner: the run id, the suite's sizes, and callbacks."""

    run_id: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    raw_dir: Any = None
    log: Callable[[str], None] = print
    advance: Callable[[float], None] = lambda n: None
    # Long-lived instances shared by consecutive performance workloads, by backend name;
    # the runner destroys them before any other workload runs (density must start from zero).
    pool: dict[str, Any] = field(default_factory=dict)

    def drain_pool(self) -> list[str]:
        """Destroy the pooled instances; returns the errors met."""
        errors = []
        for name, inst in list(self.pool.items()):
            try:
                inst.destroy()
            except Exception as exc:  # noqa: BLE001 - destroy the others too
                errors.append(f"{name}: {exc}")
        self.pool.clear()
        return errors

    def param(self, workload: str, key: str, default: Any) -> Any:
        """A suite parameter for a workload (`params[workload][key]`), else the default."""
        return (self.params.get(workload) or {}).get(key, default)

    def sample(self, backend: Backend, workload: str, metric: str, value: float, unit: str, repetition: int = 0,
               **metadata: Any) -> Sample:
        """A Sample labelled with the backend's kind and, for VMs, the accelerator."""
        meta = {"kind": backend.kind, **metadata}
        if backend.kind == "vm":
            meta.setdefault("accel", backend.accel or "unknown")
        return Sample(run_id=self.run_id, backend=backend.name, workload=workload, metric=metric, value=value,
                      unit=unit, repetition=repetition, metadata=meta)


class Workload:
    """Base class: name, mode, which backends it applies to, and the measuring hooks."""

    name = "workload"
    mode = "repeated"  # or "once"
    kinds: tuple[str, ...] = ("native", "container", "vm")
    description = ""

    def applies(self, backend: Backend) -> tuple[bool, str]:
        """Whether this workload makes sense on the backend, and why not."""
        if backend.kind not in self.kinds:
            return (False, f"{self.name} does not apply to {backend.kind} backends")
        return (True, "")

    def setup(self, backend: Backend, ctx: Context) -> Any:
        """Once per backend before the rounds (e.g. launch a long-lived instance)."""
        return None

    def measure(self, backend: Backend, state: Any, ctx: Context, repetition: int) -> list[Sample]:
        """One repetition; `repetition` is negative for warm-ups (their samples are dropped)."""
        raise NotImplementedError

    def teardown(self, backend: Backend, state: Any) -> None:
        """After the rounds; must release everything setup made, even after errors."""

    def run_once(self, backend: Backend, ctx: Context) -> list[Sample]:
        """The whole measurement of a `once` workload on one backend."""
        raise NotImplementedError

    def failure_metrics(self) -> list[tuple[str, str]]:
        """(metric, unit) pairs to record as NaN with an `error` when the workload fails on a backend."""
        return []

    def steps(self, ctx: Context) -> int:
        """Progress steps of a `once` workload per backend (for the ETA)."""
        return 1
