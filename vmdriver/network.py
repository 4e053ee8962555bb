"""The VMs' network: one isolated libvirt network (a host bridge, no <forward>, so no NAT out).

Guests get static addresses from the host (passed in their config); there is no DHCP
and no DNS server, so libvirt starts no dnsmasq for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
from collections.abc import Iterator
from typing import Any

from vmdriver.domain import network_xml
from vmdriver.errors import InvalidSpec, LibvirtError

NETWORK_NAME = "virtlab-vm"
BRIDGE = "vlbr-vm"
SUBNET = ipaddress.ip_network("10.89.0.0/24")
GATEWAY = ipaddress.ip_address("10.89.0.1")
LIBVIRT_DNSMASQ_DIR = "/var/lib/libvirt/dnsmasq"
# Serializes "start the network, define a domain on it" against "no domain uses it: remove it".
LOCK_PATH = "/run/lock/virtlab-vm-network.lock" if os.path.isdir("/run/lock") else "/run/virtlab-vm-network.lock"


@contextlib.contextmanager
def lock() -> Iterator[None]:
    """Hold the host-wide lock of the network (every store's VMs share it)."""
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_network(conn: Any) -> str:
    """Define and start the isolated network if needed; return its name."""
    import libvirt

    try:
        net = conn.networkLookupByName(NETWORK_NAME)
    except libvirt.libvirtError:
        try:
            net = conn.networkDefineXML(network_xml(NETWORK_NAME, BRIDGE, str(GATEWAY), SUBNET.prefixlen))
        except libvirt.libvirtError as exc:
            raise LibvirtError(f"cannot define network {NETWORK_NAME}: {exc.get_error_message()}") from exc
    if not net.isActive():
        # libvirt keeps per-bridge state here even with DHCP off; Debian's package normally
        # ships the folder, but a host set up without it fails every start of the network.
        os.makedirs(LIBVIRT_DNSMASQ_DIR, mode=0o755, exist_ok=True)
        try:
            net.create()
        except libvirt.libvirtError as exc:
            raise LibvirtError(f"cannot start network {NETWORK_NAME}: {exc.get_error_message()}") from exc
    return NETWORK_NAME


def remove_network(conn: Any) -> bool:
    """Stop and undefine the network (if no domain uses it); True if it was there."""
    import libvirt

    try:
        net = conn.networkLookupByName(NETWORK_NAME)
    except libvirt.libvirtError:
        return False
    try:
        if net.isActive():
            net.destroy()
        net.undefine()
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"cannot remove network {NETWORK_NAME}: {exc.get_error_message()}") from exc
    return True


def users(conn: Any) -> list[str]:
    """Names of the libvirt domains (any store, defined or running) with an interface on the network."""
    import xml.etree.ElementTree as ET

    out = []
    for dom in conn.listAllDomains(0):
        try:
            root = ET.fromstring(dom.XMLDesc(0))
        except Exception:  # noqa: BLE001 - undefined meanwhile, or XML we cannot read: not ours to judge
            continue
        if any(src.get("network") == NETWORK_NAME for src in root.findall("./devices/interface/source")):
            out.append(dom.name())
    return out


def release_network(conn: Any) -> bool:
    """Remove the network once no domain uses it (the last VM on it is gone); True if removed.

    Call with lock() held, so that no create defines a domain on it meanwhile.
    """
    import libvirt

    try:
        conn.networkLookupByName(NETWORK_NAME)
    except libvirt.libvirtError:
        return False
    if users(conn):
        return False
    return remove_network(conn)


def allocate_address(used: set[str]) -> str:
    """The lowest free host address in the subnet (CIDR notation), skipping the gateway."""
    for host in SUBNET.hosts():
        if host == GATEWAY or str(host) in used:
            continue
        return f"{host}/{SUBNET.prefixlen}"
    raise InvalidSpec(f"network {NETWORK_NAME}: no free address left in {SUBNET}")


def random_mac() -> str:
    """A locally administered MAC in QEMU's 52:54:00 range."""
    b = os.urandom(3)
    return "52:54:00:" + ":".join(f"{x:02x}" for x in b)
