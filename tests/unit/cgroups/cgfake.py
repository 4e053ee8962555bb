"""A fake cgroupfs for the cgroup manager's unit tests.

``FakeCgroupFS`` builds a v2, hybrid or v1 tree under tmp_path and stands in for the
kernel where a plain directory cannot: a mkdir under the fake root fills the new
directory with the control files the kernel would create (v2: only those of controllers
enabled in the parent's cgroup.subtree_control; v1 cpuset: empty cpus and mems).
"""

from __future__ import annotations

import os
from pathlib import Path

from runtime.oci.cgroups.resources import HostFacts


def read(path: Path | str) -> str:
    """A file's content, stripped (as the managers read control files)."""
    return Path(path).read_text().strip()


# Taken before the fixtures replace it with a fixed host.
REAL_FROM_SYSTEM = HostFacts.from_system

V2_CORE = {
    "cgroup.procs": "",
    "cgroup.subtree_control": "",
    "cgroup.freeze": "0",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.kill": "",
    "cgroup.type": "domain",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
}
V2_FILES = {
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0"},
    "memory": {
        "memory.max": "max", "memory.low": "0", "memory.swap.max": "max", "memory.current": "0",
        "memory.peak": "0", "memory.stat": "anon 0\ninactive_file 0\n",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
    },
    "pids": {"pids.max": "max", "pids.current": "0"},
    "io": {"io.weight": "default 100", "io.max": "", "io.stat": ""},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "hugetlb": {"hugetlb.2MB.max": "max", "hugetlb.1GB.max": "max"},
    "rdma": {"rdma.max": ""},
}
V1_MAX = "9223372036854771712"
V1_FILES = {
    "memory": {
        "memory.limit_in_bytes": V1_MAX, "memory.memsw.limit_in_bytes": V1_MAX,
        "memory.soft_limit_in_bytes": V1_MAX, "memory.kmem.limit_in_bytes": V1_MAX,
        "memory.kmem.tcp.limit_in_bytes": V1_MAX, "memory.swappiness": "60",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "memory.usage_in_bytes": "0",
        "memory.max_usage_in_bytes": "0", "memory.stat": "total_inactive_file 0\n", "memory.use_hierarchy": "1",
    },
    "cpu": {
        "cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.cfs_burst_us": "0",
        "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0", "cpu.idle": "0",
    },
    "cpuacct": {"cpuacct.usage": "0", "cpuacct.usage_user": "0", "cpuacct.usage_sys": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "blkio": {
        "blkio.bfq.weight": "100", "blkio.bfq.weight_device": "", "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "", "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "", "blkio.throttle.io_service_bytes_recursive": "Total 0\n",
    },
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
    "freezer": {"freezer.state": "THAWED"},
    "hugetlb": {"hugetlb.2MB.limit_in_bytes": V1_MAX, "hugetlb.1GB.limit_in_bytes": V1_MAX},
}


class FakeCgroupFS:
    """A cgroup tree in a temp dir; ``mode`` is "v2", "hybrid" or "v1"."""

    def __init__(self, root: Path, mode: str, v2_controllers=("cpu", "cpuset", "io", "memory", "pids", "hugetlb"),
                 v1_controllers=tuple(V1_FILES)):
        self.root = root
        self.mode = mode
        self.v1_controllers = v1_controllers
        root.mkdir(parents=True, exist_ok=True)
        if mode == "v2":
            self.v2_root = root
        elif mode == "hybrid":
            self.v2_root = root / "unified"
        else:
            self.v2_root = None
        if self.v2_root is not None:
            self.v2_root.mkdir(exist_ok=True)
            self._fill(self.v2_root, dict(V2_CORE))
            self.write(self.v2_root / "cgroup.controllers", " ".join(v2_controllers))
        if mode in ("v1", "hybrid"):
            for c in v1_controllers:
                d = root / c
                d.mkdir()
                self._fill(d, {"cgroup.procs": "", "tasks": "", **V1_FILES[c]})
                if c == "cpuset":
                    self.write(d / "cpuset.cpus", "0-1")
                    self.write(d / "cpuset.mems", "0")

    @staticmethod
    def write(path: Path, text: str) -> None:
        path.write_text(text)

    read = staticmethod(read)

    def _fill(self, d: Path, content: dict) -> None:
        for name, text in content.items():
            (d / name).write_text(text)

    def populate(self, path: str) -> None:
        """What the kernel puts in a new cgroup directory."""
        p = Path(path)
        if self.v2_root is not None and str(p).startswith(str(self.v2_root) + "/"):
            enabled = (p.parent / "cgroup.subtree_control").read_text().split()
            content = dict(V2_CORE)
            content["cgroup.controllers"] = " ".join(enabled)
            for c in enabled:
                content.update(V2_FILES.get(c, {}))
            self._fill(p, content)
            return
        controller = p.relative_to(self.root).parts[0]
        self._fill(p, {"cgroup.procs": "", "tasks": "", **V1_FILES[controller]})


def trusted_xattrs_work(path: Path) -> bool:
    """Whether this process may set trusted.* xattrs under ``path`` (root on tmpfs/ext4)."""
    probe = path / ".xattr-probe"
    probe.mkdir(exist_ok=True)
    try:
        os.setxattr(probe, "trusted.virtlab.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.rmdir()
