"""ContainerSpec (what a user asks for) and the OCI config.json built from it and the image config.

`ContainerSpec` takes docker's flags as plain values; `normalise()` validates every one of them
before anything is created, and `oci_config()` turns a normalised spec plus the image config
into the runtime's config.json (docker's defaults: capabilities, masked paths, mounts, seccomp).
"""

from __future__ import annotations

import os

from runtime.engine import parse
from runtime.engine.errors import InvalidArgument
from runtime.image.values import Value

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
ALL_CAPS = [
    "CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_KILL", "CAP_LEASE", "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
    "CAP_SETUID", "CAP_SYSLOG", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE",
    "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_WAKE_ALARM",
]
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Syscalls docker's default profile refuses (EPERM) to a container without extra capabilities.
# virtlab's default profile is this denylist: smaller than docker's allowlist, same intent.
SECCOMP_DENY = [
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "move_pages",
    "nfsservctl", "open_by_handle_at", "perf_event_open", "quotactl", "reboot", "request_key",
    "set_mempolicy", "settimeofday", "swapon", "swapoff", "sysfs", "_sysctl", "uselib",
    "userfaultfd", "ustat", "vm86", "vm86old",
]
# Allowed only with CAP_SYS_ADMIN (docker's `includes.caps` rules).
SECCOMP_SYS_ADMIN = [
    "mount", "umount2", "unshare", "setns", "pivot_root", "name_to_handle_at", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "syslog",
]


