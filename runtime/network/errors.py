"""Errors of runtime/network, all rooted at NetworkError (exit code 125, as docker's engine errors).

NetworkError
 +-- InvalidArgument        bad subnet, gateway, name, port spec or driver
 +-- NetworkNotFound        no such network
 +-- NetworkExists          a network with that name already exists
 +-- NetworkInUse           network has active endpoints (rm while in use)
 +-- PredefinedNetwork      bridge/host/none cannot be created or removed
 +-- SubnetConflict         subnet overlaps a host route or another network
 +-- SubnetExhausted        no free address left in the subnet
 +-- PortInUse              a host port is bound by another process or container
 +-- BridgeFull             the Linux bridge reached BR_MAX_PORTS
 +-- AlreadyAttached        the container is already on that network
 +-- NetnsError             the container's network namespace cannot be used
 +-- FirewallError          nftables/iptables refused our rules
 +-- LinkError              netlink refused a link, address or route operation
      +-- NetlinkError     the kernel's errno for one request (runtime/network/netlink.py)
"""

from __future__ import annotations

import os


class NetworkError(Exception):
    """Root of every runtime/network error."""

    exit_code = 125


class InvalidArgument(NetworkError):
    """A value given by the user is not valid (subnet, gateway, name, port, driver)."""


class NetworkNotFound(NetworkError):
    """No network has that name or ID."""

    def __init__(self, name: str):
        super().__init__(f"network {name} not found")
        self.name = name


class NetworkExists(NetworkError):
    """A network with that name already exists."""

    def __init__(self, name: str):
        super().__init__(f"network with name {name} already exists")
        self.name = name


class NetworkInUse(NetworkError):
    """The network still has containers attached."""


class PredefinedNetwork(NetworkError):
    """bridge, host and none are built in."""


class SubnetConflict(NetworkError):
    """The subnet overlaps a host route or another virtlab network."""


class SubnetExhausted(NetworkError):
    """Every address of the subnet is allocated."""


class PortInUse(NetworkError):
    """A host port is already taken."""


class BridgeFull(NetworkError):
    """A Linux bridge accepts at most 1023 ports (BR_MAX_PORTS = 1 << BR_PORT_BITS, port 0 reserved)."""


class AlreadyAttached(NetworkError):
    """The container already has an endpoint on that network."""


class NetnsError(NetworkError):
    """The network namespace path cannot be opened or entered."""


class FirewallError(NetworkError):
    """nftables or iptables refused a rule set."""


class LinkError(NetworkError):
    """A netlink operation (link, address, route) failed."""


class NetlinkError(LinkError):
    """The kernel refused one netlink request; `code` is its errno."""

    def __init__(self, code: int):
        super().__init__(os.strerror(code))
        self.code = code
