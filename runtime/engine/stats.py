"""Resource usage of a container: its cgroup (v1 or v2, via the runtime's cgroup manager) and netns."""

from __future__ import annotations

from typing import Any


def cgroup_stats(cgroups_path: str, cid: str) -> dict[str, int]:
    """cpu_ns, mem_bytes, mem_limit, pids, blk_read, blk_write of the container's cgroup."""
    from runtime.oci.cgroups import open_manager

    mgr = open_manager(cgroups_path, cid)
    s: dict[str, Any] = mgr.stats()
    return {k: int(s.get(k) or 0) for k in ("cpu_ns", "mem_bytes", "mem_limit", "pids", "blk_read", "blk_write")}


def net_stats(pid: int) -> tuple[int, int]:
    """(rx_bytes, tx_bytes) over every interface but lo in the network namespace of `pid`."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = rest.split()
        if len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def oom_killed(cgroups_path: str, cid: str) -> bool:
    """True if the kernel's OOM killer killed a process of the container."""
    from runtime.oci.cgroups import open_manager

    try:
        return int(open_manager(cgroups_path, cid).stats().get("oom_kills") or 0) > 0
    except Exception:  # noqa: BLE001 - no cgroup any more means no OOM to report
        return False
