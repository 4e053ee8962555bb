"""Parsers for docker's flag values (sizes, CPUs, ports, volumes, ulimits, restart policies, env files).

Pure functions: each returns a normalised value or raises InvalidArgument naming the flag.
"""

from __future__ import annotations

import os
import re
import resource
from pathlib import Path

from runtime.engine.errors import InvalidArgument
from runtime.image.values import Frozen

# Patterns only some flags use: re compiles (and caches) them on first use, not in every `run`.
_SIZE = r"(\d+(?:\.\d+)?)\s*([bkmgtp]?)i?b?"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def size(value: str | int | None, flag: str) -> int | None:
    """`64m`, `1g`, `512k`, `1024` -> bytes; None/"" -> None; `-1` -> -1 (unlimited)."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        if value < -1:
            raise InvalidArgument(f"invalid {flag} {value}: must be a positive size or -1")
        return value
    v = str(value).strip()
    if v == "-1":
        return -1
    m = re.fullmatch(_SIZE, v, re.IGNORECASE)
    if not m:
        raise InvalidArgument(f"invalid {flag} {value!r}: expected a size like 64m, 1g or 512k")
    n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if n > 1 << 62:
        raise InvalidArgument(f"invalid {flag} {value!r}: too large")
    return n


def cpus(value: str | float | None) -> float | None:
    """`--cpus 1.5` -> 1.5, checked against this host's CPU count."""
    if value is None or value == "":
        return None
    try:
        n = float(value)
    except ValueError:
        raise InvalidArgument(f"invalid --cpus {value!r}: expected a number like 0.5 or 2") from None
    if not (n > 0) or n != n:
        raise InvalidArgument(f"invalid --cpus {value!r}: must be greater than 0")
    have = os.cpu_count() or 1
    if n > have:
        raise InvalidArgument(f"invalid --cpus {value!r}: range of CPUs is from 0.01 to {have}.00, as there are only {have} CPUs available")
    return n


def integer(value: str | int | None, flag: str, lo: int | None = None, hi: int | None = None) -> int | None:
    """An integer flag within [lo, hi]."""
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid {flag} {value!r}: expected an integer") from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        rng = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
        raise InvalidArgument(f"invalid {flag} {value!r}: must be in {rng}")
    return n


_CPUSET = r"\d+(-\d+)?(,\d+(-\d+)?)*"


def cpuset(value: str | None, flag: str, limit: int | None = None) -> str | None:
    """`0-1,3` style lists; with `limit`, every index must be below it."""
    if value is None or value == "":
        return None
    v = str(value).strip()
    if not re.fullmatch(_CPUSET, v):
        raise InvalidArgument(f"invalid {flag} {value!r}: expected a list like 0-1,3")
    for part in v.split(","):
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            raise InvalidArgument(f"invalid {flag} {value!r}: range {part} is reversed")
        if limit is not None and int(hi or lo) >= limit:
            raise InvalidArgument(f"invalid {flag} {value!r}: this host has only {limit} (0-{limit - 1})")
    return v


class RestartPolicy(Frozen):
    """docker's --restart: name and, for on-failure, the most retries (0 = unlimited)."""

    __slots__ = ("name", "max_retries")

    def __init__(self, name: str = "no", max_retries: int = 0) -> None:
        self.name = name
        self.max_retries = max_retries

    def __str__(self) -> str:
        return f"{self.name}:{self.max_retries}" if self.name == "on-failure" and self.max_retries else self.name


def restart(value: str | None) -> RestartPolicy:
    """no | always | unless-stopped | on-failure[:N]."""
    if not value:
        return RestartPolicy()
    name, _, n = str(value).partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid --restart {value!r}: use no, always, unless-stopped or on-failure[:N]")
    if n and name != "on-failure":
        raise InvalidArgument(f"invalid --restart {value!r}: only on-failure takes a retry count")
    retries = integer(n, "--restart retry count", 0, 1 << 31) if n else 0
    return RestartPolicy(name, retries or 0)


