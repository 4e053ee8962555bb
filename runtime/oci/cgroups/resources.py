"""Validation of OCI linux.resources and the v1 -> v2 value conversions runc and crun use.

``validate`` checks every value before a manager writes anything, so a bad ``update``
leaves the previous limits in place. Its limits come from the kernel's own ranges, the
OCI runtime spec, and the host (online CPUs and memory nodes, huge page sizes).
"""

from __future__ import annotations

import os

from runtime.oci.cgroups.errors import InvalidResources

MAX_SHARES = 262144
MIN_SHARES = 2
MIN_QUOTA_US = 1000
MIN_PERIOD_US = 1000
MAX_PERIOD_US = 1000000
UINT32 = 2**32 - 1

_DIGITS = frozenset("0123456789")
_LOWER_ = frozenset("abcdefghijklmnopqrstuvwxyz_")
_KEY_REST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


# String methods instead of `re`: importing re (and enum through it) costs ~6 ms per runtime start.
def _is_ifname(name: str) -> bool:
    """An interface name: 1 to 15 characters, no whitespace, "/" or ":"."""
    return 0 < len(name) <= 15 and not any(ch.isspace() or ch in "/:" for ch in name)


def _is_unified_key(key: str) -> bool:
    """A cgroup v2 file name like "memory.high": [a-z_]+ "." [A-Za-z0-9_.]+."""
    head, dot, tail = key.partition(".")
    return bool(head and dot and tail) and _LOWER_.issuperset(head) and _KEY_REST.issuperset(tail)


def _is_number(s: str) -> bool:
    return bool(s) and _DIGITS.issuperset(s)


def _is_rdma_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(ch.isalnum() or ch in "_.-" for ch in name)
# Files that move processes or change the tree; the manager owns them.
_UNIFIED_FORBIDDEN = frozenset(
    {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill", "cgroup.freeze", "cgroup.type"}
)


class HostFacts:
    """What the host offers: online CPUs and memory nodes, and huge page sizes ("2MB")."""

    __slots__ = ("cpus", "mems", "hugepage_sizes")

    def __init__(self, cpus: frozenset[int], mems: frozenset[int], hugepage_sizes: frozenset[str] = frozenset()):
        self.cpus = frozenset(cpus)
        self.mems = frozenset(mems)
        self.hugepage_sizes = frozenset(hugepage_sizes)

    @classmethod
    def from_system(cls, sysfs: str = "/sys") -> HostFacts:
        """Read the facts from sysfs."""
        cpus = _read_list_file(f"{sysfs}/devices/system/cpu/online")
        if not cpus:
            cpus = frozenset(range(os.cpu_count() or 1))
        mems = _read_list_file(f"{sysfs}/devices/system/node/online") or frozenset({0})
        return cls(cpus=cpus, mems=mems, hugepage_sizes=frozenset(hugepage_sizes(sysfs)))


def _read_list_file(path: str) -> frozenset[int]:
    try:
        with open(path) as f:
            return frozenset(parse_list(f.read().strip()))
    except (OSError, ValueError):
        return frozenset()


def hugepage_sizes(sysfs: str = "/sys") -> list[str]:
    """Huge page sizes in the naming of cgroup files and the OCI spec: "2MB", "1GB"."""
    out: list[str] = []
    try:
        names = os.listdir(f"{sysfs}/kernel/mm/hugepages")
    except OSError:
        return out
    for name in names:
        kb = name[len("hugepages-"):-len("kB")] if name.startswith("hugepages-") and name.endswith("kB") else ""
        if _is_number(kb):
            out.append(format_pagesize(int(kb) * 1024))
    return sorted(out)


def format_pagesize(size: int) -> str:
    """Bytes as the kernel names huge page sizes: 2097152 -> "2MB"."""
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1024 and size % 1024 == 0 and i < len(units) - 1:
        size //= 1024
        i += 1
    return f"{size}{units[i]}"


def parse_list(text: str) -> set[int]:
    """A kernel list like "0-3,8,10-11" as a set; ValueError when malformed."""
    out: set[int] = set()
    if text.strip() == "":
        return out
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not _is_number(lo) or (dash and not _is_number(hi)):
            raise ValueError(f"bad list element {part!r}")
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if b < a:
            raise ValueError(f"bad range {part!r}")
        out.update(range(a, b + 1))
    return out


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) to cpu.weight (1..10000) with crun's curve: 1024 -> 100."""
    if shares == 0:
        return 0
    if shares <= MIN_SHARES:
        return 1
    if shares >= MAX_SHARES:
        return 10000
    from math import ceil, log2  # only for cgroup v2 hosts

    exponent = log2(shares)
    exponent = (exponent * exponent + 125 * exponent) / 612.0 - 7.0 / 34.0
    return min(10000, max(1, ceil(10**exponent)))


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) to io.weight (1..10000), as runc converts it."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap: int | None, limit: int | None) -> str | None:
    """OCI memory.swap (memory+swap) to memory.swap.max (swap alone); None: leave it."""
    if swap is None or swap == 0:
        return None
    if swap == -1:
        return "max"
    if limit is None or limit == -1:
        raise InvalidResources(f"invalid memory.swap {swap}: a swap limit needs a memory limit")
    return str(swap - limit)


