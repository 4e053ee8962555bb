"""Linux links through netlink: bridges, veth pairs, and addresses inside a container's netns.

The requests are pyroute2's message classes on a plain socket (runtime/network/netlink.py
says why), imported only when a link is really touched (never for `--network none`). One
socket on the host is kept per NetworkManager. Inside a container's netns we open a netlink
socket from a short-lived thread that setns()es into it (network namespaces are per thread),
instead of pyroute2's default of forking a child per namespace, and no `ip` process is ever
spawned.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import threading

from runtime.network.errors import BridgeFull, LinkError, NetlinkError, NetnsError
from runtime.network.netlink import Netlink

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703  # ioctl on an nsfs file: which kind of namespace it is
BR_MAX_PORTS = 1023  # 1 << BR_PORT_BITS (10), minus port 0, which the kernel reserves
LOOPBACK_IFINDEX = 1  # ifindexes are per netns, and lo is always registered first

_libc = ctypes.CDLL(None, use_errno=True)


def bridge_port_count(bridge: str) -> int:
    """How many ports the bridge has."""
    try:
        return len(os.listdir(f"/sys/class/net/{bridge}/brif"))
    except FileNotFoundError:
        return 0


def open_netns(path: str) -> int:
    """Open a network namespace file and check it is one, and not the host's own."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetnsError(f"cannot open network namespace {path}: {exc.strerror}") from None
    try:
        try:
            kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
        except OSError:
            raise NetnsError(f"{path} is not a namespace file (bind-mount /proc/PID/ns/net there)") from None
        if kind != CLONE_NEWNET:
            raise NetnsError(f"{path} is not a network namespace")
        if os.fstat(fd).st_ino == os.stat("/proc/self/ns/net").st_ino:
            raise NetnsError(f"{path} is the host's own network namespace; refusing to configure it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def socket_in(netns_fd: int) -> socket.socket:
    """A NETLINK_ROUTE socket created inside `netns_fd` (sockets keep the netns they were born in)."""
    box: dict = {}

    def worker() -> None:
        if _libc.setns(netns_fd, CLONE_NEWNET) != 0:
            box["err"] = ctypes.get_errno()
            return
        # /proc/sys/net follows the opener's netns: interfaces created in this netns from now on
        # (our eth0) get no IPv6, so they send no DAD/MLD/RS multicast that the bridge would
        # flood to every port (O(ports) per attach). lo keeps ::1. docker does the same.
        try:
            with open("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") as f:
                f.write("1")
        except OSError:
            pass  # kernel without IPv6
        box["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)

    t = threading.Thread(target=worker, name="virtlab-netns")
    t.start()
    t.join()
    if "err" in box:
        raise NetnsError(f"cannot enter network namespace: {os.strerror(box['err'])}")
    return box["sock"]


def _no_ipv6(link: str) -> None:
    """Disable IPv6 on a host link (no link-local address, so no multicast flooded on the bridge)."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{link}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass  # kernel without IPv6


def _fail(what: str, exc: NetlinkError) -> LinkError:
    return LinkError(f"{what}: {os.strerror(exc.code) if exc.code else exc}")


class Links:
    """Link operations on the host, plus configuration inside container namespaces."""

    def __init__(self) -> None:
        self.nl = Netlink()

    def close(self) -> None:
        """Release the netlink socket."""
        self.nl.close()

    def index(self, name: str) -> int | None:
        """Interface index of a host link, or None (read from sysfs: no netlink round trip)."""
        try:
            with open(f"/sys/class/net/{name}/ifindex") as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------ bridges

    def create_bridge(self, name: str, gateway: str, prefixlen: int, alias: str, route_localnet: bool) -> None:
        """Create and bring up a bridge holding the gateway address; remove it again on failure."""
        try:
            self.nl.add_bridge(name)
        except NetlinkError as exc:
            if exc.code == errno.EEXIST:
                raise LinkError(f"cannot create bridge {name}: a link with that name already exists") from None
            raise _fail(f"cannot create bridge {name}", exc) from None
        try:
            idx = self.index(name)
            assert idx is not None  # just created
            # The kernel ignores IFLA_IFALIAS on RTM_NEWLINK; set it afterwards. It marks the
            # link as this store's, so gc and teardown never delete another store's links.
            self.nl.set_alias(idx, alias[:250])
            self.nl.add_address(idx, gateway, prefixlen)
            _no_ipv6(name)
            if route_localnet:
                # Lets DNAT-ed 127.0.0.1 traffic leave on this bridge (see firewall.py); per-interface,
                # so it vanishes with the bridge and no global sysctl changes.
                with open(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "w") as f:
                    f.write("1")
            self.nl.set_up(idx)
        except BaseException:
            self.delete_link(name)
            raise

    def delete_link(self, name: str) -> bool:
        """Delete a host link (a veth takes its peer along); False when it was not there."""
        try:
            self.nl.delete(name)
            return True
        except NetlinkError as exc:
            if exc.code in (errno.ENODEV, errno.ENOENT):
                return False
            raise _fail(f"cannot delete link {name}", exc) from None

    def alias(self, name: str) -> str:
        """The ifalias of a host link ("" when unset or absent)."""
        try:
            with open(f"/sys/class/net/{name}/ifalias") as f:
                return f.read().strip()
        except OSError:
            return ""

    # ------------------------------------------------------------ veth pairs

    def create_veth(self, host_name: str, bridge: str, netns_fd: int, ifname: str, mac: str) -> None:
        """Create a veth pair in one netlink request: `host_name` up on the bridge, its peer `ifname`
        born inside the netns. (A veth is recognised as ours by its name and its bridge.)
        """
        br = self.index(bridge)
        if br is None:
            raise LinkError(f"bridge {bridge} does not exist")
        if bridge_port_count(bridge) >= BR_MAX_PORTS:
            raise BridgeFull(
                f"bridge {bridge} is full: a Linux bridge takes at most {BR_MAX_PORTS} ports (BR_PORT_BITS=10); "
                "put further containers on another network"
            )
        try:
            self.nl.add_veth(host_name, br, ifname, netns_fd, mac)
        except NetlinkError as exc:
            if exc.code == errno.EXFULL:
                raise BridgeFull(f"bridge {bridge} is full ({BR_MAX_PORTS} ports, BR_PORT_BITS=10)") from None
            if exc.code == errno.EEXIST:
                raise LinkError(f"cannot create veth {host_name}/{ifname}: a link with that name exists") from None
            raise _fail(f"cannot create veth {host_name}", exc) from None
        try:
            _no_ipv6(host_name)  # before it goes up: a bridge port needs no address of its own
            idx = self.index(host_name)
            if idx is None:
                raise NetlinkError(errno.ENODEV)
            self.nl.set_up(idx)
        except NetlinkError as exc:
            self.delete_link(host_name)
            raise _fail(f"cannot bring up {host_name}", exc) from None

    def plug(self, host_name: str, bridge: str, netns_fd: int, ifname: str, mac: str, ip: str, prefixlen: int,
             gateway: str | None) -> None:
        """Connect a netns to a bridge: veth pair, then inside the netns the address, lo, the default route.

        The netns socket is opened first, so that eth0 is born with IPv6 disabled (see socket_in).
        """
        sock = socket_in(netns_fd)
        try:
            self.create_veth(host_name, bridge, netns_fd, ifname, mac)
        except BaseException:
            sock.close()
            raise
        self.configure_netns(sock, ifname, ip, prefixlen, gateway)

    def configure_netns(self, sock: socket.socket, ifname: str, ip: str, prefixlen: int, gateway: str | None) -> None:
        """Through a socket in the netns: the address on `ifname`, it and lo up, a default route via the gateway."""
        ns = Netlink(sock)
        try:
            idx = ns.link_index(ifname)
            if idx is None:
                raise LinkError(f"{ifname} did not appear in the container's network namespace")
            ns.add_address(idx, ip, prefixlen)
            ns.set_up(idx)
            ns.set_up(LOOPBACK_IFINDEX)
            if gateway:
                try:
                    ns.add_default_route(gateway, idx)
                except NetlinkError as exc:
                    if exc.code != errno.EEXIST:  # a second network: the first one's default route stays
                        raise
        except NetlinkError as exc:
            raise _fail(f"cannot configure {ifname} in the container's network namespace", exc) from None
        finally:
            ns.close()
