"""The cgroup v1 manager (also used in hybrid mode, where it joins the cgroup2 tree too).

One directory per mounted hierarchy, all at the same cgroupsPath. Limits go to the
controllers' own files (memory.limit_in_bytes, cpu.cfs_quota_us, devices.allow, ...).
In hybrid mode the container also gets a directory in the cgroup2 tree at
``<root>/unified`` (key ""), which gives cgroup.kill and a freezer even without v1 ones.
"""

from __future__ import annotations

import os

from runtime.oci.cgroups import files, hierarchy
from runtime.oci.cgroups.base import (
    FREEZE_TIMEOUT,
    UNLIMITED,
    CgroupManager,
    Write,
    cgroup2_cpu,
    host_memory,
    plan_cpuset,
    plan_pids,
    plan_rdma,
    wait_until,
)
from runtime.oci.cgroups.errors import CgroupError, CgroupUnsupported, FreezeTimeout, InvalidResources
from runtime.oci.cgroups.resources import HostFacts, cpu_count_problem, device_rules

_THROTTLE = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


class V1Manager(CgroupManager):
    """A container's cgroup in every v1 hierarchy (plus the cgroup2 one in hybrid mode)."""

    schema = "v1"

    def __init__(self, paths: dict[str, str], root: str = hierarchy.DEFAULT_ROOT, mode: str = "v1",
                 host: HostFacts | None = None, creation: dict[str, tuple[str, list[str]]] | None = None):
        super().__init__(paths, root, host)
        self.mode = mode
        # directory -> (existing base, levels to create); empty for a manager loaded from state
        self._creation = creation or {}

    @classmethod
    def open(cls, cgroups_path: str | None, container_id: str, root: str, mode: str,
             host: HostFacts | None = None) -> V1Manager:
        """Plan the container's directories (nothing is created until apply or add)."""
        relative, parts = hierarchy.parse_cgroups_path(cgroups_path, container_id)
        mounts = hierarchy.v1_mounts(root)
        if not mounts:
            raise CgroupUnsupported(f"no cgroup v1 controllers are mounted under {root}")
        own = hierarchy.own_cgroups() if relative else {}
        paths: dict[str, str] = {}
        creation: dict[str, tuple[str, list[str]]] = {}
        for ctrl, (mountpoint, mount_root) in sorted(mounts.items()):
            base = hierarchy.base_dir(mountpoint, mount_root, relative, own.get(ctrl))
            paths[ctrl] = os.path.join(base, *parts)
            creation[paths[ctrl]] = (base, parts)
        if mode == "hybrid":
            base = hierarchy.base_dir(os.path.join(root, "unified"), "/", relative, own.get(""))
            paths[""] = os.path.join(base, *parts)
            creation[paths[""]] = (base, parts)
        return cls(paths, root, mode, host, creation)

    # ---------------------------------------------------------------- creation

    def _ensure(self) -> bool:
        """Create missing directories; True when this call created any. All or nothing."""
        made: list[str] = []
        cpuset_dirs = {self.paths.get("cpuset")}
        try:
            for d in self._dirs():
                if os.path.isdir(d):
                    continue
                if d not in self._creation:
                    raise CgroupError(f"cgroup {d} does not exist")
                base, parts = self._creation[d]
                made += hierarchy.create_tree(base, parts, on_level=_cpuset_inherit if d in cpuset_dirs else None)
        except CgroupError:
            hierarchy.remove_made(made)
            raise
        return bool(made)

    def birth_dir(self) -> str | None:
        """Hybrid: create just the cgroup2 directory (a born process joins the v1 ones itself)."""
        d = self.paths.get("")
        if d is None:
            return None
        if not os.path.isdir(d):
            if d not in self._creation:
                raise CgroupError(f"cgroup {d} does not exist")
            base, parts = self._creation[d]
            hierarchy.create_tree(base, parts)
        return d

    def _before_writes(self, r: dict, update: bool) -> None:
        if update:
            self._check_update(r)
        self._check_live(r)
        self._grant_rt_budget(r.get("cpu") or {})

    def _after_writes(self, r: dict) -> None:
        self._devices_fallback(r)
        self._note_unenforced(r)

    def _grant_rt_budget(self, cpu: dict) -> None:
        """Give the parents virtlab created enough real-time runtime for this container's request.

        A v1 cgroup's cpu.rt_runtime_us must fit in its parent's, and a new cgroup starts at 0,
        so a child's request fails (EINVAL) unless ``/virtlab`` and the like are raised first.
        Parents an administrator made are left alone: their budget is theirs to give.
        """
        want = cpu.get("realtimeRuntime")
        leaf = self.paths.get("cpu")
        if not want or want < 0 or not leaf:
            return
        chain = []
        d = os.path.dirname(leaf)
        while hierarchy.under(d, self.root) and hierarchy.created_by_us(d):
            chain.append(d)
            d = os.path.dirname(d)
        for d in reversed(chain):  # top-down: each level needs its parent's budget first
            path = os.path.join(d, "cpu.rt_runtime_us")
            have = files.read_int(path)
            if have != -1 and have < want:
                files.write(path, str(have + want))

    def _note_unenforced(self, r: dict) -> None:
        """Kernel 6 accepts a kernel memory limit but keeps it unlimited: say so instead of pretending."""
        want = (r.get("memory") or {}).get("kernel")
        path = self._file("memory", "memory.kmem.limit_in_bytes")
        if want and want > 0 and path and os.path.exists(path) and not _finite(files.read_int(path)):
            self._note(f"memory.kernel {want} not enforced: this kernel ignores memory.kmem.limit_in_bytes")

    def _devices_fallback(self, r: dict) -> None:
        """Without a v1 devices hierarchy, enforce device rules with eBPF on the hybrid cgroup2 dir."""
        rules = device_rules(r.get("devices") or [])
        if not rules or "devices" in self.paths:
            return
        if "" not in self.paths:
            self._note("no devices controller is mounted: device rules ignored")
            return
        from runtime.oci.cgroups import ebpf

        ebpf.set_device_rules(self.paths[""], rules, replace=True)

    def _check_update(self, r: dict) -> None:
        """What only an update refuses: more CPUs than the host has (the current period counts)."""
        cpu = r.get("cpu") or {}
        if cpu.get("quota") is not None and "cpu" in self.paths:
            period = cpu.get("period") or files.read_int(self._path("cpu", "cpu.cfs_period_us"))
            problem = cpu_count_problem(cpu["quota"], period, self.host)
            if problem:
                raise InvalidResources(problem)

    def _check_live(self, r: dict) -> None:
        """Checks against the cgroup as it is: memory usage, the memory+swap ceiling."""
        mem = r.get("memory") or {}
        limit, swap = mem.get("limit"), mem.get("swap")
        if "memory" not in self.paths or (limit is None and swap in (None, 0)):
            return
        problems = []
        if limit not in (None, -1):
            usage = self._working_set()
            if limit < usage:
                problems.append(f"invalid memory.limit {limit}: below the container's current usage of {usage} bytes")
        memsw = self._path("memory", "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            new_limit = limit if limit is not None else files.read_int(self._path("memory", "memory.limit_in_bytes"))
            new_sw = swap if swap not in (None, 0) else files.read_int(memsw)
            if _finite(new_sw) and (not _finite(new_limit) or new_limit > new_sw):
                problems.append(
                    f"invalid memory.limit {limit}: above the memory+swap limit {new_sw}; set memory.swap as well"
                )
        if problems:
            raise InvalidResources("; ".join(problems))

    def _working_set(self) -> int:
        """Memory in use minus the inactive page cache, which the kernel drops when a limit shrinks."""
        mem = self.paths["memory"]
        usage = files.read_int(os.path.join(mem, "memory.usage_in_bytes"))
        stat = files.read_keyed(os.path.join(mem, "memory.stat"))
        return max(0, usage - stat.get("total_inactive_file", 0))

    # ---------------------------------------------------------------- plan

    def _plan(self, r: dict, update: bool) -> list[Write]:
        steps: list[Write] = []
        steps += self._plan_memory(r.get("memory") or {}, update)
        steps += _plan_cpu(r.get("cpu") or {})
        steps += plan_pids("pids", r.get("pids") or {})
        steps += self._plan_blkio(r.get("blockIO") or {})
        for h in r.get("hugepageLimits") or []:
            steps.append(Write("hugetlb", f"hugetlb.{h['pageSize']}.limit_in_bytes", str(h["limit"])))
            steps.append(Write("hugetlb", f"hugetlb.{h['pageSize']}.rsvd.limit_in_bytes", str(h["limit"]), optional=True))
        net = r.get("network") or {}
        if net.get("classID") is not None:
            steps.append(Write("net_cls", "net_cls.classid", str(net["classID"])))
        for p in net.get("priorities") or []:
            steps.append(Write("net_prio", "net_prio.ifpriomap", f"{p['name']} {p['priority']}", multi=True))
        if "devices" in self.paths:
            for rule in device_rules(r.get("devices") or []):
                steps.append(Write("devices", "devices.allow" if rule.allow else "devices.deny", rule.v1_line(), multi=True))
        steps += plan_rdma("rdma", r.get("rdma") or {})
        return steps

    def _plan_memory(self, mem: dict, update: bool) -> list[Write]:
        steps: list[Write] = []
        limit, swap = mem.get("limit"), mem.get("swap")
        swap_step = None
        if swap not in (None, 0):
            memsw = self._file("memory", "memory.memsw.limit_in_bytes")
            if memsw and not os.path.exists(memsw):
                self._note("swap accounting is off in this kernel: memory.swap ignored")
            else:
                swap_step = Write("memory", "memory.memsw.limit_in_bytes", str(swap))
        limit_step = Write("memory", "memory.limit_in_bytes", str(limit)) if limit is not None else None
        if limit is not None and limit_step and swap_step:
            # memory+swap may never be below memory: raise the ceiling first when growing.
            current_sw = files.read_int(self._path("memory", "memory.memsw.limit_in_bytes"))
            if _finite(current_sw) and (limit == -1 or limit > current_sw):
                steps += [swap_step, limit_step]
            else:
                steps += [limit_step, swap_step]
        else:
            steps += [s for s in (limit_step, swap_step) if s]
        if mem.get("reservation") is not None:
            steps.append(Write("memory", "memory.soft_limit_in_bytes", str(mem["reservation"])))
        if mem.get("kernel") is not None:
            steps.append(Write("memory", "memory.kmem.limit_in_bytes", str(mem["kernel"]), optional=True))
        if mem.get("kernelTCP") is not None:
            steps.append(Write("memory", "memory.kmem.tcp.limit_in_bytes", str(mem["kernelTCP"]), optional=True))
        if mem.get("swappiness") is not None:
            steps.append(Write("memory", "memory.swappiness", str(mem["swappiness"])))
        oom = mem.get("disableOOMKiller")
        if oom or (update and oom is False):
            steps.append(Write("memory", "memory.oom_control", "1" if oom else "0"))
        if mem.get("useHierarchy") is not None:
            steps.append(Write("memory", "memory.use_hierarchy", "1" if mem["useHierarchy"] else "0", optional=True))
        return steps

    def _plan_blkio(self, bio: dict) -> list[Write]:
        steps: list[Write] = []
        d = self.paths.get("blkio")
        # CFQ's blkio.weight is gone since kernel 5.0; BFQ offers blkio.bfq.weight instead.
        prefix = "blkio."
        if d and not os.path.exists(os.path.join(d, "blkio.weight")) and os.path.exists(os.path.join(d, "blkio.bfq.weight")):
            prefix = "blkio.bfq."
        if bio.get("weight"):
            steps.append(Write("blkio", prefix + "weight", str(bio["weight"]), optional=True))
        if bio.get("leafWeight"):
            steps.append(Write("blkio", "blkio.leaf_weight", str(bio["leafWeight"]), optional=True))
        for dev in bio.get("weightDevice") or []:
            key = f"{dev['major']}:{dev['minor']}"
            if dev.get("weight"):
                steps.append(Write("blkio", prefix + "weight_device", f"{key} {dev['weight']}", optional=True, multi=True))
            if dev.get("leafWeight"):
                steps.append(Write("blkio", "blkio.leaf_weight_device", f"{key} {dev['leafWeight']}", optional=True, multi=True))
        for name, fname in _THROTTLE.items():
            for dev in bio.get(name) or []:
                steps.append(Write("blkio", fname, f"{dev['major']}:{dev['minor']} {dev['rate']}", multi=True))
        return steps

    # ---------------------------------------------------------------- freezer
    # The v1 freezer controller when it is mounted; else the base class's cgroup.freeze of the hybrid cgroup2 dir.

    def state(self) -> str:
        """ "frozen" or "thawed" (v1 freezer.state, or cgroup.freeze of the hybrid cgroup2 dir)."""
        if "freezer" not in self.paths:
            return super().state()
        return "frozen" if files.read(self._path("freezer", "freezer.state")) == "FROZEN" else "thawed"

    def freeze(self, timeout: float = FREEZE_TIMEOUT) -> None:
        """Freeze every process; waits for FROZEN (re-asking while FREEZING), thaws again on timeout."""
        if "freezer" not in self.paths:
            super().freeze(timeout)
            return
        path = self._path("freezer", "freezer.state")
        files.write(path, "FROZEN")
        tries = [0]

        def frozen() -> bool:
            if files.read(path) == "FROZEN":
                return True
            tries[0] += 1
            if tries[0] % 10 == 0:
                files.write(path, "FROZEN")  # a task in an uninterruptible sleep can stall the first request
            return False

        if not wait_until(frozen, timeout, "freezer.state FROZEN"):
            files.write(path, "THAWED")
            raise FreezeTimeout(f"cannot freeze cgroup {self.paths['freezer']}: still FREEZING after {timeout:g}s")

    def thaw(self) -> None:
        """Thaw the cgroup."""
        if "freezer" not in self.paths:
            super().thaw()
            return
        path = self._path("freezer", "freezer.state")
        files.write(path, "THAWED")
        wait_until(lambda: files.read(path) == "THAWED", FREEZE_TIMEOUT, "freezer.state THAWED")

    # ---------------------------------------------------------------- reading

    def _procs_dir(self) -> str:
        for key in ("pids", "freezer", "memory", ""):
            if key in self.paths:
                return self.paths[key]
        return self._dirs()[0]

    def oom_killed(self) -> bool:
        """True when the kernel OOM-killed a process of this cgroup (memory.oom_control oom_kill)."""
        path = self._file("memory", "memory.oom_control")
        if not path or not os.path.exists(path):
            return False
        return files.read_keyed(path).get("oom_kill", 0) > 0

    def _read_stats(self, s: dict) -> None:
        acct = self.paths.get("cpuacct")
        if acct and os.path.isdir(acct):
            s["cpu_ns"] = files.read_int(os.path.join(acct, "cpuacct.usage"))
            if os.path.exists(os.path.join(acct, "cpuacct.usage_user")):
                s["cpu_user_ns"] = files.read_int(os.path.join(acct, "cpuacct.usage_user"))
                s["cpu_system_ns"] = files.read_int(os.path.join(acct, "cpuacct.usage_sys"))
            else:
                ticks = files.read_keyed(os.path.join(acct, "cpuacct.stat"))
                ns_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
                s["cpu_user_ns"] = ticks.get("user", 0) * ns_per_tick
                s["cpu_system_ns"] = ticks.get("system", 0) * ns_per_tick
        elif self.paths.get("") and os.path.exists(os.path.join(self.paths[""], "cpu.stat")):
            cgroup2_cpu(s, self.paths[""])  # hybrid without cpuacct: cgroup2 keeps CPU time for every cgroup
        mem = self.paths.get("memory")
        if mem and os.path.isdir(mem):
            # As docker stats: the page cache the kernel can drop at once is not "used".
            s["mem_bytes"] = self._working_set()
            limit = files.read_int(os.path.join(mem, "memory.limit_in_bytes"))
            s["mem_limit"] = limit if _finite(limit) else host_memory(limit)
            s["mem_max_usage"] = files.read_int(os.path.join(mem, "memory.max_usage_in_bytes"))
            s["oom_kills"] = files.read_keyed(os.path.join(mem, "memory.oom_control")).get("oom_kill", 0)
        pids = self.paths.get("pids")
        self._pid_counts(s, pids if pids and os.path.isdir(pids) else None)
        blkio = self.paths.get("blkio")
        if blkio and os.path.isdir(blkio):
            s["blk_read"], s["blk_write"] = _blkio_bytes(os.path.join(blkio, "blkio.throttle.io_service_bytes_recursive"))


def _cpuset_inherit(path: str) -> None:
    """A new v1 cpuset cgroup starts with empty cpus and mems: copy the parent's, or no task can join."""
    parent = os.path.dirname(path)
    for name in ("cpuset.cpus", "cpuset.mems"):
        own = os.path.join(path, name)
        if os.path.exists(own) and files.read(own) == "":
            files.write(own, files.read(os.path.join(parent, name)))


def _plan_cpu(cpu: dict) -> list[Write]:
    steps: list[Write] = []
    if cpu.get("shares"):
        steps.append(Write("cpu", "cpu.shares", str(cpu["shares"])))
    if cpu.get("period"):
        steps.append(Write("cpu", "cpu.cfs_period_us", str(cpu["period"])))
    if cpu.get("quota") is not None:
        steps.append(Write("cpu", "cpu.cfs_quota_us", str(cpu["quota"])))
    if cpu.get("burst") is not None:
        steps.append(Write("cpu", "cpu.cfs_burst_us", str(cpu["burst"]), optional=True))
    # The real-time period must be in place before a runtime that fits in it.
    if cpu.get("realtimePeriod"):
        steps.append(Write("cpu", "cpu.rt_period_us", str(cpu["realtimePeriod"])))
    if cpu.get("realtimeRuntime"):
        steps.append(Write("cpu", "cpu.rt_runtime_us", str(cpu["realtimeRuntime"])))
    if cpu.get("idle") is not None:
        steps.append(Write("cpu", "cpu.idle", str(cpu["idle"]), optional=True))
    steps += plan_cpuset("cpuset", cpu)
    return steps


def _finite(value: int) -> bool:
    return value != -1 and value < UNLIMITED


def _blkio_bytes(path: str) -> tuple[int, int]:
    read = write = 0
    if not os.path.exists(path):
        return 0, 0
    for line in files.read(path).splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        if parts[1] == "Read":
            read += int(parts[2])
        elif parts[1] == "Write":
            write += int(parts[2])
    return read, write
