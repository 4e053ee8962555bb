"""IPv4 address management: subnet and gateway parsing, default-subnet choice, allocation.

Allocations of a network live in `ipam/<network id>.json` as {"address": owner}. Callers
hold the store lock (records.Store.locked) around allocate/release, so parallel CLIs
never hand out the same address. The network address, the gateway and the broadcast
address are never allocated; the lowest free address wins.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from runtime.network.errors import InvalidArgument, SubnetConflict, SubnetExhausted
from runtime.network.records import Store

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

# Default-network candidates, in order: 10.88.0.0/16 (as podman), then other private /16s,
# then /24s. The first that overlaps neither a host route nor another network wins.
DEFAULT_SUBNET = "10.88.0.0/16"


def default_candidates() -> Iterable[IPv4Network]:
    """Private subnets to try for a network created without --subnet."""
    yield IPv4Network(DEFAULT_SUBNET)
    for second in range(89, 100):
        yield IPv4Network(f"10.{second}.0.0/16")
    for second in range(20, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    for third in range(100, 256):
        yield IPv4Network(f"192.168.{third}.0/24")


def parse_subnet(text: str) -> IPv4Network:
    """Parse a CIDR subnet ("10.1.0.0/24"); reject host bits, IPv6, and subnets too small to use."""
    if not isinstance(text, str) or "/" not in text:
        raise InvalidArgument(f"invalid subnet {text!r}: expected CIDR notation such as 10.1.0.0/24")
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid subnet {text!r}: {exc}") from None
    if net.version != 4:
        raise InvalidArgument(f"invalid subnet {text!r}: IPv6 networks are not supported")
    if net.prefixlen > 30:
        raise InvalidArgument(
            f"invalid subnet {text!r}: a /{net.prefixlen} has no room for a gateway and a container (use /30 or larger)"
        )
    if net.is_loopback or net.is_multicast or net.is_link_local or net.network_address.is_unspecified:
        raise InvalidArgument(f"invalid subnet {text!r}: loopback, multicast, link-local and 0.0.0.0/N are reserved")
    return net


def parse_gateway(text: str | None, subnet: IPv4Network) -> IPv4Address:
    """The gateway: given, or the subnet's first host address. It must be a host address of the subnet."""
    if text is None or text == "":
        return subnet.network_address + 1
    try:
        gw = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidArgument(f"invalid gateway {text!r}: not an IPv4 address") from None
    if gw.version != 4 or gw not in subnet:
        raise InvalidArgument(f"invalid gateway {text}: not in subnet {subnet}")
    if gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"invalid gateway {text}: the network or broadcast address of {subnet}")
    return gw  # type: ignore[return-value]


def host_routes(path: str = "/proc/net/route", skip_ifaces: frozenset[str] | set[str] = frozenset()) -> list[IPv4Network]:
    """IPv4 destinations of the host's main routing table, without the default route.

    Routes through `skip_ifaces` (this store's own bridges) are left out.
    """
    out = []
    try:
        with open(path) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 8:
                    continue
                dest = int(fields[1], 16)
                mask = int(fields[7], 16)
                if mask == 0 or fields[0] in skip_ifaces:
                    continue  # the default route overlaps everything; docker ignores it too
                # /proc/net/route prints addresses in host (little-endian) byte order.
                d = IPv4Address(dest.to_bytes(4, "little"))
                m = IPv4Address(mask.to_bytes(4, "little"))
                out.append(IPv4Network(f"{d}/{m}", strict=False))
    except FileNotFoundError:
        pass
    return out


def check_free(subnet: IPv4Network, taken: dict[str, IPv4Network], routes: list[IPv4Network]) -> None:
    """Raise SubnetConflict when `subnet` overlaps another network (name -> subnet) or a host route."""
    for name, other in taken.items():
        if subnet.overlaps(other):
            raise SubnetConflict(f"subnet {subnet} overlaps network {name} ({other})")
    for r in routes:
        if subnet.overlaps(r):
            raise SubnetConflict(f"subnet {subnet} overlaps the host route to {r}")


def pick_subnet(taken: dict[str, IPv4Network], routes: list[IPv4Network]) -> IPv4Network:
    """The first default candidate free of other networks and host routes."""
    for cand in default_candidates():
        if not any(cand.overlaps(o) for o in taken.values()) and not any(cand.overlaps(r) for r in routes):
            return cand
    raise SubnetConflict("no free private subnet left for a new network; pass --subnet")


class Ipam:
    """Allocations of one network: one file per address, `ipam/<network id>/<address>`, holding its owner.

    A file per address makes an allocation one O_EXCL create and a release one unlink, with no
    table to rewrite: the cost stays flat at a thousand containers. Call under the store lock
    (the O_EXCL create is a second guard).
    """

    def __init__(self, store: Store, net_id: str, subnet: IPv4Network, gateway: IPv4Address):
        self.dir: Path = store.ipam_dir / net_id
        self.subnet = subnet
        self.gateway = gateway

    def _names(self) -> list[str]:
        try:
            return [n for n in os.listdir(self.dir) if not n.startswith(".")]
        except FileNotFoundError:
            return []

    def allocated(self) -> dict[str, str]:
        """address -> owner."""
        out = {}
        for n in self._names():
            try:
                out[n] = (self.dir / n).read_text()
            except FileNotFoundError:
                pass
        return out

    def _claim(self, ip: IPv4Address, owner: str) -> bool:
        try:
            fd = os.open(self.dir / str(ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return False
        try:
            os.write(fd, owner.encode())
        finally:
            os.close(fd)
        return True

    def allocate(self, owner: str, requested: str | None = None) -> IPv4Address:
        """Give `owner` an address: the requested one, or the lowest free."""
        self.dir.mkdir(mode=0o700, exist_ok=True)
        reserved = {self.subnet.network_address, self.subnet.broadcast_address, self.gateway}
        if requested is not None:
            try:
                ip = IPv4Address(requested)
            except ValueError:
                raise InvalidArgument(f"invalid IPv4 address {requested!r}") from None
            if ip not in self.subnet or ip in reserved:
                raise InvalidArgument(f"address {ip} is not a usable address of subnet {self.subnet}")
            if not self._claim(ip, owner):
                raise InvalidArgument(f"address {ip} is already in use on subnet {self.subnet}")
            return ip
        # inet_aton is ~20x faster than IPv4Address(); this runs for every attach on big subnets.
        used = {int(a) for a in reserved}
        for name in self._names():
            try:
                used.add(int.from_bytes(socket.inet_aton(name), "big"))
            except OSError:
                continue  # not an address file (a stray temp file): ignore it
        first = int(self.subnet.network_address) + 1
        last = int(self.subnet.broadcast_address) - 1
        for n in range(first, last + 1):
            if n not in used and self._claim(IPv4Address(n), owner):
                return IPv4Address(n)
        usable = last - first + 1 - (1 if first <= int(self.gateway) <= last else 0)
        raise SubnetExhausted(
            f"no available IPv4 addresses on subnet {self.subnet}: all {usable} usable addresses are allocated"
        )

    def release(self, owner: str, ip: str | None = None) -> None:
        """Free the owner's address (`ip` when known, else every address it holds); idempotent."""
        names = [ip] if ip else self._names()
        for n in names:
            path = self.dir / n
            try:
                if path.read_text() == owner:
                    path.unlink()
            except FileNotFoundError:
                pass
