"""The five capability sets of process.capabilities: names, masks, and applying them."""

import errno

from runtime.oci import linux
from runtime.oci.errors import SpecError, SyscallError

NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]
NUMBERS = {name: i for i, name in enumerate(NAMES)}
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def parse(caps: dict | None) -> dict[str, int]:
    """Turn process.capabilities into {set: mask}; an unknown name is a SpecError."""
    result = {s: 0 for s in SETS}
    for s in SETS:
        for name in (caps or {}).get(s) or []:
            num = NUMBERS.get(name if name.startswith("CAP_") else f"CAP_{name}")
            if num is None:
                raise SpecError(f"invalid config: unknown capability {name!r} in process.capabilities.{s}")
            result[s] |= 1 << num
    return result


def names(mask: int) -> list[str]:
    """The capability names set in MASK."""
    return [n for i, n in enumerate(NAMES) if mask >> i & 1]


def drop_bounding(sets: dict[str, int], host=None) -> None:
    """Drop every capability outside the bounding set (needs CAP_SETPCAP, so before the uid switch)."""
    h = host or linux.host()
    for cap in range(last_cap() + 1):
        if not sets["bounding"] >> cap & 1:
            try:
                h.prctl(linux.PR_CAPBSET_DROP, cap)
            except SyscallError as e:
                if e.errno != errno.EINVAL:  # a cap this kernel does not know
                    raise


def available(host=None) -> int:
    """The capabilities this process could still hold: its permitted set."""
    return (host or linux.host()).capget()[1]


def clamp(sets: dict[str, int], avail: int) -> tuple[dict[str, int], int]:
    """Drop from every set what the runtime itself does not have; return (sets, mask of dropped caps)."""
    out = {k: v & avail for k, v in sets.items()}
    dropped = 0
    for v in sets.values():
        dropped |= v & ~avail
    return out, dropped


def apply(sets: dict[str, int], host=None) -> None:
    """Set effective/permitted/inheritable, then the ambient set (after the uid switch)."""
    h = host or linux.host()
    h.capset(sets["effective"], sets["permitted"], sets["inheritable"])
    h.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(last_cap() + 1):
        if sets["ambient"] >> cap & 1:
            try:
                h.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, cap)
            except SyscallError as e:
                # The kernel refuses an ambient cap missing from permitted or inheritable; runc ignores it too.
                if e.errno != errno.EPERM:
                    raise
