"""Performance workloads: the probe's fixed-work subcommands, run inside one long-lived instance.

Each is defined once as data (probe arguments, the key to read, the unit, which way is
better) and runs unchanged on every backend. Timing is taken inside the instance by the
probe (CLOCK_MONOTONIC), so exec overhead (runc exec, guest agent) is not counted. The
report divides each backend's median by native's (performance as a ratio to native).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.backends.base import Backend, Instance, LaunchSpec
from bench.errors import WorkloadError
from bench.probe import IN_IMAGE, number, parse_output
from bench.sample import Sample
from bench.workloads.base import Context, Workload


@dataclass(frozen=True)
class Metric:
    """One number a probe subcommand prints: the key, the metric name, unit and direction."""

    key: str
    metric: str
    unit: str
    better: str


@dataclass
class PerfSpec:
    """How one performance workload calls the probe."""

    name: str
    description: str
    args: list[str]  # after the probe path; "{scratch}" is replaced by the instance's scratch dir
    metrics: list[Metric]
    defaults: dict[str, Any] = field(default_factory=dict)


SPECS = {
    "cpu": PerfSpec("cpu", "sysbench-style prime search, fixed number of events",
                    ["cpu", "{events}"], [Metric("events_per_s", "perf.cpu", "events/s", "higher")], {"events": 400}),
    "memory": PerfSpec("memory", "memcpy bandwidth between two buffers",
                       ["mem", "{mb}", "{passes}"], [Metric("mb_per_s", "perf.memory", "MB/s", "higher")],
                       {"mb": 64, "passes": 4}),
    "fileio": PerfSpec("fileio", "sequential write + fsync on the instance's own disk, then read back (cached)",
                       ["fileio", "{scratch}", "{mb}"],
                       [Metric("write_mb_per_s", "perf.fileio", "MB/s", "higher"),
                        Metric("read_mb_per_s", "perf.fileio.read_cached", "MB/s", "higher")], {"mb": 32}),
    "syscall": PerfSpec("syscall", "raw getppid() system calls",
                        ["syscall", "{calls}"], [Metric("ns_per_op", "perf.syscall", "ns/op", "lower")],
                        {"calls": 200000}),
    "forkexec": PerfSpec("forkexec", "fork + execve of the static probe + wait",
                         ["fork", "{forks}"], [Metric("us_per_op", "perf.forkexec", "us/op", "lower")], {"forks": 100}),
    "network": PerfSpec("network", "TCP over the instance's own loopback: bulk throughput, then 1-byte round trips",
                        ["net", "{mb}", "{rounds}"],
                        [Metric("gbit_per_s", "perf.network", "Gbit/s", "higher"),
                         Metric("rtt_us", "perf.network.rtt", "us", "lower")], {"mb": 128, "rounds": 1000}),
    "http": PerfSpec("http", "a small HTTP/1.0 server answering sequential requests over loopback",
                     ["http", "0", "{requests}"], [Metric("req_per_s", "perf.http", "req/s", "higher")],
                     {"requests": 500}),
}


class Perf(Workload):
    """A performance workload: one instance per backend, the probe subcommand once per repetition."""

    mode = "repeated"

    def __init__(self, spec: PerfSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.description = spec.description

    def argv(self, inst: Instance, ctx: Context) -> list[str]:
        """The probe argv inside the instance, with the suite's sizes filled in."""
        values = {k: ctx.param(self.name, k, v) for k, v in self.spec.defaults.items()}
        values["scratch"] = inst.scratch
        return [inst.probe, *(a.format(**values) for a in self.spec.args)]

    def failure_metrics(self) -> list[tuple[str, str]]:
        """Every metric this workload reports."""
        return [(m.metric, m.unit) for m in self.spec.metrics]

    pooled = True

    def setup(self, backend: Backend, ctx: Context) -> Instance:
        """One idle instance per backend that every repetition execs into, shared with the next perf workloads."""
        inst = ctx.pool.get(backend.name)
        if inst is None or inst.destroyed:
            inst = backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"],
                                             ready_timeout=float(ctx.param("boot", "ready_timeout", 180.0))))
            ctx.pool[backend.name] = inst
        return inst

    def measure(self, backend: Backend, state: Any, ctx: Context, repetition: int) -> list[Sample]:
        """Exec the probe subcommand once and turn its output into samples."""
        inst: Instance = state
        argv = self.argv(inst, ctx)
        res = inst.exec(argv, timeout=float(ctx.param(self.name, "timeout", 600.0)))
        if res.exit_code != 0:
            raise WorkloadError(f"{self.name} on {backend.name}: `{' '.join(argv)}` exited {res.exit_code}: "
                                f"{res.stderr.strip()[-300:]}")
        facts = parse_output(res.stdout)
        params = {k: v for k, v in facts.items() if k not in {m.key for m in self.spec.metrics} and isinstance(v, str)}
        samples = []
        for m in self.spec.metrics:
            samples.append(ctx.sample(backend, self.name, m.metric, number(facts, m.key), m.unit, repetition,
                                      better=m.better, timed_by="probe, inside the instance", probe=params,
                                      exec_wall_s=round(res.seconds, 6)))
        return samples

    def teardown(self, backend: Backend, state: Any) -> None:
        """Keep the pooled instance for the next performance workload (the runner drains the pool)."""


def all_perf() -> dict[str, Perf]:
    """One Perf workload per spec."""
    return {name: Perf(spec) for name, spec in SPECS.items()}