class DeviceRule:
    """One device cgroup rule: type "a", "b" or "c"; major/minor None means any (``*``); access within "rwm"."""

    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow: bool, type: str, major: int | None, minor: int | None, access: str):
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access

    def __eq__(self, other) -> bool:
        return isinstance(other, DeviceRule) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return f"DeviceRule({'allow' if self.allow else 'deny'} {self.v1_line()})"

    def v1_line(self) -> str:
        """The rule as written to devices.allow / devices.deny."""
        if self.type == "a":
            return "a"
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"

    @property
    def is_wildcard_all(self) -> bool:
        """True for "a *:* rwm": it resets every earlier rule."""
        return self.type == "a"


def device_rules(devices: list) -> list[DeviceRule]:
    """Normalise linux.resources.devices (validated) into DeviceRule objects."""
    out = []
    for d in devices or []:
        major = d.get("major")
        minor = d.get("minor")
        out.append(
            DeviceRule(
                allow=bool(d.get("allow")),
                type=d.get("type") or "a",
                major=None if major is None or major == -1 else int(major),
                minor=None if minor is None or minor == -1 else int(minor),
                access=_canonical_access(d.get("access") or "rwm"),
            )
        )
    return out


def _canonical_access(access: str) -> str:
    return "".join(c for c in "rwm" if c in access)


# ------------------------------------------------------------------ validation


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, value, why: str) -> None:
        self.problems.append(f"invalid {where} {value!r}: {why}")

    def int_(self, where: str, value, lo: int | None = None, hi: int | None = None, minus_one: bool = False) -> bool:
        if value is None:
            return False
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, value, "must be an integer")
            return False
        if minus_one and value == -1:
            return True
        if lo is not None and value < lo:
            self.fail(where, value, f"must be at least {lo}" + (" (or -1 for no limit)" if minus_one else ""))
            return False
        if hi is not None and value > hi:
            self.fail(where, value, f"must be at most {hi}")
            return False
        return True


def validate(resources: dict | None, host: HostFacts, version: str = "v1") -> None:
    """Check linux.resources for ``version`` ("v1" or "v2"); raise InvalidResources listing every problem."""
    if not resources:
        return
    if not isinstance(resources, dict):
        raise InvalidResources(f"invalid linux.resources {resources!r}: must be an object")
    c = _Checker()
    _check_memory(c, resources.get("memory"))
    _check_cpu(c, resources.get("cpu"), host, version)
    _check_pids(c, resources.get("pids"))
    _check_blkio(c, resources.get("blockIO"))
    _check_hugepages(c, resources.get("hugepageLimits"), host)
    _check_network(c, resources.get("network"))
    _check_devices(c, resources.get("devices"))
    _check_rdma(c, resources.get("rdma"))
    _check_unified(c, resources.get("unified"), version)
    if c.problems:
        raise InvalidResources("; ".join(c.problems))


def _section(c: _Checker, name: str, value, kind=dict):
    if value is None:
        return None
    if not isinstance(value, kind):
        c.fail(f"linux.resources.{name}", value, f"must be {'an object' if kind is dict else 'a list'}")
        return None
    return value


def _check_memory(c: _Checker, mem) -> None:
    mem = _section(c, "memory", mem)
    if not mem:
        return
    limit_ok = c.int_("memory.limit", mem.get("limit"), lo=1, minus_one=True)
    c.int_("memory.reservation", mem.get("reservation"), lo=0, minus_one=True)
    swap = mem.get("swap")
    if c.int_("memory.swap", swap, lo=0, minus_one=True) and swap not in (0, -1) and limit_ok:
        limit = mem["limit"]
        if limit != -1 and swap < limit:
            c.fail("memory.swap", swap, f"memory+swap must be at least memory.limit ({limit})")
    c.int_("memory.kernel", mem.get("kernel"), lo=1, minus_one=True)
    c.int_("memory.kernelTCP", mem.get("kernelTCP"), lo=1, minus_one=True)
    c.int_("memory.swappiness", mem.get("swappiness"), lo=0, hi=100)
    for key in ("disableOOMKiller", "useHierarchy", "checkBeforeUpdate"):
        if key in mem and mem[key] is not None and not isinstance(mem[key], bool):
            c.fail(f"memory.{key}", mem[key], "must be true or false")


