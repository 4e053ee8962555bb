"""The workloads, each defined once and run unchanged on every backend.

boot, disk, cpu, memory, fileio, network, syscall, forkexec, http, density, isolation.
"""

from __future__ import annotations

from bench.errors import ConfigError

NAMES = ("boot", "disk", "cpu", "memory", "fileio", "syscall", "forkexec", "network", "http", "density", "isolation")


def create(name: str):
    """The workload object for a name."""
    if name == "boot":
        from bench.workloads.boot import Boot

        return Boot()
    if name == "disk":
        from bench.workloads.disk import Disk

        return Disk()
    if name == "density":
        from bench.workloads.density import Density

        return Density()
    if name == "isolation":
        from bench.workloads.isolation import Isolation

        return Isolation()
    from bench.workloads.perf import SPECS
    from bench.workloads.perf import create as create_perf

    if name in SPECS:
        return create_perf(name)
    raise ConfigError(f"unknown workload {name!r}: choose from {', '.join(NAMES)}")


def parse_list(text: str | None, default: tuple[str, ...]) -> list[str]:
    """A comma-separated list of workload names, validated (order of NAMES kept for the run)."""
    if not text:
        return list(default)
    wanted = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item not in NAMES:
            raise ConfigError(f"unknown workload {item!r}: choose from {', '.join(NAMES)}")
        if item not in wanted:
            wanted.append(item)
    if not wanted:
        raise ConfigError("no workload given")
    return [n for n in NAMES if n in wanted]
