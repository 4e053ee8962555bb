"""Point-to-point links the harness makes for peers without a network of their own here (runc, podman, qemu-direct).

A /30 per instance from 10.213.0.0/16 (outside the engine's default-network candidates
10.88-10.99 and the VM network 10.89.0.0/24): the host end gets .1, the instance .2. The
instance gets no default route, and the host does not forward (ip_forward is not touched),
so the instance reaches the host's end of its own link and nothing else; nothing is routed
off the machine. Everything is made with `ip` and removed by `remove()`.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bench.errors import LaunchError

POOL = ipaddress.ip_network("10.213.0.0/16")
NETNS_DIR = "/run/netns"
_lock = threading.Lock()
_seq = 0


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise LaunchError(f"ip {' '.join(args)}: {r.stderr.strip() or r.returncode}")
    return r


def _used_subnets() -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """/30s of the pool that some host interface already uses (another run, another instance)."""
    for _ in range(5):
        # A netlink dump is cut short when interfaces change meanwhile (other runs); read it again.
        r = _ip("-4", "-o", "addr", "show", check=False)
        if r.returncode == 0 and "interrupted" not in r.stderr.lower():
            break
    used: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    for line in r.stdout.splitlines():
        for word in line.split():
            if "/" not in word or not word[0].isdigit():
                continue
            try:
                iface = ipaddress.ip_interface(word)
            except ValueError:
                continue
            if iface.ip in POOL:
                used.add(ipaddress.ip_network(f"{iface.ip}/30", strict=False))
    return used


def _names(kind: str) -> str:
    global _seq
    _seq += 1
    # Interface names are at most 15 bytes: "vl" + kind + pid (5 digits) + "x" + counter.
    return f"vl{kind}{os.getpid() % 100000}x{_seq}"


@dataclass
class Link:
    """One link: the host interface, the netns (veth) or None (tap), and both addresses (CIDR)."""

    host_if: str
    netns: str | None
    host_cidr: str
    instance_cidr: str

    @property
    def host_addr(self) -> str:
        """The host end's address, without the prefix."""
        return self.host_cidr.split("/")[0]

    @property
    def instance_addr(self) -> str:
        """The instance end's address, without the prefix."""
        return self.instance_cidr.split("/")[0]

    @property
    def netns_path(self) -> str | None:
        """Where the namespace is pinned (for runc's config.json and podman's --network ns:)."""
        return f"{NETNS_DIR}/{self.netns}" if self.netns else None

    def remove(self) -> None:
        """Delete the host interface (a veth's peer goes with it) and the namespace; fine if gone."""
        _ip("link", "del", self.host_if, check=False)
        if self.netns:
            _ip("netns", "del", self.netns, check=False)


def _with_subnet(make: Callable[[str, str], Link]) -> Link:
    """Allocate the lowest free /30 and call make(host_cidr, inst_cidr); retry once if another run took it."""
    with _lock:
        used = _used_subnets()
        for sub in POOL.subnets(new_prefix=30):
            if sub in used:
                continue
            hosts = list(sub.hosts())
            try:
                return make(f"{hosts[0]}/30", f"{hosts[1]}/30")
            except LaunchError as exc:
                if "exists" in str(exc).lower():
                    used.add(sub)
                    continue
                raise
    raise LaunchError(f"no free /30 left in {POOL} for a host link")


def veth_netns() -> Link:
    """A network namespace with lo up and `eth0`, the peer of a host veth; addresses on both ends."""
    ns, host_if = _names("n"), _names("h")

    def make(host_cidr: str, inst_cidr: str) -> Link:
        link = Link(host_if=host_if, netns=ns, host_cidr=host_cidr, instance_cidr=inst_cidr)
        try:
            _ip("netns", "add", ns)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("addr", "add", host_cidr, "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("-n", ns, "addr", "add", inst_cidr, "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            link.remove()
            raise
        return link

    return _with_subnet(make)


def tap() -> Link:
    """A tap device for a QEMU guest, with the host end's address on it."""
    host_if = _names("t")

    def make(host_cidr: str, inst_cidr: str) -> Link:
        link = Link(host_if=host_if, netns=None, host_cidr=host_cidr, instance_cidr=inst_cidr)
        try:
            _ip("tuntap", "add", "dev", host_if, "mode", "tap")
            _ip("addr", "add", host_cidr, "dev", host_if)
            _ip("link", "set", host_if, "up")
        except BaseException:
            link.remove()
            raise
        return link

    return _with_subnet(make)