def _check_cpu(c: _Checker, cpu, host: HostFacts, version: str) -> None:
    cpu = _section(c, "cpu", cpu)
    if not cpu:
        return
    shares = cpu.get("shares")
    if shares != 0:
        c.int_("cpu.shares", shares, lo=MIN_SHARES, hi=MAX_SHARES)
    quota, period = cpu.get("quota"), cpu.get("period")
    if quota == 0:
        c.fail("cpu.quota", quota, f"a quota of 0 would never let the container run; use -1 for no limit or at least {MIN_QUOTA_US}")
    else:
        c.int_("cpu.quota", quota, lo=MIN_QUOTA_US, minus_one=True)
    if period != 0:
        c.int_("cpu.period", period, lo=MIN_PERIOD_US, hi=MAX_PERIOD_US)
    c.int_("cpu.burst", cpu.get("burst"), lo=0)
    for key in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(key) not in (None, 0) and c.int_(f"cpu.{key}", cpu.get(key), lo=0, minus_one=key == "realtimeRuntime"):
            if version == "v2":
                c.fail(f"cpu.{key}", cpu[key], "real-time scheduling limits do not exist in cgroup v2")
    rt_runtime, rt_period = cpu.get("realtimeRuntime"), cpu.get("realtimePeriod")
    if _is_int(rt_runtime) and _is_int(rt_period) and rt_period > 0 and rt_runtime > rt_period:
        c.fail("cpu.realtimeRuntime", rt_runtime, f"must not exceed cpu.realtimePeriod ({rt_period})")
    c.int_("cpu.idle", cpu.get("idle"), lo=0, hi=1)
    for key, allowed in (("cpus", host.cpus), ("mems", host.mems)):
        value = cpu.get(key)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            c.fail(f"cpu.{key}", value, "must be a list like \"0-1,3\"")
            continue
        try:
            ids = parse_list(value)
        except ValueError as exc:
            c.fail(f"cpu.{key}", value, f"{exc}; must be a list like \"0-1,3\"")
            continue
        missing = sorted(ids - allowed)
        if missing:
            have = ",".join(str(i) for i in sorted(allowed))
            c.fail(f"cpu.{key}", value, f"{','.join(map(str, missing))} not online on this host (online: {have})")


def cpu_count_problem(quota: int | None, period: int, host: HostFacts) -> str | None:
    """Why quota/period asks for more CPUs than the host has online, or None.

    The kernel accepts such a quota (it just never binds), so ``apply`` takes it as the
    OCI spec says; ``update`` refuses it, as ``docker update --cpus`` does, because there
    it is an operator's mistake (SECURITY.md case 43).
    """
    if not _is_int(quota) or quota is None or quota <= 0 or period <= 0:
        return None
    ncpu = len(host.cpus)
    if quota > period * ncpu:
        return f"invalid cpu.quota {quota}: quota/period asks for {quota / period:g} CPUs, but the host has only {ncpu}"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_pids(c: _Checker, pids) -> None:
    pids = _section(c, "pids", pids)
    if not pids:
        return
    limit = pids.get("limit")
    if limit == 0:
        c.fail("pids.limit", limit, "a limit of 0 forbids every process; use -1 for no limit")
    elif limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and limit < 0):
        c.int_("pids.limit", limit, lo=1)


def _check_blkio(c: _Checker, bio) -> None:
    bio = _section(c, "blockIO", bio)
    if not bio:
        return
    for key in ("weight", "leafWeight"):
        if bio.get(key) not in (None, 0):
            c.int_(f"blockIO.{key}", bio.get(key), lo=10, hi=1000)
    for i, dev in enumerate(_section(c, "blockIO.weightDevice", bio.get("weightDevice"), list) or []):
        where = f"blockIO.weightDevice[{i}]"
        if _check_device_id(c, where, dev):
            for key in ("weight", "leafWeight"):
                if dev.get(key) not in (None, 0):
                    c.int_(f"{where}.{key}", dev.get(key), lo=10, hi=1000)
    for name in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"):
        for i, dev in enumerate(_section(c, f"blockIO.{name}", bio.get(name), list) or []):
            where = f"blockIO.{name}[{i}]"
            if _check_device_id(c, where, dev):
                if dev.get("rate") is None:
                    c.fail(f"{where}.rate", None, "is required")
                c.int_(f"{where}.rate", dev.get("rate"), lo=0)


