"""The cgroup v2 (unified) manager: one directory, controllers enabled from the top down.

v1-style OCI values are converted as runc and crun do: cpu.weight from shares (crun's
curve), cpu.max from quota and period, io.weight from the blkio weight, memory.swap.max
as swap minus limit. Device rules become an eBPF program attached to the directory.
"""

from __future__ import annotations

import os

from runtime.oci.cgroups import files, hierarchy
from runtime.oci.cgroups.base import (
    CgroupManager,
    Write,
    cgroup2_cpu,
    host_memory,
    plan_cpuset,
    plan_pids,
    plan_rdma,
)
from runtime.oci.cgroups.errors import CgroupError, CgroupUnsupported, InvalidResources
from runtime.oci.cgroups.resources import (
    HostFacts,
    blkio_weight_to_io_weight,
    cpu_count_problem,
    device_rules,
    shares_to_weight,
    swap_to_v2,
)

# Enabled for every container when the parent offers them: the limits people set, and stats.
ALWAYS = ("cpu", "io", "memory", "pids")
_THROTTLE = {
    "throttleReadBpsDevice": "rbps",
    "throttleWriteBpsDevice": "wbps",
    "throttleReadIOPSDevice": "riops",
    "throttleWriteIOPSDevice": "wiops",
}


class V2Manager(CgroupManager):
    """A container's cgroup in a cgroup2 tree. ``paths`` is ``{"": directory}``."""

    mode = "v2"
    schema = "v2"

    def __init__(self, paths: dict[str, str], root: str = hierarchy.DEFAULT_ROOT, host: HostFacts | None = None,
                 creation: tuple[str, list[str]] | None = None):
        if set(paths) != {""}:
            raise CgroupError(f"invalid cgroup v2 paths {paths!r}: expected one entry with the key \"\"")
        super().__init__(paths, root, host)
        self.dir = paths[""]
        self._creation = creation

    @classmethod
    def open(cls, cgroups_path: str | None, container_id: str, root: str, host: HostFacts | None = None) -> V2Manager:
        """Plan the container's directory (nothing is created until apply or add)."""
        relative, parts = hierarchy.parse_cgroups_path(cgroups_path, container_id)
        own = hierarchy.own_cgroups().get("") if relative else None
        base = hierarchy.base_dir(root, "/", relative, own)
        return cls({"": os.path.join(base, *parts)}, root, host, (base, parts))

    # ---------------------------------------------------------------- creation

    def _ensure(self, controllers: set[str] | None = None) -> bool:
        created = False
        if not os.path.isdir(self.dir):
            if self._creation is None:
                raise CgroupError(f"cgroup {self.dir} does not exist")
            base, parts = self._creation
            created = bool(hierarchy.create_tree(base, parts))
        self._enable(set(ALWAYS) | (controllers or set()))
        return created

    def birth_dir(self) -> str | None:
        """Create the directory (the controllers a config needs are enabled by ``apply``)."""
        self._ensure()
        return self.dir

    def _enable(self, wanted: set[str]) -> None:
        """Enable ``wanted`` controllers (those offered) in every parent, from the root down."""
        chain = []
        d = os.path.dirname(self.dir)
        while hierarchy.under(d, self.root) or os.path.normpath(d) == os.path.normpath(self.root):
            chain.append(d)
            if os.path.normpath(d) == os.path.normpath(self.root):
                break
            d = os.path.dirname(d)
        for d in reversed(chain):
            offered = set(_words(os.path.join(d, "cgroup.controllers")))
            enabled = set(_words(os.path.join(d, "cgroup.subtree_control")))
            todo = sorted((wanted & offered) - enabled)
            if not todo:
                continue
            try:
                files.write(os.path.join(d, "cgroup.subtree_control"), " ".join("+" + c for c in todo))
            except CgroupError as exc:
                # One at a time, so one refused controller (e.g. cpu with real-time tasks) costs only itself.
                for c in todo:
                    try:
                        files.write(os.path.join(d, "cgroup.subtree_control"), "+" + c)
                    except CgroupError as one:
                        self._note(f"cannot enable the {c} controller in {d}: {one}")
                files.debug("enabling %s in %s one by one after: %s", todo, d, exc)

    def _create(self, resources: dict) -> bool:
        return self._ensure(_controllers_for(resources))

    def _before_writes(self, r: dict, update: bool) -> None:
        if update:
            self._check_update(r)
            self._check_live(r)
            self._enable(_controllers_for(r))  # a live cgroup may need more controllers than it was made with
            self._check_controllers(r)
        else:
            self._check_controllers(r)
            self._check_live(r)

    def _after_writes(self, r: dict) -> None:
        self._set_devices(r)

    def _check_update(self, r: dict) -> None:
        """What only an update refuses: more CPUs than the host has (the current period counts)."""
        cpu = r.get("cpu") or {}
        path = os.path.join(self.dir, "cpu.max")
        if cpu.get("quota") is not None:
            period = cpu.get("period") or (int(files.read(path).split()[1]) if os.path.exists(path) else 100000)
            problem = cpu_count_problem(cpu["quota"], period, self.host)
            if problem:
                raise InvalidResources(problem)

    def _check_live(self, r: dict) -> None:
        """Checks against the cgroup as it is: memory usage, unified keys."""
        problems = []
        limit = (r.get("memory") or {}).get("limit")
        current = os.path.join(self.dir, "memory.current")
        if limit not in (None, -1) and os.path.exists(current):
            usage = self._working_set(files.read_int(current))
            if limit < usage:
                problems.append(f"invalid memory.limit {limit}: below the container's current usage of {usage} bytes")
        for key in (r.get("unified") or {}):
            if not os.path.exists(os.path.join(self.dir, key)):
                problems.append(f"invalid unified key {key!r}: {self.dir} has no such file (controller not enabled?)")
        if problems:
            raise InvalidResources("; ".join(problems))

    def _check_controllers(self, r: dict) -> None:
        """Fail before any write when a requested limit's controller is not offered to this cgroup."""
        needed = _required_controllers(r)
        if not needed:
            return
        have = set(_words(os.path.join(self.dir, "cgroup.controllers")))
        missing = sorted(needed - have)
        if missing:
            why = [n for n in self.notes if n.startswith("cannot enable")]
            raise CgroupUnsupported(
                f"cannot set {', '.join(missing)} limits on cgroup {self.dir}: controller not available "
                f"(available: {' '.join(sorted(have)) or 'none'})" + ("; " + "; ".join(why) if why else "")
            )

    def _set_devices(self, r: dict) -> None:
        rules = device_rules(r.get("devices") or [])
        if not rules:
            return
        from runtime.oci.cgroups import ebpf

        ebpf.set_device_rules(self.dir, rules, replace=True)

    # ---------------------------------------------------------------- plan

    def _plan(self, r: dict, update: bool) -> list[Write]:
        steps: list[Write] = []
        steps += self._plan_memory(r.get("memory") or {}, update)
        steps += self._plan_cpu(r.get("cpu") or {})
        steps += plan_pids("", r.get("pids") or {})
        steps += self._plan_io(r.get("blockIO") or {})
        for h in r.get("hugepageLimits") or []:
            steps.append(Write("", f"hugetlb.{h['pageSize']}.max", str(h["limit"])))
            steps.append(Write("", f"hugetlb.{h['pageSize']}.rsvd.max", str(h["limit"]), optional=True))
        net = r.get("network") or {}
        if net.get("classID") is not None or net.get("priorities"):
            self._note("network classID and priorities exist only in cgroup v1 (net_cls, net_prio): ignored")
        steps += plan_rdma("", r.get("rdma") or {})
        # unified comes last: it is the most specific and overrides the converted values (as runc).
        for key, value in (r.get("unified") or {}).items():
            steps.append(Write("", key, value))
        return steps

    def _plan_memory(self, mem: dict, update: bool) -> list[Write]:
        steps: list[Write] = []
        limit = mem.get("limit")
        if limit is not None:
            steps.append(Write("", "memory.max", "max" if limit == -1 else str(limit)))
        swap = mem.get("swap")
        if swap not in (None, 0):
            if limit is None and swap != -1:
                limit = files.read_int(os.path.join(self.dir, "memory.max"), max_as=-1)
            value = swap_to_v2(swap, limit)
            if value is not None:
                steps.append(Write("", "memory.swap.max", value, optional=True))
        if mem.get("reservation") is not None:
            steps.append(Write("", "memory.low", "max" if mem["reservation"] == -1 else str(mem["reservation"])))
        for key, why in (("kernel", "kernel memory is always charged to memory.max in cgroup v2"),
                         ("kernelTCP", "kernel memory is always charged to memory.max in cgroup v2"),
                         ("swappiness", "cgroup v2 has no per-cgroup swappiness")):
            if mem.get(key) is not None:
                self._note(f"memory.{key} ignored: {why}")
        if mem.get("disableOOMKiller"):
            self._note("memory.disableOOMKiller ignored: cgroup v2 cannot disable the OOM killer")
        return steps

    def _plan_cpu(self, cpu: dict) -> list[Write]:
        steps: list[Write] = []
        if cpu.get("shares"):
            steps.append(Write("", "cpu.weight", str(shares_to_weight(cpu["shares"]))))
        quota, period = cpu.get("quota"), cpu.get("period")
        if quota is not None or period:
            cur_quota, cur_period = "max", "100000"
            path = os.path.join(self.dir, "cpu.max")
            if os.path.exists(path):
                cur_quota, _, cur_period = files.read(path).partition(" ")
            q = cur_quota if quota is None else ("max" if quota == -1 else str(quota))
            p = str(period) if period else cur_period
            steps.append(Write("", "cpu.max", f"{q} {p}"))
        if cpu.get("burst") is not None:
            steps.append(Write("", "cpu.max.burst", str(cpu["burst"]), optional=True))
        if cpu.get("idle") is not None:
            steps.append(Write("", "cpu.idle", str(cpu["idle"]), optional=True))
        steps += plan_cpuset("", cpu)
        return steps

    def _plan_io(self, bio: dict) -> list[Write]:
        steps: list[Write] = []
        bfq = os.path.exists(os.path.join(self.dir, "io.bfq.weight"))
        if bio.get("weight"):
            if bfq:
                steps.append(Write("", "io.bfq.weight", str(bio["weight"])))
            else:
                steps.append(Write("", "io.weight", str(blkio_weight_to_io_weight(bio["weight"])), optional=True))
        if bio.get("leafWeight"):
            self._note("blockIO.leafWeight ignored: cgroup v2 has no leaf weights")
        for dev in bio.get("weightDevice") or []:
            if dev.get("weight"):
                key = f"{dev['major']}:{dev['minor']}"
                if bfq:
                    steps.append(Write("", "io.bfq.weight", f"{key} {dev['weight']}", multi=True))
                else:
                    w = blkio_weight_to_io_weight(dev["weight"])
                    steps.append(Write("", "io.weight", f"{key} {w}", optional=True, multi=True))
        for name, key in _THROTTLE.items():
            for dev in bio.get(name) or []:
                rate = dev["rate"] or "max"  # v1 semantics: a rate of 0 removes the limit
                steps.append(Write("", "io.max", f"{dev['major']}:{dev['minor']} {key}={rate}", multi=True))
        return steps

    # ---------------------------------------------------------------- freezer

    def _freeze_dir(self, what: str) -> str:
        return self.dir  # the freezer is always there (cgroup.freeze, kernel 5.2 and later)

    # ---------------------------------------------------------------- reading

    def _procs_dir(self) -> str:
        return self.dir

    def oom_killed(self) -> bool:
        """True when the kernel OOM-killed a process of this cgroup (memory.events oom_kill)."""
        path = os.path.join(self.dir, "memory.events")
        return os.path.exists(path) and files.read_keyed(path).get("oom_kill", 0) > 0

    def _working_set(self, usage: int) -> int:
        """``usage`` minus the inactive page cache, which the kernel drops to fit a lower limit."""
        return max(0, usage - files.read_keyed(os.path.join(self.dir, "memory.stat")).get("inactive_file", 0))

    def _read_stats(self, s: dict) -> None:
        d = self.dir
        cgroup2_cpu(s, d)
        if os.path.exists(os.path.join(d, "memory.current")):
            usage = files.read_int(os.path.join(d, "memory.current"))
            s["mem_bytes"] = self._working_set(usage)
            limit = files.read_int(os.path.join(d, "memory.max"), max_as=-1)
            s["mem_limit"] = limit if limit >= 0 else host_memory(0)
            peak = os.path.join(d, "memory.peak")
            s["mem_max_usage"] = files.read_int(peak) if os.path.exists(peak) else usage
            s["oom_kills"] = files.read_keyed(os.path.join(d, "memory.events")).get("oom_kill", 0)
        self._pid_counts(s, d if os.path.exists(os.path.join(d, "pids.current")) else None)
        if os.path.exists(os.path.join(d, "io.stat")):
            for line in files.read(os.path.join(d, "io.stat")).splitlines():
                for field in line.split()[1:]:
                    key, _, value = field.partition("=")
                    if key == "rbytes":
                        s["blk_read"] += int(value)
                    elif key == "wbytes":
                        s["blk_write"] += int(value)