class Port(Frozen):
    """One -p mapping: host_ip:host_port -> container_port/proto (host_port 0 = any free port)."""

    __slots__ = ("container_port", "proto", "host_ip", "host_port")

    def __init__(self, container_port: int, proto: str = "tcp", host_ip: str = "", host_port: int = 0) -> None:
        self.container_port = container_port
        self.proto = proto
        self.host_ip = host_ip
        self.host_port = host_port


def ports(specs: list[str] | tuple[str, ...]) -> list[Port]:
    """`-p [IP:][HOST:]CONTAINER[/PROTO]` values (ranges of equal length too), as the network layer
    that publishes them parses them (tcp and udp over IPv4)."""
    if not specs:
        return []
    from runtime.network.errors import InvalidArgument as InvalidPort  # only with -p: it loads socket
    from runtime.network.ports import parse_publish

    out: list[Port] = []
    for spec in specs:
        try:
            parsed = parse_publish(spec)
        except InvalidPort as exc:
            raise InvalidArgument(f"-p {spec}: {exc}") from None
        out.extend(Port(p.container_port, p.proto, "" if p.host_ip == "0.0.0.0" else p.host_ip, p.host_port)
                   for p in parsed)
    seen = set()
    for p in out:
        if p.host_port:
            key = (p.host_ip, p.host_port, p.proto)
            if key in seen:
                raise InvalidArgument(f"invalid -p: host port {p.host_port}/{p.proto} is published twice")
            seen.add(key)
    return out


class Volume(Frozen):
    """One -v: a bind mount (source is an absolute host path), a named or an anonymous volume."""

    __slots__ = ("target", "source", "kind", "read_only", "options")

    def __init__(self, target: str, source: str = "", kind: str = "volume", read_only: bool = False,
                 options: tuple[str, ...] = ()) -> None:
        self.target = target
        self.source = source  # host path, volume name, or "" for anonymous
        self.kind = kind  # "bind" | "volume"
        self.read_only = read_only
        self.options = options


_VOLUME_OPTS = {"ro", "rw", "z", "Z", "shared", "rshared", "slave", "rslave", "private", "rprivate", "nocopy"}


def _container_path(p: str, spec: str) -> str:
    if not p.startswith("/"):
        raise InvalidArgument(f"invalid -v {spec!r}: the container path {p!r} must be absolute")
    norm = os.path.normpath(p)
    if norm == "/":
        raise InvalidArgument(f"invalid -v {spec!r}: cannot mount over /")
    if norm == "/proc" or norm.startswith("/proc/") or norm == "/sys" or norm.startswith("/sys/"):
        # CVE-2019-16884: a volume over /proc fakes /proc/self/attr and friends.
        raise InvalidArgument(f"invalid -v {spec!r}: cannot mount a volume over {norm}")
    return norm


def volumes(specs: list[str] | tuple[str, ...]) -> list[Volume]:
    """`-v [SOURCE:]TARGET[:OPTIONS]` values; a SOURCE starting with / (or .) is a bind mount."""
    from runtime.engine.names import validate_name

    out: list[Volume] = []
    for spec in specs:
        parts = spec.split(":")
        opts: tuple[str, ...] = ()
        if len(parts) == 1:
            src, tgt = "", parts[0]
        elif len(parts) == 2:
            if parts[1].startswith("/"):
                src, tgt = parts
            else:
                src, tgt, opts = "", parts[0], tuple(parts[1].split(","))
        elif len(parts) == 3:
            src, tgt, opts = parts[0], parts[1], tuple(parts[2].split(","))
        else:
            raise InvalidArgument(f"invalid -v {spec!r}: expected [SOURCE:]TARGET[:OPTIONS]")
        bad = [o for o in opts if o not in _VOLUME_OPTS]
        if bad:
            raise InvalidArgument(f"invalid -v {spec!r}: unknown option {bad[0]!r}")
        tgt = _container_path(tgt, spec)
        ro = "ro" in opts
        if src.startswith(("/", ".")):
            if not src.startswith("/"):
                src = os.path.abspath(src)
            out.append(Volume(tgt, os.path.normpath(src), "bind", ro, opts))
        elif src:
            out.append(Volume(tgt, validate_name(src, "volume"), "volume", ro, opts))
        else:
            out.append(Volume(tgt, "", "volume", ro, opts))
    targets = [v.target for v in out]
    dup = {t for t in targets if targets.count(t) > 1}
    if dup:
        raise InvalidArgument(f"invalid -v: duplicate mount point {sorted(dup)[0]}")
    return out


_RLIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}


def ulimits(specs: list[str] | tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """`--ulimit nofile=1024:2048` -> {"RLIMIT_NOFILE": (1024, 2048)}; soft <= hard <= this host's hard limit."""
    out: dict[str, tuple[int, int]] = {}
    for spec in specs:
        name, eq, val = spec.partition("=")
        if not eq or name not in _RLIMITS:
            raise InvalidArgument(f"invalid --ulimit {spec!r}: expected NAME=SOFT[:HARD] with NAME one of {', '.join(sorted(_RLIMITS))}")
        soft_s, _, hard_s = val.partition(":")
        soft = integer(soft_s, f"--ulimit {name}", -1)
        hard = integer(hard_s, f"--ulimit {name}", -1) if hard_s else soft
        assert soft is not None and hard is not None
        soft = resource.RLIM_INFINITY if soft == -1 else soft
        hard = resource.RLIM_INFINITY if hard == -1 else hard
        if soft > hard:
            raise InvalidArgument(f"invalid --ulimit {spec!r}: soft limit {soft} is above hard limit {hard}")
        key = _RLIMITS[name]
        host_hard = resource.getrlimit(getattr(resource, key))[1]
        if host_hard != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard > host_hard):
            raise InvalidArgument(f"invalid --ulimit {spec!r}: the hard limit is above this host's ({host_hard})")
        out[key] = (soft, hard)
    return out


def env_list(items: list[str] | tuple[str, ...] | dict[str, str]) -> list[str]:
    """`-e K=V` / `-e K` (value from the host) -> ["K=V", ...]."""
    if isinstance(items, dict):
        items = [f"{k}={v}" for k, v in items.items()]
    out = []
    for item in items:
        k, eq, v = item.partition("=")
        if not k or "\0" in item or any(c.isspace() for c in k):
            raise InvalidArgument(f"invalid environment variable {item[:80]!r}")
        if not eq:
            if k not in os.environ:
                continue
            v = os.environ[k]
        out.append(f"{k}={v}")
    return out


def env_file(path: str) -> list[str]:
    """Lines of an --env-file: K=V or K, '#' comments and blank lines skipped."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read --env-file {path}: {exc.strerror}") from None
    if len(data) > 1 << 20:
        raise InvalidArgument(f"invalid --env-file {path}: larger than 1 MiB")
    lines = []
    for raw in data.decode(errors="replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return env_list(lines)


def labels(items: list[str] | tuple[str, ...] | dict[str, str]) -> dict[str, str]:
    """`--label k=v` values -> dict (a label never selects host behaviour; it is data)."""
    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise InvalidArgument(f"invalid --label {item!r}: expected KEY[=VALUE]")
        out[k] = v
    return out


_SIGNALS = None


def signal_number(value: str | int | None, default: int = 15) -> int:
    """`TERM`, `SIGTERM`, `15` -> 15."""
    import signal as _signal

    if value is None or value == "":
        return default
    if isinstance(value, int) or str(value).isdigit():
        n = int(value)
        if not 1 <= n <= 64:
            raise InvalidArgument(f"invalid signal {value!r}")
        return n
    name = str(value).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(_signal, name, None)
    if not isinstance(sig, _signal.Signals):
        raise InvalidArgument(f"invalid signal {value!r}")
    return int(sig)


def duration(value: str | float | int | None, flag: str) -> float | None:
    """Docker durations: `10`, `1.5s`, `300ms`, `2m`, `1h`."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(value).strip())
    if not m:
        raise InvalidArgument(f"invalid {flag} {value!r}: expected a duration like 10s or 2m")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
