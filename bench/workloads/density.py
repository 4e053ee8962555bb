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


def threads_in_use() -> int:
    """Threads on the host (each takes a PID, so pid_max counts these), from /proc/loadavg."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[1])
    except (OSError, ValueError, IndexError):
        return count_processes()


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
        threads_max = int(limits.get("threads_max") or 0)
        # Each runc/podman instance keeps a pipe in this process: use the whole hard limit, as
        # docker does, so the soft default is not what stops the count.
        nofile0 = resource.getrlimit(resource.RLIMIT_NOFILE)
        if nofile0[0] < nofile0[1]:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile0[1], nofile0[1]))
        nofile_soft, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limits = {**limits, "nofile_soft": int(nofile_soft)}
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
                threads = threads_in_use()
                if pid_max and threads > 0.9 * pid_max:
                    stopped_by = f"pids: pid_max ({pid_max}), {threads} threads in use (over 90%)"
                    break
                if threads_max and threads > 0.9 * threads_max:
                    stopped_by = f"pids: threads-max ({threads_max}), {threads} threads in use (over 90%)"
                    break
                if open_fds() > 0.9 * nofile_soft:
                    hard = "unlimited" if nofile_hard == resource.RLIM_INFINITY else nofile_hard
                    stopped_by = f"nofile: the harness holds {open_fds()} files, limit {nofile_soft} (hard {hard})"
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
            at_stop = {"instances": n, "threads": threads_in_use(), "processes": count_processes(),
                       "open_fds": open_fds(), "mem_available_bytes": mem_available(),
                       "seconds": round(time.time() - t0, 3)}
            time.sleep(float(ctx.param("density", "settle_s", 1.0)))
            delta = avail0 - mem_available()
            pids = sorted({p for inst in instances for p in inst.host_pids()})
            pss = pss_bytes(pids)
            elapsed = (last_ready - first_request) if n and first_request and last_ready else 0.0
            samples = [
                ctx.sample(backend, self.name, "density.count", n, "instances", stopped_by=stopped_by,
                           capped_by_suite=capped_by_suite, cap=cap, detail=detail, limits=limits,
                           memory_budget_bytes=budget, at_stop=at_stop),
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
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile0)

    def describe(self) -> dict[str, Any]:
        """For docs and `bench ls`."""
        return {"name": self.name, "description": self.description}
