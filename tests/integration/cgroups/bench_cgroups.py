"""Time the cgroup manager's operations on the real tree (root): a script, not a test.

    sudo .venv/bin/python tests/integration/cgroups/bench_cgroups.py [ROUNDS]

Prints median and p90 per operation for a container with docker-like limits
(memory, cpu, pids, 6 device rules). Everything created is removed again.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from runtime.oci.cgroups import open_manager

RESOURCES = {
    "memory": {"limit": 64 << 20},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    "pids": {"limit": 100},
    "devices": [{"allow": False, "access": "rwm"}]
    + [{"allow": True, "type": "c", "major": 1, "minor": m, "access": "rwm"} for m in (3, 5, 7, 8, 9)],
}


def main(rounds: int) -> None:
    """Run ``rounds`` create/add/stats/freeze/destroy cycles and print the timings."""
    times: dict[str, list[float]] = {k: [] for k in ("open+apply", "add", "stats", "freeze+thaw", "destroy")}
    for i in range(rounds):
        proc = subprocess.Popen(["sleep", "30"])
        mgr = None
        try:
            t0 = time.perf_counter()
            mgr = open_manager(None, f"vlbench-{os.getpid()}-{i}")
            mgr.apply(RESOURCES)
            t1 = time.perf_counter()
            mgr.add(proc.pid)
            t2 = time.perf_counter()
            mgr.stats()
            t3 = time.perf_counter()
            mgr.freeze()
            mgr.thaw()
            t4 = time.perf_counter()
        finally:
            proc.kill()
            proc.wait()
        t5 = time.perf_counter()
        mgr.destroy()
        t6 = time.perf_counter()
        for key, value in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5), strict=True):
            value_ms = value * 1000
            times[key].append(value_ms)
    print(f"mode {mgr.mode}, {rounds} rounds")
    for key, values in times.items():
        values.sort()
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        print(f"{key:12s} median {statistics.median(values):7.2f} ms   p90 {p90:7.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
