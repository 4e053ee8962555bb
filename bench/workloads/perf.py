"""Performance workloads: the probe's fixed-work subcommands, run inside one long-lived instance.

Each is defined once as data (probe arguments, the key to read, the unit, which way is
better) and runs unchanged on every backend. Timing is taken inside the instance by the
probe (CLOCK_MONOTONIC), so exec overhead (runc exec, guest agent) is not counted. The
report divides each backend's median by native's (performance as a ratio to native).
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from bench.backends.base import Backend, Instance, LaunchSpec, kill_process_group
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
    "network": PerfSpec("network", "TCP between the host and the instance over the backend's bridge, veth or tap "
                        "(native: host loopback): MB up, MB down, then 1-byte round trips",
                        ["netclient", "{host_addr}", "{port}", "{mb}", "{rounds}"],
                        [Metric("gbit_per_s", "perf.network", "Gbit/s", "higher"),
                         Metric("rx_gbit_per_s", "perf.network.rx", "Gbit/s", "higher"),
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

    def argv(self, inst: Instance, ctx: Context, **extra: Any) -> list[str]:
        """The probe argv inside the instance, with the suite's sizes filled in."""
        values = {k: ctx.param(self.name, k, v) for k, v in self.spec.defaults.items()}
        values["scratch"] = inst.scratch
        values.update(extra)
        return [inst.probe, *(a.format(**values) for a in self.spec.args)]

    def failure_metrics(self) -> list[tuple[str, str]]:
        """Every metric this workload reports."""
        return [(m.metric, m.unit) for m in self.spec.metrics]

    pooled = True
    # Instances of the pool are idle probes with their loopback only; the network workload keeps its own.
    needs_network = False

    def pool_key(self, backend: Backend) -> str:
        """The key of this workload's instance in the shared pool."""
        return f"{backend.name}/net" if self.needs_network else backend.name

    def setup(self, backend: Backend, ctx: Context) -> Instance:
        """One idle instance per backend that every repetition execs into, shared with the next perf workloads."""
        key = self.pool_key(backend)
        inst = ctx.pool.get(key)
        if inst is None or inst.destroyed:
            inst = backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"], network=self.needs_network,
                                             ready_timeout=float(ctx.param("boot", "ready_timeout", 180.0))))
            ctx.pool[key] = inst
        return inst

    def measure(self, backend: Backend, state: Any, ctx: Context, repetition: int) -> list[Sample]:
        """Exec the probe subcommand once and turn its output into samples."""
        inst: Instance = state
        argv = self.argv(inst, ctx)
        res = self.run_probe(backend, inst, argv, ctx)
        return self.samples(backend, ctx, repetition, res.stdout, res.seconds)

    def run_probe(self, backend: Backend, inst: Instance, argv: list[str], ctx: Context) -> Any:
        """Exec argv in the instance; WorkloadError with its stderr when it fails."""
        res = inst.exec(argv, timeout=float(ctx.param(self.name, "timeout", 600.0)))
        if res.exit_code != 0:
            raise WorkloadError(f"{self.name} on {backend.name}: `{' '.join(argv)}` exited {res.exit_code}: "
                                f"{res.stderr.strip()[-300:]}")
        return res

    def samples(self, backend: Backend, ctx: Context, repetition: int, stdout: str, seconds: float,
                **metadata: Any) -> list[Sample]:
        """One Sample per metric of the probe's output."""
        facts = parse_output(stdout)
        params = {k: v for k, v in facts.items() if k not in {m.key for m in self.spec.metrics} and isinstance(v, str)}
        samples = []
        for m in self.spec.metrics:
            samples.append(ctx.sample(backend, self.name, m.metric, number(facts, m.key), m.unit, repetition,
                                      better=m.better, timed_by="probe, inside the instance", probe=params,
                                      exec_wall_s=round(seconds, 6), **metadata))
        return samples

    def teardown(self, backend: Backend, state: Any) -> None:
        """Keep the pooled instance for the next performance workload (the runner drains the pool)."""


class HostNetwork(Perf):
    """network: the probe's server on the host, its client in the instance, over the instance's host link.

    The instance is launched with `network=True` (its own pooled instance): the backend puts
    it on its bridge (container, VMs), on a veth or tap the harness makes (runc, podman,
    qemu-direct), or uses the host's loopback (native). The server binds the host's address
    on that link only, so nothing else can reach it and nothing leaves the machine.
    """

    needs_network = True

    def measure(self, backend: Backend, state: Any, ctx: Context, repetition: int) -> list[Sample]:
        """Start `netserve` on the host end, run `netclient` in the instance, check both ends succeeded."""
        inst: Instance = state
        link = inst.link
        if link is None:
            raise WorkloadError(f"network on {backend.name}: the instance has no link to the host")
        server = subprocess.Popen([str(host_probe(backend)), "netserve", link.host_addr, "0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            port = _read_port(server, f"the host's probe server on {link.host_addr}")
            argv = self.argv(inst, ctx, host_addr=link.host_addr, port=port)
            res = self.run_probe(backend, inst, argv, ctx)
            try:
                _, err = server.communicate(timeout=30)
            except subprocess.TimeoutExpired as exc:
                raise WorkloadError(f"network on {backend.name}: the host's server did not finish") from exc
            if server.returncode != 0:
                raise WorkloadError(f"network on {backend.name}: the host's server exited {server.returncode}: "
                                    f"{err.decode(errors='replace').strip()[-300:]}")
        finally:
            kill_process_group(server)
            for stream in (server.stdout, server.stderr):
                if stream:
                    stream.close()
        return self.samples(backend, ctx, repetition, res.stdout, res.seconds, path=link.path,
                            host_addr=link.host_addr, instance_addr=link.instance_addr,
                            directions={"perf.network": "instance -> host", "perf.network.rx": "host -> instance"})


def host_probe(backend: Backend) -> Any:
    """The probe binary on the host (the same source as the one in the image)."""
    from bench import probe

    return probe.build(backend.root / "cache" / "bench")


def _read_port(server: subprocess.Popen, what: str, timeout: float = 15.0) -> int:
    """The port the server printed, once it also printed the ready marker."""
    assert server.stdout is not None
    fd = server.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"VIRTLAB_READY" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise WorkloadError(f"{what} did not start within {timeout:.0f}s")
        chunk = os.read(fd, 4096)
        if not chunk:
            err = server.stderr.read().decode(errors="replace").strip() if server.stderr else ""
            raise WorkloadError(f"{what} exited before listening: {err[-300:]}")
        buf += chunk
    for line in buf.decode(errors="replace").splitlines():
        if line.startswith("port="):
            return int(line[5:])
    raise WorkloadError(f"{what} printed no port")


def create(name: str) -> Perf:
    """The workload object of a performance spec."""
    return HostNetwork(SPECS[name]) if name == "network" else Perf(SPECS[name])


def all_perf() -> dict[str, Perf]:
    """One Perf workload per spec."""
    return {name: create(name) for name in SPECS}