def _words(path: str) -> list[str]:
    try:
        return files.read(path).split()
    except CgroupError:
        return []


def _optional_controllers(r: dict) -> set[str]:
    """Controllers outside ALWAYS whose limits ``r`` sets: cpuset, hugetlb, rdma."""
    out = set()
    cpu = r.get("cpu") or {}
    if cpu.get("cpus") or cpu.get("mems"):
        out.add("cpuset")
    if r.get("hugepageLimits"):
        out.add("hugetlb")
    if r.get("rdma"):
        out.add("rdma")
    return out


def _controllers_for(r: dict) -> set[str]:
    """Controllers beyond ALWAYS that ``r`` needs enabled."""
    return _optional_controllers(r) | {key.split(".", 1)[0] for key in r.get("unified") or {}}


def _required_controllers(r: dict) -> set[str]:
    """Controllers whose files the plan for ``r`` writes (kernel/swappiness notes need none)."""
    out = _optional_controllers(r)
    mem = r.get("memory") or {}
    if any(mem.get(k) is not None for k in ("limit", "reservation")) or mem.get("swap") not in (None, 0):
        out.add("memory")
    cpu = r.get("cpu") or {}
    if cpu.get("shares") or cpu.get("quota") is not None or cpu.get("period") or cpu.get("burst") is not None:
        out.add("cpu")
    if (r.get("pids") or {}).get("limit") is not None:
        out.add("pids")
    bio = r.get("blockIO") or {}
    if bio.get("weight") or bio.get("weightDevice") or any(bio.get(k) for k in _THROTTLE):
        out.add("io")
    return out