def _check_device_id(c: _Checker, where: str, dev) -> bool:
    if not isinstance(dev, dict):
        c.fail(where, dev, "must be an object")
        return False
    ok = True
    for key in ("major", "minor"):
        if dev.get(key) is None:
            c.fail(f"{where}.{key}", None, "is required")
            ok = False
        elif not c.int_(f"{where}.{key}", dev.get(key), lo=0, hi=UINT32):
            ok = False
    return ok


def _check_hugepages(c: _Checker, limits, host: HostFacts) -> None:
    for i, h in enumerate(_section(c, "hugepageLimits", limits, list) or []):
        where = f"hugepageLimits[{i}]"
        if not isinstance(h, dict):
            c.fail(where, h, "must be an object")
            continue
        size = h.get("pageSize")
        if size not in host.hugepage_sizes:
            sizes = ", ".join(sorted(host.hugepage_sizes)) or "none"
            c.fail(f"{where}.pageSize", size, f"not a huge page size of this host (have: {sizes})")
        if h.get("limit") is None:
            c.fail(f"{where}.limit", None, "is required")
        c.int_(f"{where}.limit", h.get("limit"), lo=0)


def _check_network(c: _Checker, net) -> None:
    net = _section(c, "network", net)
    if not net:
        return
    c.int_("network.classID", net.get("classID"), lo=0, hi=UINT32)
    for i, p in enumerate(_section(c, "network.priorities", net.get("priorities"), list) or []):
        where = f"network.priorities[{i}]"
        if not isinstance(p, dict):
            c.fail(where, p, "must be an object")
            continue
        if not isinstance(p.get("name"), str) or not _is_ifname(p["name"]):
            c.fail(f"{where}.name", p.get("name"), "must be an interface name")
        c.int_(f"{where}.priority", p.get("priority"), lo=0, hi=UINT32)


def _check_devices(c: _Checker, devices) -> None:
    for i, d in enumerate(_section(c, "devices", devices, list) or []):
        where = f"devices[{i}]"
        if not isinstance(d, dict):
            c.fail(where, d, "must be an object")
            continue
        if not isinstance(d.get("allow"), bool):
            c.fail(f"{where}.allow", d.get("allow"), "is required and must be true or false")
        if d.get("type") not in (None, "a", "b", "c"):
            c.fail(f"{where}.type", d.get("type"), 'must be "a", "b" or "c"')
        for key in ("major", "minor"):
            if d.get(key) is not None:
                c.int_(f"{where}.{key}", d.get(key), lo=0, hi=UINT32, minus_one=True)
        access = d.get("access")
        if access is not None and (not isinstance(access, str) or len(access) > 3 or not set(access) <= {"r", "w", "m"}):
            c.fail(f"{where}.access", access, 'must be made of "r", "w" and "m"')


def _check_rdma(c: _Checker, rdma) -> None:
    rdma = _section(c, "rdma", rdma)
    for name, lim in (rdma or {}).items():
        if not _is_ifname(str(name)) and not _is_rdma_name(str(name)):
            c.fail("rdma device", name, "must be a device name")
        if not isinstance(lim, dict):
            c.fail(f"rdma.{name}", lim, "must be an object")
            continue
        c.int_(f"rdma.{name}.hcaHandles", lim.get("hcaHandles"), lo=0, hi=UINT32)
        c.int_(f"rdma.{name}.hcaObjects", lim.get("hcaObjects"), lo=0, hi=UINT32)


def _check_unified(c: _Checker, unified, version: str) -> None:
    unified = _section(c, "unified", unified)
    if not unified:
        return
    if version != "v2":
        c.fail("linux.resources.unified", unified, "cgroup v2 settings need a cgroup v2 host")
        return
    for key, value in unified.items():
        if not isinstance(key, str) or not _is_unified_key(key) or key in _UNIFIED_FORBIDDEN:
            c.fail("unified key", key, 'must name a limit file like "memory.high" (no "/", not the cgroup.* files the runtime manages)')
        if not isinstance(value, str) or "\n" in value or "\x00" in value:
            c.fail(f"unified.{key}", value, "must be a one-line string")
