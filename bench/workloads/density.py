"""density: keep launching idle instances until a memory budget, a host limit or the suite's cap.

Reports how many ran at once and which limit stopped the run (ANCHORS.md 9.7: it is
often not memory), memory per instance two ways (host MemAvailable delta / N, and the
PSS of the per-instance host processes, ANCHORS.md 9.6), the start rate, and the memory
curve step by step. A cap set by the suite is reported as such, never as a host limit.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from bench.backends.base import Backend, Instance, LaunchSpec, pss_bytes
from bench.environment import mem_available
from bench.errors import BenchError
from bench.probe import IN_IMAGE
from bench.sample import Sample
from bench.workloads.base import Context, Workload

GIB = 1 << 30


def count_processes() -> int:
    """Processes on the host right now."""
    return sum(1 for e in os.listdir("/proc") if e.isdigit())


def open_fds() -> int:
    """File descriptors this harness holds (each runc/podman instance keeps a pipe)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def classify_failure(message: str) -> str:
    """Name the limit behind a failed launch, from its error text."""
    text = message.lower()
    rules = [
        ("exchange full", "bridge ports (1024 per Linux bridge)"),
        ("too many open files", "nofile (open files)"),
        ("resource temporarily unavailable", "pids (fork failed: pid_max or a pids limit)"),
        ("cannot fork", "pids (fork failed: pid_max or a pids limit)"),
        ("no space left on device", "disk space or inotify/keyring quota"),
        ("cannot allocate memory", "memory"),
        ("out of memory", "memory"),
        ("no free pty", "ptys"),
        ("timed out", "launch timeout (host saturated)"),
        ("printed no", "launch timeout (host saturated)"),
    ]
    for needle, limit in rules:
        if needle in text:
            return limit
    return "launch failure"


class Density(Workload):
    """Launch until something stops us, measure, then destroy everything."""

    name = "density"
    mode = "once"
    kinds = ("container", "vm", "native")
    description = "instances running at once, memory per instance, start rate, and what stopped it"

    def cap_for(self, backend: Backend, ctx: Context) -> int | None:
        """The suite's cap on instances for this kind of backend (None = run to a real limit)."""
        key = "cap_vm" if backend.kind == "vm" else "cap"
        cap = ctx.param("density", key, None)
        return int(cap) if cap is not None else None

    def failure_metrics(self) -> list[tuple[str, str]]:
        """The count."""
        return [("density.count", "instances")]

    def steps(self, ctx: Context) -> int:
        """Progress steps: the container cap (an estimate when uncapped)."""
        return int(ctx.param("density", "cap", 100) or 100)

    def run_once(self, backend: Backend, ctx: Context) -> list[Sample]:
        """Launch idle instances one after another until a stop condition holds."""
        cap = self.cap_for(backend, ctx)
        budget_fraction = float(ctx.param("density", "memory_budget_fraction", 0.5))
        floor = int(ctx.param("density", "min_available_bytes", 2 * GIB))
        time_budget = float(ctx.param("density", "max_seconds", 600.0))
        timeout = float(ctx.param("boot", "ready_timeout", 180.0))
        limits = backend.limits()
        pid_max = int(limits.get("pid_max") or 0)
        nofile_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        instances: list[Instance] = []
        curve: list[Sample] = []
        avail0 = mem_available()
        budget = int(avail0 * budget_fraction)
        stopped_by, capped_by_suite, detail = "", False, ""
        t0 = time.time()
        first_request = last_ready = None
        try:
            while True:
                n = len(instances)
                used = avail0 - mem_available()
                per = used / n if n else 0
                if cap is not None and n >= cap:
                    stopped_by, capped_by_suite = f"suite cap ({cap})", True
                    break
                if time.time() - t0 > time_budget:
                    stopped_by, capped_by_suite = f"suite time budget ({time_budget:.0f}s)", True
                    break
                if used + per > budget:
                    stopped_by = f"memory budget ({budget_fraction:.0%} of MemAvailable at start)"
                    break
                if mem_available() - per < floor:
                    stopped_by = f"memory floor (MemAvailable below {floor >> 20} MiB)"
                    break
                if pid_max and count_processes() > 0.9 * pid_max:
                    stopped_by = f"pid_max ({pid_max}): 90% of the host's PIDs in use"
                    break
                if open_fds() > 0.9 * nofile_soft:
                    stopped_by = f"nofile of the harness ({nofile_soft})"
                    break
                try:
                    inst = backend.launch(LaunchSpec(argv=[IN_IMAGE, "ready"], ready_timeout=timeout))
                except BenchError as exc:
                    stopped_by, detail = classify_failure(str(exc)), str(exc)[-300:]
                    break
                instances.append(inst)
                first_request = first_request or inst.requested
                last_ready = inst.ready
                ctx.advance(1)
                curve.append(ctx.sample(backend, self.name, "density.mem_used", avail0 - mem_available(), "bytes",
                                        n=len(instances), method="MemAvailable delta"))
            n = len(instances)
            time.sleep(float(ctx.param("density", "settle_s", 1.0)))
            delta = avail0 - mem_available()
            pids = sorted({p for inst in instances for p in inst.host_pids()})
            pss = pss_bytes(pids)
            elapsed = (last_ready - first_request) if n and first_request and last_ready else 0.0
            samples = [
                ctx.sample(backend, self.name, "density.count", n, "instances", stopped_by=stopped_by,
                           capped_by_suite=capped_by_suite, cap=cap, detail=detail, limits=limits,
                           memory_budget_bytes=budget),
                *curve,
            ]
            if n:
                samples += [
                    ctx.sample(backend, self.name, "density.mem_per_instance", delta / n, "bytes", n=n,
                               method="host MemAvailable delta / N (shared host: other activity adds noise)"),
                    ctx.sample(backend, self.name, "density.pss_per_instance", pss / n, "bytes", n=n,
                               method="sum of smaps_rollup Pss of per-instance host processes / N",
                               processes=len(pids)),
                    ctx.sample(backend, self.name, "density.start_rate", n / elapsed if elapsed > 0 else 0.0,
                               "instances/s", n=n, method="N / (last ready - first request), sequential launches"),
                ]
            return samples
        finally:
            for inst in instances:
                try:
                    inst.destroy()
                except Exception as exc:  # noqa: BLE001 - destroy the rest, report
                    ctx.log(f"density: cannot destroy {inst!r}: {exc}")

    def describe(self) -> dict[str, Any]:
        """For docs and `bench ls`."""
        return {"name": self.name, "description": self.description}