class ContainerSpec(Value):
    """What to run and how: docker run's flags as values (strings are parsed by normalise()).

    A list or dict field given as None (the default) starts empty. The fields are named in
    `__slots__` and again in `__init__`'s typed signature, which mypy checks every caller against
    (a generated `__init__` would not be); a field missing from `__slots__` fails on the first
    construction. runtime.cli.runcore.spec() fills them from runopts' table.
    """

    __slots__ = (
        "image", "cmd", "entrypoint", "name", "env", "env_files", "workdir", "user", "hostname",
        "network", "tty", "stdin_open", "volumes", "ports", "publish_all", "memory", "memory_swap",
        "memory_reservation", "kernel_memory", "cpus", "cpu_shares", "cpu_quota", "cpu_period",
        "cpu_rt_period", "cpu_rt_runtime", "cpuset_cpus", "cpuset_mems", "pids_limit", "blkio_weight",
        "restart", "init", "read_only", "cap_add", "cap_drop", "security_opt", "ulimits", "labels",
        "auto_remove", "stop_signal", "stop_timeout", "runtime",
    )

    def __init__(
        self,
        image: str,
        cmd: list[str] | None = None,
        entrypoint: list[str] | None = None,
        name: str | None = None,
        env: dict[str, str] | list[str] | None = None,
        env_files: list[str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        hostname: str | None = None,
        network: str = "bridge",
        tty: bool = False,
        stdin_open: bool = False,
        volumes: list[str] | None = None,
        ports: list[str] | None = None,
        publish_all: bool = False,
        memory: str | int | None = None,
        memory_swap: str | int | None = None,
        memory_reservation: str | int | None = None,
        kernel_memory: str | int | None = None,
        cpus: str | float | None = None,
        cpu_shares: int | None = None,
        cpu_quota: int | None = None,
        cpu_period: int | None = None,
        cpu_rt_period: int | None = None,
        cpu_rt_runtime: int | None = None,
        cpuset_cpus: str | None = None,
        cpuset_mems: str | None = None,
        pids_limit: int | None = None,
        blkio_weight: int | None = None,
        restart: str = "no",
        init: bool = False,
        read_only: bool = False,
        cap_add: list[str] | None = None,
        cap_drop: list[str] | None = None,
        security_opt: list[str] | None = None,
        ulimits: list[str] | None = None,
        labels: dict[str, str] | list[str] | None = None,
        auto_remove: bool = False,
        stop_signal: str | None = None,
        stop_timeout: int | None = None,
        runtime: str | None = None,
    ) -> None:
        self.image = image
        self.cmd = cmd
        self.entrypoint = entrypoint
        self.name = name
        self.env: dict[str, str] | list[str] = {} if env is None else env
        self.env_files: list[str] = [] if env_files is None else env_files
        self.workdir = workdir
        self.user = user
        self.hostname = hostname
        self.network = network
        self.tty = tty
        self.stdin_open = stdin_open
        self.volumes: list[str] = [] if volumes is None else volumes
        self.ports: list[str] = [] if ports is None else ports
        self.publish_all = publish_all
        self.memory = memory
        self.memory_swap = memory_swap
        self.memory_reservation = memory_reservation
        self.kernel_memory = kernel_memory
        self.cpus = cpus
        self.cpu_shares = cpu_shares
        self.cpu_quota = cpu_quota
        self.cpu_period = cpu_period
        self.cpu_rt_period = cpu_rt_period
        self.cpu_rt_runtime = cpu_rt_runtime
        self.cpuset_cpus = cpuset_cpus
        self.cpuset_mems = cpuset_mems
        self.pids_limit = pids_limit
        self.blkio_weight = blkio_weight
        self.restart = restart
        self.init = init
        self.read_only = read_only
        self.cap_add: list[str] = [] if cap_add is None else cap_add
        self.cap_drop: list[str] = [] if cap_drop is None else cap_drop
        self.security_opt: list[str] = [] if security_opt is None else security_opt
        self.ulimits: list[str] = [] if ulimits is None else ulimits
        self.labels: dict[str, str] | list[str] = {} if labels is None else labels
        self.auto_remove = auto_remove
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.runtime = runtime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return self.as_dict()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerSpec:
        """Rebuild a spec from to_dict() output (unknown keys are ignored)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__slots__})


def _caps(names: list[str], flag: str) -> list[str]:
    out = []
    for n in names:
        up = n.upper()
        if up == "ALL":
            out.append("ALL")
            continue
        cap = up if up.startswith("CAP_") else "CAP_" + up
        if cap not in ALL_CAPS:
            raise InvalidArgument(f"invalid {flag} {n!r}: unknown capability")
        out.append(cap)
    return out


def resources(spec: ContainerSpec) -> dict[str, Any]:
    """Validated resource values of a spec (docker names, bytes and counts; None = not set)."""
    mem = parse.size(spec.memory, "--memory")
    swap = parse.size(spec.memory_swap, "--memory-swap")
    resv = parse.size(spec.memory_reservation, "--memory-reservation")
    kmem = parse.size(spec.kernel_memory, "--kernel-memory")
    if mem is not None and 0 <= mem < 6 * 1024 * 1024:
        raise InvalidArgument(f"invalid --memory {spec.memory!r}: the minimum is 6 MiB")
    if swap is not None and swap != -1:
        if mem is None or mem == -1:
            raise InvalidArgument("invalid --memory-swap: set --memory as well")
        if swap < mem:
            raise InvalidArgument("invalid --memory-swap: it must be at least --memory (it is memory plus swap)")
    if resv is not None and mem not in (None, -1) and resv > mem:  # type: ignore[operator]
        raise InvalidArgument("invalid --memory-reservation: it must be below --memory")
    ncpu = os.cpu_count() or 1
    c = parse.cpus(spec.cpus)
    period = parse.integer(spec.cpu_period, "--cpu-period", 1000, 1_000_000)
    quota = parse.integer(spec.cpu_quota, "--cpu-quota", -1)
    if quota is not None and 0 <= quota < 1000:
        raise InvalidArgument(f"invalid --cpu-quota {quota}: the minimum is 1000 (1 ms)")
    if c is not None and (quota is not None or period is not None):
        raise InvalidArgument("conflicting options: --cpus and --cpu-period/--cpu-quota cannot be used together")
    return {
        "memory": mem,
        "memory_swap": swap,
        "memory_reservation": resv,
        "kernel_memory": kmem,
        "cpus": c,
        "cpu_shares": parse.integer(spec.cpu_shares, "--cpu-shares", 2, 262144)
        if spec.cpu_shares not in (None, 0, "0") else None,
        "cpu_quota": quota,
        "cpu_period": period,
        "cpu_rt_period": parse.integer(spec.cpu_rt_period, "--cpu-rt-period", 1, 1_000_000),
        "cpu_rt_runtime": parse.integer(spec.cpu_rt_runtime, "--cpu-rt-runtime", -1),
        "cpuset_cpus": parse.cpuset(spec.cpuset_cpus, "--cpuset-cpus", ncpu),
        "cpuset_mems": parse.cpuset(spec.cpuset_mems, "--cpuset-mems", _numa_nodes()),
        "pids_limit": _pids(spec.pids_limit),
        "blkio_weight": _blkio(spec.blkio_weight),
    }


def _pids(v: Any) -> int | None:
    n = parse.integer(v, "--pids-limit", -1)
    if n == 0:
        raise InvalidArgument("invalid --pids-limit 0: use a positive number, or -1 for unlimited")
    return n


def _blkio(v: Any) -> int | None:
    n = parse.integer(v, "--blkio-weight", 0, 1000)
    if n is not None and n != 0 and n < 10:
        raise InvalidArgument(f"invalid --blkio-weight {n}: must be 0 or in 10..1000")
    return n or None


def _numa_nodes() -> int:
    try:
        return len([n for n in os.listdir("/sys/devices/system/node") if n.startswith("node")]) or 1
    except OSError:
        return 1


def normalise(spec: ContainerSpec) -> dict[str, Any]:
    """Validate every field; returns the parsed values the engine stores in the record."""
    if not spec.image or len(spec.image) > 512:
        raise InvalidArgument("invalid image reference: empty or longer than 512 characters")
    env = parse.env_list(spec.env)
    for f in spec.env_files:
        env = parse.env_file(f) + env
    if spec.workdir is not None:
        if not spec.workdir.startswith("/"):
            raise InvalidArgument(f"invalid --workdir {spec.workdir!r}: the path must be absolute")
        if os.path.normpath(spec.workdir).startswith("/proc/self/fd") or "\0" in spec.workdir:
            raise InvalidArgument(f"invalid --workdir {spec.workdir!r}: not inside the container's root")
    if spec.hostname is not None:
        import re

        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62})", spec.hostname):
            raise InvalidArgument(f"invalid --hostname {spec.hostname[:80]!r}")
    if spec.user is not None and (len(spec.user) > 256 or not spec.user or "\0" in spec.user or "\n" in spec.user):
        raise InvalidArgument("invalid --user value")
    net = spec.network or "bridge"
    if net.startswith("container:"):
        raise InvalidArgument("--network container:NAME is not supported")
    if net not in ("none", "host"):
        from runtime.engine.names import validate_name

        validate_name(net, "network")
    seccomp = "default"
    no_new_privs = False
    for opt in spec.security_opt:
        key, sep, val = opt.partition("=")
        if opt in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"):
            no_new_privs = True
        elif key == "seccomp" and sep:
            if val != "unconfined" and not os.path.isfile(val):
                raise InvalidArgument(f"invalid --security-opt {opt!r}: no such profile file")
            seccomp = val
        elif key in ("apparmor", "label") and sep:
            continue  # no LSM on these hosts; accepted and recorded as docker does
        else:
            raise InvalidArgument(f"invalid --security-opt {opt!r}")
    stop_signal = parse.signal_number(spec.stop_signal) if spec.stop_signal else None
    policy = parse.restart(spec.restart)
    if policy.name != "no" and spec.auto_remove:
        raise InvalidArgument("conflicting options: --restart and --rm cannot be used together")
    ports = parse.ports(spec.ports)
    if ports and net in ("none", "host"):
        raise InvalidArgument(f"cannot publish ports with --network {net}")
    return {
        "env": env,
        "volumes": [v.as_dict() for v in parse.volumes(spec.volumes)],
        "ports": [p.as_dict() for p in ports],
        "resources": resources(spec),
        "restart": {"Name": policy.name, "MaximumRetryCount": policy.max_retries},
        "cap_add": _caps(spec.cap_add, "--cap-add"),
        "cap_drop": _caps(spec.cap_drop, "--cap-drop"),
        "seccomp": seccomp,
        "no_new_privileges": no_new_privs,
        "ulimits": {k: list(v) for k, v in parse.ulimits(spec.ulimits).items()},
        "labels": parse.labels(spec.labels),
        "network": net,
        "stop_signal": stop_signal,
    }


def effective_caps(norm: dict[str, Any]) -> list[str]:
    """docker's default set, plus --cap-add, minus --cap-drop."""
    caps = list(DEFAULT_CAPS)
    if "ALL" in norm["cap_add"]:
        caps = list(ALL_CAPS)
    caps += [c for c in norm["cap_add"] if c != "ALL" and c not in caps]
    if "ALL" in norm["cap_drop"]:
        caps = [c for c in caps if c in norm["cap_add"]]
    return [c for c in caps if c not in norm["cap_drop"]]


def seccomp_profile(caps: list[str]) -> dict[str, Any]:
    """virtlab's default seccomp profile: EPERM for the syscalls docker denies."""
    deny = list(SECCOMP_DENY)
    if "CAP_SYS_ADMIN" not in caps:
        deny += SECCOMP_SYS_ADMIN
    for cap, names in (("CAP_SYS_TIME", ["settimeofday", "clock_settime", "clock_adjtime"]),
                       ("CAP_SYS_MODULE", ["init_module", "finit_module", "delete_module"]),
                       ("CAP_SYS_BOOT", ["reboot"]), ("CAP_SYS_PACCT", ["acct"])):
        if cap in caps:
            deny = [d for d in deny if d not in names]
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": sorted(set(deny)), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


def oci_resources(res: dict[str, Any]) -> dict[str, Any]:
    """Engine resource values -> OCI linux.resources."""
    out: dict[str, Any] = {}
    mem: dict[str, Any] = {}
    if res.get("memory") is not None:
        mem["limit"] = res["memory"]
    if res.get("memory_swap") is not None:
        mem["swap"] = res["memory_swap"]
    elif res.get("memory") not in (None, -1):
        mem["swap"] = res["memory"] * 2  # docker: swap defaults to twice the memory limit
    if res.get("memory_reservation") is not None:
        mem["reservation"] = res["memory_reservation"]
    if res.get("kernel_memory") is not None:
        mem["kernel"] = res["kernel_memory"]
    if mem:
        out["memory"] = mem
    cpu: dict[str, Any] = {}
    if res.get("cpus") is not None:
        cpu["period"] = 100000
        cpu["quota"] = int(res["cpus"] * 100000)
    if res.get("cpu_period") is not None:
        cpu["period"] = res["cpu_period"]
    if res.get("cpu_quota") is not None:
        cpu["quota"] = res["cpu_quota"]
    if res.get("cpu_shares") is not None:
        cpu["shares"] = res["cpu_shares"]
    if res.get("cpu_rt_period") is not None:
        cpu["realtimePeriod"] = res["cpu_rt_period"]
    if res.get("cpu_rt_runtime") is not None:
        cpu["realtimeRuntime"] = res["cpu_rt_runtime"]
    if res.get("cpuset_cpus"):
        cpu["cpus"] = res["cpuset_cpus"]
    if res.get("cpuset_mems"):
        cpu["mems"] = res["cpuset_mems"]
    if cpu:
        out["cpu"] = cpu
    if res.get("pids_limit") is not None:
        out["pids"] = {"limit": res["pids_limit"]}
    if res.get("blkio_weight"):
        out["blockIO"] = {"weight": res["blkio_weight"]}
    return out


def _device_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for typ, major, minor in (("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9),
                              ("c", 5, 0), ("c", 5, 1), ("c", 5, 2), ("c", 136, None)):
        rule: dict[str, Any] = {"allow": True, "type": typ, "major": major, "access": "rwm"}
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def oci_config(
    *,
    args: list[str],
    env: list[str],
    cwd: str,
    uid: int,
    gid: int,
    groups: list[int],
    hostname: str,
    tty: bool,
    norm: dict[str, Any],
    read_only: bool,
    cgroups_path: str,
    netns: str | None,
    mounts: list[dict[str, Any]],
    rootfs: str = "merged",
) -> dict[str, Any]:
    """The OCI runtime config.json for one container start."""
    caps = effective_caps(norm)
    rlimits = {"RLIMIT_NOFILE": [1024, 1024]}
    rlimits.update({k: list(v) for k, v in norm["ulimits"].items()})
    process: dict[str, Any] = {
        "terminal": tty,
        "user": {"uid": uid, "gid": gid, **({"additionalGids": groups} if groups else {})},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": k, "soft": v[0], "hard": v[1]} for k, v in sorted(rlimits.items())],
        "noNewPrivileges": norm["no_new_privileges"],
    }
    if uid != 0:
        process["capabilities"]["effective"] = []
        process["capabilities"]["permitted"] = []
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "mount")]
    if norm["network"] != "host":  # docker shares the host's UTS namespace with its network
        namespaces.append({"type": "uts"})
        namespaces.append({"type": "network", **({"path": netns} if netns else {})})
    base_mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        "resources": {"devices": _device_rules(), **oci_resources(norm["resources"])},
        "maskedPaths": MASKED_PATHS,
        "readonlyPaths": READONLY_PATHS,
    }
    if norm["seccomp"] == "default":
        linux["seccomp"] = seccomp_profile(caps)
    elif norm["seccomp"] != "unconfined":
        import json

        with open(norm["seccomp"], "rb") as f:
            data = f.read(4 << 20)
        try:
            linux["seccomp"] = _docker_profile_to_oci(json.loads(data))
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"invalid seccomp profile {norm['seccomp']}: {exc}") from None
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": read_only},
        "mounts": base_mounts + mounts,
        "linux": linux,
    }
    if norm["network"] != "host":  # with the host's UTS namespace the hostname is the host's
        config["hostname"] = hostname
    return config


def _docker_profile_to_oci(p: dict[str, Any]) -> dict[str, Any]:
    """A docker seccomp profile (JSON) -> the OCI linux.seccomp object."""
    if not isinstance(p, dict) or "defaultAction" not in p:
        raise ValueError("no defaultAction")
    arches = list(p.get("architectures") or [])
    for m in p.get("archMap") or []:
        arches += [m.get("architecture"), *(m.get("subArchitectures") or [])]
    calls = []
    for s in p.get("syscalls") or []:
        names = s.get("names") or ([s["name"]] if s.get("name") else [])
        if not names:
            continue
        rule = {"names": names, "action": s["action"]}
        if s.get("args"):
            rule["args"] = s["args"]
        if "errnoRet" in s:
            rule["errnoRet"] = s["errnoRet"]
        calls.append(rule)
    out: dict[str, Any] = {"defaultAction": p["defaultAction"], "syscalls": calls}
    if arches:
        out["architectures"] = [a for a in arches if a]
    if "defaultErrnoRet" in p:
        out["defaultErrnoRet"] = p["defaultErrnoRet"]
    return out
