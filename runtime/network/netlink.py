"""A synchronous rtnetlink socket that encodes and decodes its messages with pyroute2's codecs.

pyroute2 0.9's package `__init__` imports every netlink family it has, NDB and asyncio
(~95 ms here), and its IPRoute runs an asyncio loop per request. A container's attach needs
six requests. So this module loads only pyroute2's rtnetlink message classes (ifinfmsg,
ifaddrmsg, rtmsg: ~20 ms) under a package object whose real `__init__` runs the first time
anything asks the package itself for a name (`from pyroute2 import IPRoute` keeps working in
the same process), and sends them on a plain socket.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

from runtime.network.errors import NetlinkError, NetworkError

NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 18, 20, 24
IFF_UP = 0x1
AF_INET = 2
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
_HDR = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_IFINDEX = struct.Struct("=i")  # ifinfomsg.ifi_index, after family, pad and type (4 bytes)


class _Package(type(sys)):  # type: ignore[misc]  # a module whose __init__ has not run yet
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        from importlib import import_module

        try:  # `from pyroute2 import config` in its own modules: a submodule, not a reason to run __init__
            return import_module(f"{self.__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{self.__name__}.{name}":
                raise
        self.__class__ = type(sys)  # type: ignore[assignment]  # run the real __init__ once, into this module
        self.__spec__.loader.exec_module(self)
        return getattr(self, name)


def _codecs():
    """pyroute2's ifinfmsg, ifaddrmsg and rtmsg, without its package-wide imports."""
    if "pyroute2" not in sys.modules:
        from importlib.machinery import PathFinder
        from importlib.util import module_from_spec

        spec = PathFinder.find_spec("pyroute2")
        if spec is None:
            raise NetworkError("pyroute2 is not installed (run `make test` or scripts/setup.sh)")
        pkg = module_from_spec(spec)
        pkg.__class__ = _Package
        sys.modules["pyroute2"] = pkg
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    return ifinfmsg, ifaddrmsg, rtmsg


class Netlink:
    """One NETLINK_ROUTE socket (its netns is the one it was created in) and the requests virtlab needs."""

    def __init__(self, sock: socket.socket | None = None):
        self.ifinfmsg, self.ifaddrmsg, self.rtmsg = _codecs()
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                          socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def request(self, msg, mtype: int, flags: int = 0) -> bytes:
        """Send one request and return the kernel's answer to it (raises NetlinkError on an error)."""
        self.seq += 1
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = NLM_F_REQUEST | flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        while True:
            data = self.sock.recv(65536)
            _, typ, _, seq, _ = _HDR.unpack_from(data)
            if seq != self.seq:
                continue  # an answer to an earlier request that was abandoned
            if typ == NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, _HDR.size)[0]
                if code:
                    raise NetlinkError(code)
            return data

    # -- links

    def _link(self, index: int = 0, attrs: list | None = None, flags: int = 0, change: int = 0):
        msg = self.ifinfmsg()
        msg["index"], msg["flags"], msg["change"] = index, flags, change
        msg["attrs"] = attrs or []
        return msg

    def link_index(self, ifname: str) -> int | None:
        """The index of link `ifname` in the socket's netns, or None."""
        try:
            data = self.request(self._link(attrs=[("IFLA_IFNAME", ifname)]), RTM_GETLINK)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise
        return _IFINDEX.unpack_from(data, _HDR.size + 4)[0]

    def add_bridge(self, ifname: str) -> None:
        """Create a bridge (down)."""
        attrs = [("IFLA_IFNAME", ifname), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]
        self.request(self._link(attrs=attrs), RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def add_veth(self, ifname: str, master: int, peer: str, peer_netns_fd: int, peer_mac: str) -> None:
        """Create a veth pair: `ifname` enslaved to bridge `master`, its peer born in another netns."""
        peer_attrs = [("IFLA_IFNAME", peer), ("IFLA_NET_NS_FD", peer_netns_fd), ("IFLA_ADDRESS", peer_mac)]
        info = [("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer_attrs})]})]
        attrs = [("IFLA_IFNAME", ifname), ("IFLA_MASTER", master), ("IFLA_LINKINFO", {"attrs": info})]
        self.request(self._link(attrs=attrs), RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def set_alias(self, index: int, alias: str) -> None:
        """Set a link's ifalias."""
        self.request(self._link(index, [("IFLA_IFALIAS", alias)]), RTM_NEWLINK, NLM_F_ACK)

    def set_up(self, index: int) -> None:
        """Bring a link up."""
        self.request(self._link(index, flags=IFF_UP, change=IFF_UP), RTM_NEWLINK, NLM_F_ACK)

    def delete(self, ifname: str) -> None:
        """Delete a link by name (a veth takes its peer along)."""
        self.request(self._link(attrs=[("IFLA_IFNAME", ifname)]), RTM_DELLINK, NLM_F_ACK)

    # -- addresses and routes

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        """Add an IPv4 address to a link."""
        msg = self.ifaddrmsg()
        msg["family"], msg["prefixlen"], msg["index"] = AF_INET, prefixlen, index
        msg["attrs"] = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
        self.request(msg, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway: str, oif: int) -> None:
        """Add the IPv4 default route via `gateway` on link `oif` to the main table."""
        msg = self.rtmsg()
        msg["family"], msg["dst_len"], msg["table"] = AF_INET, 0, RT_TABLE_MAIN
        msg["proto"], msg["scope"], msg["type"] = RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST
        msg["attrs"] = [("RTA_GATEWAY", gateway), ("RTA_OIF", oif)]
        self.request(msg, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
