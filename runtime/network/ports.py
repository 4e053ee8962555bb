"""Published ports: `-p` parsing, the PortSpec record, and host-port checks before anything is created.

A published port is a DNAT rule (see firewall.py), not a proxy process, so nothing holds
the host port open; this module checks that no process has it bound and that no other
container of this store published it, before any link or rule is made.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import asdict, dataclass

from runtime.network.errors import InvalidArgument, PortInUse

PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class PortSpec:
    """One published port. host_port 0 means "pick a free one" (-P, or -p CONTAINERPORT)."""

    host_ip: str = "0.0.0.0"
    host_port: int = 0
    container_port: int = 0
    proto: str = "tcp"

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict:
        """Plain dict for records and JSON."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.proto}"


def validate(spec: PortSpec) -> None:
    """Raise InvalidArgument unless the spec is a usable IPv4 TCP/UDP mapping."""
    if spec.proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid protocol {spec.proto!r} for port {spec.container_port}: use tcp or udp")
    if not isinstance(spec.container_port, int) or not 1 <= spec.container_port <= 65535:
        raise InvalidArgument(f"invalid container port {spec.container_port!r}: must be 1-65535")
    if not isinstance(spec.host_port, int) or not 0 <= spec.host_port <= 65535:
        raise InvalidArgument(f"invalid host port {spec.host_port!r}: must be 1-65535")
    try:
        ip = ipaddress.ip_address(spec.host_ip)
    except ValueError:
        raise InvalidArgument(f"invalid host IP {spec.host_ip!r} for a published port") from None
    if ip.version != 4:
        raise InvalidArgument(f"invalid host IP {spec.host_ip}: IPv6 publishing is not supported")


def _port(text: str, what: str) -> int:
    if not text.isdigit():
        raise InvalidArgument(f"invalid {what} {text!r}: not a port number")
    n = int(text)
    if not 1 <= n <= 65535:
        raise InvalidArgument(f"invalid {what} {text!r}: must be 1-65535")
    return n


def _range(text: str, what: str) -> list[int]:
    if "-" in text:
        lo_s, _, hi_s = text.partition("-")
        lo, hi = _port(lo_s, what), _port(hi_s, what)
        if hi < lo:
            raise InvalidArgument(f"invalid {what} range {text!r}: end before start")
        return list(range(lo, hi + 1))
    return [_port(text, what)]


def parse_publish(text: str) -> list[PortSpec]:
    """Parse docker's `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]` (ranges `8080-8081:80-81` too)."""
    raw = text.strip()
    if not raw:
        raise InvalidArgument("invalid port spec '': expected [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]")
    proto = "tcp"
    if "/" in raw:
        raw, _, proto = raw.rpartition("/")
        proto = proto.lower()
        if proto not in PROTOCOLS:
            raise InvalidArgument(f"invalid port spec {text!r}: protocol must be tcp or udp")
    if raw.startswith("["):
        raise InvalidArgument(f"invalid port spec {text!r}: IPv6 publishing is not supported")
    parts = raw.split(":")
    if len(parts) == 1:
        host_ip, host_part, ctr_part = "0.0.0.0", "", parts[0]
    elif len(parts) == 2:
        host_ip, host_part, ctr_part = "0.0.0.0", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host_part, ctr_part = parts[0] or "0.0.0.0", parts[1], parts[2]
    else:
        raise InvalidArgument(f"invalid port spec {text!r}: expected [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]")
    try:
        if ipaddress.ip_address(host_ip).version != 4:
            raise ValueError
    except ValueError:
        raise InvalidArgument(f"invalid port spec {text!r}: {host_ip!r} is not an IPv4 address") from None
    ctr_ports = _range(ctr_part, "container port")
    if host_part:
        host_ports = _range(host_part, "host port")
        if len(host_ports) != len(ctr_ports):
            raise InvalidArgument(f"invalid port spec {text!r}: host and container ranges differ in length")
    else:
        host_ports = [0] * len(ctr_ports)
    return [PortSpec(host_ip, h, c, proto) for h, c in zip(host_ports, ctr_ports, strict=True)]


def _probe(proto: str, host_ip: str, port: int) -> int:
    """Bind the port as a new server would; return the bound port, or raise PortInUse/InvalidArgument."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        if proto == "tcp":
            # Like every server: a TIME_WAIT leftover must not count as "in use"; a listener still does.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host_ip, port))
        return s.getsockname()[1]
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"cannot publish {host_ip}:{port}/{proto}: the port is already in use by another process"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise InvalidArgument(f"cannot publish on {host_ip}: not an address of this host") from None
        raise InvalidArgument(f"cannot publish {host_ip}:{port}/{proto}: {exc.strerror}") from None
    finally:
        s.close()


def _overlaps(a_ip: str, b_ip: str) -> bool:
    return a_ip == b_ip or "0.0.0.0" in (a_ip, b_ip)


def reserve(specs: list[PortSpec], published: list[dict], container_id: str) -> list[PortSpec]:
    """Resolve host ports (random where 0) and check each against the host and this store's table.

    `published` holds the store's current reservations (dicts with proto, host_ip, host_port,
    container_id). Returns concrete specs; raises PortInUse before anything is created.
    """
    out: list[PortSpec] = []
    taken = [dict(p) for p in published]

    def clash(proto: str, ip: str, port: int) -> dict | None:
        for p in taken:
            if p["proto"] == proto and p["host_port"] == port and _overlaps(p["host_ip"], ip):
                return p
        return None

    for spec in specs:
        if spec.host_port:
            other = clash(spec.proto, spec.host_ip, spec.host_port)
            if other:
                owner = other["container_id"]
                if owner == container_id:
                    who = "this container"
                elif owner.startswith("another "):
                    who = owner
                else:
                    who = f"container {owner[:12]}"
                raise PortInUse(
                    f"cannot publish {spec.host_ip}:{spec.host_port}/{spec.proto}: already published by {who}"
                )
            _probe(spec.proto, spec.host_ip, spec.host_port)
            port = spec.host_port
        else:
            for _ in range(64):
                port = _probe(spec.proto, spec.host_ip, 0)  # the kernel picks from ip_local_port_range
                if not clash(spec.proto, spec.host_ip, port):
                    break
            else:
                raise PortInUse(f"no free host port for {spec.container_port}/{spec.proto}")
        concrete = PortSpec(spec.host_ip, port, spec.container_port, spec.proto)
        taken.append({**concrete.to_dict(), "container_id": container_id})
        out.append(concrete)
    return out
