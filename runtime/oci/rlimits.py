"""process.rlimits: parse RLIMIT_* names and apply them with setrlimit."""

import errno
import os
import resource

from runtime.oci.errors import SpecError, SyscallError

NAMES = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
_INF = resource.RLIM_INFINITY
_MAX = 0xFFFFFFFFFFFFFFFF


def parse(rlimits: list | None) -> list[tuple[int, int, int, str]]:
    """Turn process.rlimits into [(resource, soft, hard, name)]; bad entries are SpecErrors."""
    out = []
    seen = set()
    for rl in rlimits or []:
        name = rl.get("type")
        if name not in NAMES:
            raise SpecError(f"invalid config: unknown rlimit type {name!r}")
        if name in seen:
            raise SpecError(f"invalid config: rlimit {name} is listed twice")
        seen.add(name)
        soft, hard = rl.get("soft"), rl.get("hard")
        for v in (soft, hard):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > _MAX:
                raise SpecError(f"invalid config: rlimit {name} values must be integers, got {rl!r}")
        soft = _INF if soft >= _MAX else soft
        hard = _INF if hard >= _MAX else hard
        out.append((NAMES[name], soft, hard, name))
    return out


def apply(limits: list[tuple[int, int, int, str]], setrlimit=resource.setrlimit) -> None:
    """Apply parsed limits; raising above the hard limit without CAP_SYS_RESOURCE fails with EPERM, as in runc."""
    for res, soft, hard, name in limits:
        try:
            setrlimit(res, (soft, hard))
        except ValueError as e:
            # CPython maps both EPERM and EINVAL of setrlimit(2) to ValueError; its message tells them apart.
            err = errno.EPERM if "not allowed" in str(e) else errno.EINVAL
            raise SyscallError(f"error setting rlimit type {name} to {soft}:{hard}: {os.strerror(err)}",
                               err) from None
        except OSError as e:
            raise SyscallError(f"error setting rlimit type {name} to {soft}:{hard}: {e.strerror}",
                               e.errno) from None
