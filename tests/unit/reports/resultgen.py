"""Write realistic results directories (samples.csv + environment.json) for the report tests.

The values follow what this project measures on a 2-core TCG host (ENVIRONMENT.md) with
log-normal noise. Options produce the awkward cases the report must survive: one
repetition, a row with zero successful samples, NaN/Inf values, an interrupted run,
hostile names, and a second host.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

COLUMNS = ["run_id", "backend", "workload", "metric", "value", "unit", "repetition", "metadata", "timestamp"]

STARTUP = {"native": 0.0016, "container": 0.12, "podman": 0.45, "vm-micro": 2.4, "vm-full": 28.0}
PHASES = {
    "container": {"engine": 0.02, "create": 0.05, "start": 0.012, "exec": 0.03},
    "podman": {"engine": 0.2, "create": 0.12, "start": 0.08, "exec": 0.04},
    "vm-micro": {"vmm": 0.3, "firmware": 0.05, "kernel": 1.6, "init": 0.4},
    "vm-full": {"vmm": 0.4, "firmware": 3.5, "kernel": 12.0, "init": 11.5},
}
DISK = {"container": (1.6e6, 4096), "podman": (4.5e6, 8192), "vm-micro": (6.5e7, 196_608),
        "vm-full": (1.4e9, 3.1e6)}
# workload -> (unit, better, native value, relative performance per backend)
PERF = {
    "cpu": ("ops/s", "higher", 1000.0, {"container": 0.99, "podman": 0.985, "vm-micro": 0.18, "vm-full": 0.18}),
    "memory": ("MB/s", "higher", 8000.0, {"container": 0.995, "podman": 0.99, "vm-micro": 0.31, "vm-full": 0.3}),
    "syscall": ("ns/op", "lower", 60.0, {"container": 0.8, "podman": 0.78, "vm-micro": 0.15, "vm-full": 0.15}),
    "forkexec": ("ops/s", "higher", 1200.0, {"container": 0.96, "podman": 0.95, "vm-micro": 0.12,
                                              "vm-full": 0.11}),
}
DENSITY = {  # backend -> (count, stopped_by, mem per instance)
    "container": (200, "suite cap (--density-max 200)", 1.2e6),
    "vm-micro": (24, "memory budget (5 GB)", 2.0e8),
}
CHECKS = ("kernel_separate", "host_pids_hidden", "host_mounts_hidden", "host_devices_hidden", "syscall_filter",
          "escape_probes_blocked", "own_network_stack")
KINDS = {"native": "native", "container": "container", "podman": "container", "vm-micro": "vm", "vm-full": "vm"}


def _noisy(rng: random.Random, median: float, cv: float = 0.08) -> float:
    return median * math.exp(rng.gauss(0.0, cv))


def environment(run_id: str, hostname: str, accel: str, backends: list[str], *, incomplete: bool = False,
                suite: str = "quick", images: dict | None = None, kinds: dict | None = None) -> dict:
    """An environment.json document as the harness writes it."""
    kinds = {**KINDS, **(kinds or {})}
    reason = ("/dev/kvm present but the probe guest hung (nested PVM); using TCG" if accel == "tcg"
              else "probe guest booted in 0.4 s")
    return {
        "schema": 1,
        "run_id": run_id,
        "tool_version": "0.1.0",
        "git_commit": "91a644a0c0ffee",
        "git_dirty": False,
        "started": "2026-11-28T06:00:00Z",
        "finished": None if incomplete else "2026-11-28T06:08:00Z",
        "incomplete": incomplete,
        "argv": ["virtlab", "bench", "run", "--suite", suite],
        "suite": suite,
        "host": {"hostname": hostname, "kernel": "6.1.0-27-amd64", "distro": "Debian GNU/Linux 12 (bookworm)",
                 "cpu_model": "Intel Xeon Processor (Icelake)", "cpu_count": 2, "memory_bytes": 25_769_803_776,
                 "cgroup_mode": "hybrid", "cgroup_controllers": ["cpu", "memory", "pids"],
                 "kvm_device": "present"},
        "accelerator": {"accel": accel, "kvm_usable": accel == "kvm", "reason": reason},
        "versions": {"qemu": "7.2.15", "libvirt": "9.0.0", "runc": "1.1.5", "crun": "1.8.1", "podman": "4.3.1",
                     "python": "3.11.7"},
        "images": images or {"virtlab-bench/busybox:latest": "sha256:" + "ab" * 32},
        "backends": {b: {"kind": kinds.get(b, "container"), "available": True, "reason": ""} for b in backends},
    }


def write_run(path: Path, *, run_id: str = "run-a", hostname: str = "lab1", accel: str = "tcg", reps: int = 8,
              seed: int = 1, backends: tuple[str, ...] = ("native", "container", "podman", "vm-micro", "vm-full"),
              incomplete: bool = False, zero_ok_row: str | None = None, nonfinite: bool = False,
              evil: bool = False, unavailable: dict | None = None, only_rows: tuple[str, ...] | None = None,
              scale: float = 1.0) -> Path:
    """Write one results directory at `path` and return it.

    zero_ok_row: a metric prefix ("startup", "perf", ...) whose samples all fail for vm-full.
    nonfinite: add NaN, Inf and empty values among the samples (they must be left out).
    evil: add a backend, workload, detail, hostname and image ref containing markup and pipes.
    unavailable: {backend: reason} listed in environment.json but never measured.
    only_rows: write only these rows (startup, disk, perf, density, isolation).
    scale: multiply startup times (to make a second host differ).
    """
    rng = random.Random(seed)
    rows: list[dict] = []
    kinds: dict = {}
    names = list(backends)
    evil_backend = "<script>alert('x')</script>|pwn"
    startup = dict(STARTUP)
    if evil:
        names.append(evil_backend)
        kinds[evil_backend] = "container"
        startup[evil_backend] = 0.2

    def add(backend, workload, metric, value, unit, rep, meta=None):
        rows.append({"run_id": run_id, "backend": backend, "workload": workload, "metric": metric,
                     "value": value if isinstance(value, str) else repr(float(value)), "unit": unit,
                     "repetition": rep, "metadata": json.dumps(meta or {}),
                     "timestamp": f"2026-11-28T06:{len(rows) // 60 % 60:02d}:{len(rows) % 60:02d}Z"})

    def want(row):
        return only_rows is None or row in only_rows

    def fails(backend, row):
        return zero_ok_row == row and backend == "vm-full"

    for b in names:
        if want("startup") and b in startup:
            for rep in range(reps):
                if fails(b, "startup"):
                    add(b, "boot", "startup.ready", "", "s", rep, {"error": "timeout after 180 s: no VIRTLAB_READY"})
                    continue
                add(b, "boot", "startup.ready", _noisy(rng, startup[b] * scale), "s", rep,
                    {"accel": accel} if KINDS.get(b) == "vm" else {})
                for ph, med in PHASES.get(b, {}).items():
                    add(b, "boot", f"startup.phase.{ph}", _noisy(rng, med * scale), "s", rep)
        if want("disk") and b in DISK:
            shared, inst = DISK[b]
            add(b, "disk", "disk.shared_bytes", shared, "bytes", 0)
            for rep in range(max(1, min(reps, 3))):
                add(b, "disk", "disk.instance_bytes", round(_noisy(rng, inst, 0.02)), "bytes", rep)
        if want("perf"):
            for workload, (unit, better, native, rel) in PERF.items():
                if b == "native":
                    base = native
                elif b in rel:
                    base = native * rel[b] if better == "higher" else native / rel[b]
                elif evil and b == evil_backend:
                    base = native
                else:
                    continue
                for rep in range(reps):
                    if fails(b, "perf"):
                        add(b, workload, f"perf.{workload}", "nan", unit, rep, {"better": better, "error": "exit 137"})
                        continue
                    add(b, workload, f"perf.{workload}", _noisy(rng, base, 0.04), unit, rep, {"better": better})
        if want("density") and b in DENSITY:
            count, stopped, per = DENSITY[b]
            add(b, "density", "density.count", count, "instances", 0, {"stopped_by": stopped})
            add(b, "density", "density.mem_per_instance", _noisy(rng, per, 0.03), "bytes", 0,
                {"method": "MemAvailable delta / N"})
            add(b, "density", "density.start_rate", _noisy(rng, 40 if KINDS[b] == "container" else 0.8), "instances/s", 0)
            steps = 8
            for i in range(steps + 1):
                n = round(count * i / steps)
                add(b, "density", "density.mem_used", 2.1e9 + n * _noisy(rng, per, 0.02), "bytes", i, {"n": n})
        if want("isolation"):
            for check in CHECKS:
                kind = KINDS.get(b, kinds.get(b))
                if kind == "native":
                    v = 0
                elif kind == "container":
                    v = 0 if check == "kernel_separate" else 1
                else:
                    v = 1
                detail = {"syscall_filter": {"container": "seccomp: 312 of 451 syscalls allowed",
                                             "vm": "guest kernel; host sees QEMU only"}.get(kind, "none"),
                          "kernel_separate": "uname -r differs" if v else "same kernel as the host"}.get(check, "")
                if evil and check == "host_pids_hidden":
                    detail = "<img src=x onerror=alert(1)> | saw pid 1"
                add(b, "isolation", f"isolation.{check}", v, "bool", 0, {"detail": detail})
    if nonfinite:
        add("container", "boot", "startup.ready", "nan", "s", 99)
        add("container", "boot", "startup.ready", "inf", "s", 100)
        add("container", "boot", "startup.ready", "", "s", 101)
        add("native", "cpu", "perf.cpu", "-inf", "ops/s", 99, {"better": "higher"})
    if evil:
        add("container", "a|b<i>", "perf.a|b<i>", 5.0, "ops/s", 0, {"better": "higher"})
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "samples.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    images = {"evil<script>alert(2)</script>:latest": "sha256:" + "cd" * 32} if evil else None
    env = environment(run_id, hostname if not evil else hostname + "<script>alert(3)</script>", accel,
                      names + list(unavailable or {}), incomplete=incomplete, images=images, kinds=kinds)
    for b, reason in (unavailable or {}).items():
        env["backends"][b] = {"kind": "container", "available": False, "reason": reason}
    (path / "environment.json").write_text(json.dumps(env, indent=2), encoding="utf-8")
    (path / "raw").mkdir(exist_ok=True)
    return path


def read_samples(path: Path) -> list[dict]:
    """The rows of a samples.csv, read with the csv module only (an independent reader)."""
    with open(path / "samples.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def sample_lines(path: Path) -> list[str]:
    """The lines of a run's samples.csv, header first (for tests that edit a run by hand)."""
    return (path / "samples.csv").read_text().splitlines()


def write_sample_lines(path: Path, lines: list[str]) -> None:
    """Replace a run's samples.csv by ``lines``."""
    (path / "samples.csv").write_text("\n".join(lines) + "\n")
