"""Suites: which image, backends and workloads to run, how often, and the sizes of each workload.

quick  the busybox image, the micro VM, every row of the table, small N; under 10 minutes
       on a 2-core TCG host (budgets per row below).
table  the debian image, both VM profiles, density run to a real limit.
full   everything: every backend and workload, more repetitions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bench.backends import NAMES as BACKENDS
from bench.errors import ConfigError
from bench.workloads import NAMES as WORKLOADS


@dataclass
class Suite:
    """A named plan: image, backends, workloads, repetitions and per-workload parameters."""

    name: str
    image: str
    backends: tuple[str, ...]
    workloads: tuple[str, ...]
    repeat: int
    warmups: int
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: str = "alternate"
    description: str = ""

    def repeat_for(self, workload: str, backend_kind: str | None = None) -> int:
        """Repetitions of a workload (a suite may use fewer for slow VM boots)."""
        p = self.params.get(workload, {})
        return int(p.get("repeat", self.repeat))


QUICK = Suite(
    name="quick",
    image="busybox",
    backends=("native", "container", "vm-micro", "podman", "runc", "qemu-direct"),
    workloads=WORKLOADS,
    repeat=3,
    warmups=1,
    description="busybox image, micro VM, every row of the table, small N (under 10 minutes here)",
    params={
        "vm": {"memory_mib": 128},
        "boot": {"repeat": 5, "ready_timeout": 120.0},
        "cpu": {"events": 200},
        "memory": {"mb": 16, "passes": 8},
        "fileio": {"mb": 16},
        "syscall": {"calls": 100000},
        "forkexec": {"forks": 50},
        "network": {"mb": 64, "rounds": 300},
        "http": {"requests": 200},
        "density": {"cap": 20, "cap_vm": 3, "max_seconds": 60.0},
        # Each row stops repeating once it used its share of the 10 minutes (recorded as a warning).
        "budget_s": {"boot": 100, "cpu": 35, "memory": 35, "fileio": 35, "syscall": 35, "forkexec": 35,
                     "network": 35, "http": 35, "disk": 30, "density": 120, "isolation": 50},
    },
)

TABLE = Suite(
    name="table",
    image="debian",
    backends=("native", "container", "vm-micro", "vm-full", "podman", "runc", "qemu-direct"),
    workloads=WORKLOADS,
    repeat=10,
    warmups=2,
    description="the full textbook table: debian image, both VM profiles, density to the limit",
    params={
        "vm": {"memory_mib": 512},
        "boot": {"repeat": 20, "ready_timeout": 300.0},
        "cpu": {"events": 1000},
        "memory": {"mb": 128, "passes": 8},
        "fileio": {"mb": 256},
        "syscall": {"calls": 1000000},
        "forkexec": {"forks": 300},
        "network": {"mb": 512, "rounds": 5000},
        "http": {"requests": 2000},
        "density": {"cap": None, "cap_vm": None, "max_seconds": 3600.0, "memory_budget_fraction": 0.5},
    },
)

FULL = copy.deepcopy(TABLE)
FULL.name = "full"
FULL.repeat = 20
FULL.warmups = 3
FULL.description = "everything: every backend and workload, 20 repetitions, density to the limit"
FULL.params["boot"]["repeat"] = 50

SUITES = {s.name: s for s in (QUICK, TABLE, FULL)}


def get(name: str) -> Suite:
    """A copy of the named suite (callers may adjust it)."""
    if name not in SUITES:
        raise ConfigError(f"unknown suite {name!r}: choose from {', '.join(SUITES)}")
    return copy.deepcopy(SUITES[name])


def check(suite: Suite) -> None:
    """Validate names and counts (used after CLI overrides)."""
    for b in suite.backends:
        if b not in BACKENDS:
            raise ConfigError(f"suite {suite.name}: unknown backend {b!r}")
    for w in suite.workloads:
        if w not in WORKLOADS:
            raise ConfigError(f"suite {suite.name}: unknown workload {w!r}")
    if suite.repeat < 1:
        raise ConfigError(f"--repeat must be at least 1, not {suite.repeat}")
    if suite.warmups < 0:
        raise ConfigError(f"warm-ups must not be negative, not {suite.warmups}")
