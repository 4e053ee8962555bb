"""NetworkManager: networks, container endpoints, published ports and hosts files of one store.

Records in the store are the truth; kernel objects (bridges, veths, firewall rules) are
derived from them. Every change runs under the store's lock, writes its record before it
creates anything in the kernel (so a crash leaves something `gc` can find), and undoes
what it made when a later step fails. pyroute2 is imported only when a link is touched.

Lifecycle of kernel objects:
- a user-defined network's bridge exists from `create` to `remove`;
- the default network's bridge is made by the first attach and then kept, as docker keeps
  docker0 (making and deleting it was ~50 ms of every `run --rm`); `prune` takes it down
  when no container uses it;
- a container's veth goes when it is detached; when the engine removes a container it
  drops the netns first and the kernel deletes the veth pair with it, off the CLI's path;
- the store's firewall table exists while any of its bridges does;
- `teardown()` removes every kernel object of the store; records are kept, and bridges are
  re-created on demand (also after a host reboot).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import ipaddress
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtime.network import hosts as hostsfile
from runtime.network import ipam
from runtime.network.errors import (
    AlreadyAttached,
    FirewallError,
    InvalidArgument,
    NetworkExists,
    NetworkInUse,
    NetworkNotFound,
    PredefinedNetwork,
)
from runtime.network.ports import PortSpec, reserve
from runtime.network.records import Store, lock_file

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "virtlab0"
PREDEFINED = ("bridge", "host", "none")
DRIVERS = ("bridge",)
_NET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass
class Attachment:
    """A container's endpoint on one network, as the engine needs it."""

    network: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    ifname: str
    ports: list[PortSpec] = field(default_factory=list)
    network_id: str = ""
    host_ifname: str = ""
    bridge: str = ""

    def to_dict(self) -> dict:
        """Plain dict (ports too) for the engine's record and `inspect`."""
        return asdict(self)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e9) % 10**9:09d}Z"


def mac_for(ip: str) -> str:
    """A stable, locally administered MAC derived from the IPv4 address (as docker's 02:42:...)."""
    b = ipaddress.IPv4Address(ip).packed
    return "02:76:" + ":".join(f"{x:02x}" for x in b)


def veth_name(container_id: str, net_id: str) -> str:
    """Host-side veth name: vlv + 12 hex chars (15 chars, IFNAMSIZ - 1)."""
    return "vlv" + hashlib.sha256(f"{container_id}/{net_id}".encode()).hexdigest()[:12]


def _host_links() -> list[str]:
    """Names of the links in the host's network namespace (from sysfs: no pyroute2 import for gc)."""
    try:
        return os.listdir("/sys/class/net")
    except FileNotFoundError:
        return []


HOST_LOCK = "/run/virtlab-network.lock"


@contextlib.contextmanager
def host_lock():
    """A host-wide flock around bridge creation: two stores must not pick the same subnet or bridge name."""
    try:
        fd = lock_file(HOST_LOCK)
    except PermissionError:
        yield  # not root: no bridge can be created anyway, and the store lock still holds
        return
    try:
        yield
    finally:
        os.close(fd)


def _free_ifname(existing: list[dict]) -> str:
    """The lowest ethN the container does not use yet (a disconnect can leave a gap)."""
    used = {e["ifname"] for e in existing}
    n = 0
    while f"eth{n}" in used:
        n += 1
    return f"eth{n}"


def _master(link: str) -> str | None:
    """The bridge a host link is enslaved to, or None."""
    try:
        return os.path.basename(os.readlink(f"/sys/class/net/{link}/master"))
    except OSError:
        return None


def check_container_id(container_id: str) -> str:
    """Container IDs become file names and rule comments: keep them tame."""
    if not isinstance(container_id, str) or not _CONTAINER_ID.match(container_id):
        raise InvalidArgument(f"invalid container id {container_id!r}")
    return container_id


def check_network_name(name: str) -> str:
    """Network names as docker allows them ([A-Za-z0-9][A-Za-z0-9_.-]*), at most 128 chars."""
    if not isinstance(name, str) or not _NET_NAME.match(name):
        raise InvalidArgument(
            f"invalid network name {name!r}: use letters, digits, '_', '.', '-' (first a letter or digit, max 128)"
        )
    return name


class NetworkManager:
    """Networks and endpoints of one store root's `network/` folder."""

    def __init__(self, path: Path | str, firewall: str | None = None):
        self.path = Path(path).absolute()
        self.store = Store(self.path)
        self._links = None
        self._firewall = None
        self._firewall_pref = firewall or os.environ.get("VIRTLAB_FIREWALL") or None

    # ------------------------------------------------------------ lazy helpers

    @property
    def links(self):
        """The netlink link helper (pyroute2's codecs, imported on first use: ~20 ms)."""
        if self._links is None:
            from runtime.network.links import Links

            self._links = Links()
        return self._links

    @property
    def firewall(self):
        """The firewall backend for this store (nftables, else iptables)."""
        if self._firewall is None:
            from runtime.network.firewall import open_firewall

            self._firewall = open_firewall(str(self.path), self._firewall_pref)
        return self._firewall

    def _firewall_or_none(self):
        try:
            return self.firewall
        except FirewallError:
            return None

    def close(self) -> None:
        """Release the netlink socket, if one was opened."""
        if self._links is not None:
            self._links.close()
            self._links = None

    def __enter__(self) -> NetworkManager:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def owner_tag(self) -> str:
        """16 hex chars of the store path's hash: the ownership mark in our links' ifalias."""
        return hashlib.sha256(str(self.path).encode()).hexdigest()[:16]

    def _alias(self, what: str) -> str:
        # The kernel keeps 255 bytes of ifalias: the tag decides ownership, the path is for humans.
        return f"virtlab {self.owner_tag} {what} {self.path}"[:250]

    # ------------------------------------------------------------ networks

    def _find(self, name_or_id: str) -> dict | None:
        nets = self.store.networks()
        for rec in nets:
            if rec["name"] == name_or_id or rec["id"] == name_or_id:
                return rec
        if len(name_or_id) >= 3 and re.fullmatch(r"[0-9a-f]+", name_or_id):
            hits = [r for r in nets if r["id"].startswith(name_or_id)]
            if len(hits) == 1:
                return hits[0]
        return None

    def get(self, name_or_id: str) -> dict:
        """A network record by name, ID or unique ID prefix (the default network is made on demand)."""
        if name_or_id == DEFAULT_NETWORK:
            return self._ensure_default_record()
        rec = self._find(name_or_id)
        if rec is None:
            raise NetworkNotFound(name_or_id)
        return rec

    def _taken_subnets(self, exclude: str | None = None) -> dict[str, ipaddress.IPv4Network]:
        return {
            r["name"]: ipaddress.IPv4Network(r["subnet"]) for r in self.store.networks() if r["id"] != exclude
        }

    def _host_routes(self) -> builtins.list[ipaddress.IPv4Network]:
        """Host routes, minus those of this store's own bridges (their subnets are in our records)."""
        own = {r["bridge"] for r in self.store.networks() if self._owns_link(r["bridge"])}
        return ipam.host_routes(skip_ifaces=own)

    def _ensure_default_record(self) -> dict:
        with self.store.locked():
            rec = self._find(DEFAULT_NETWORK)
            if rec is not None:
                return rec
            subnet = ipam.pick_subnet(self._taken_subnets(), self._host_routes())
            rec = self._new_record(DEFAULT_NETWORK, subnet, subnet.network_address + 1, internal=False, default=True)
            self.store.save_network(rec)
            return rec

    def _new_record(self, name, subnet, gateway, internal, default=False, labels=None) -> dict:
        net_id = secrets.token_hex(32)
        return {
            "id": net_id,
            "name": name,
            "driver": "bridge",
            "subnet": str(subnet),
            "gateway": str(gateway),
            "bridge": DEFAULT_BRIDGE if default else f"vlbr-{net_id[:10]}",
            "internal": bool(internal),
            "default": default,
            "created": _now(),
            "labels": dict(labels or {}),
        }

    def create(
        self,
        name: str,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        driver: str = "bridge",
        labels: dict[str, str] | None = None,
    ) -> dict:
        """Create a user-defined bridge network and its Linux bridge; returns the record."""
        check_network_name(name)
        if name in PREDEFINED:
            raise PredefinedNetwork(f"{name} is a pre-defined network and cannot be created")
        if driver not in DRIVERS:
            raise InvalidArgument(f"network driver {driver!r} is not supported (only: {', '.join(DRIVERS)})")
        net = ipam.parse_subnet(subnet) if subnet is not None else None
        if gateway is not None and net is None:
            raise InvalidArgument("--gateway needs --subnet")
        with self.store.locked(), host_lock():
            self._ensure_default_record()  # the default network keeps the first free subnet (10.88/16)
            if self._find(name) is not None:
                raise NetworkExists(name)
            routes = self._host_routes()
            taken = self._taken_subnets()
            if net is None:
                net = ipam.pick_subnet(taken, routes)
            else:
                ipam.check_free(net, taken, routes)
            gw = ipam.parse_gateway(gateway, net)
            rec = self._new_record(name, net, gw, internal, labels=labels)
            self.store.save_network(rec)  # first, as every change here: a bridge is made on demand again
            try:
                self._create_bridge(rec)
            except BaseException:
                self.store.drop_network(rec["id"])
                raise
            return rec

    def remove(self, name_or_id: str) -> dict:
        """Remove a user-defined network; fails while containers are attached. Returns the record."""
        if name_or_id in PREDEFINED:
            raise PredefinedNetwork(f"{name_or_id} is a pre-defined network and cannot be removed")
        with self.store.locked():
            rec = self._find(name_or_id)
            if rec is None:
                raise NetworkNotFound(name_or_id)
            if rec.get("default"):
                raise PredefinedNetwork(f"{rec['name']} is a pre-defined network and cannot be removed")
            members = self.store.members(rec["id"])
            if members:
                names = ", ".join(m.get("name") or m["container_id"][:12] for m in members[:5])
                raise NetworkInUse(
                    f"cannot remove network {rec['name']} ({rec['id'][:12]}): it has active endpoints ({names})"
                )
            self._delete_bridge(rec)
            self.store.drop_network(rec["id"])
            self._drop_table_if_unused()
            return rec

    def list(self) -> builtins.list[dict]:
        """Every network record; the default network first (made on demand, without kernel objects)."""
        self._ensure_default_record()
        nets = self.store.networks()
        return sorted(nets, key=lambda r: (not r.get("default"), r["created"], r["name"]))

    def prune(self) -> builtins.list[str]:
        """Remove user-defined networks without endpoints, and take down an idle default bridge.

        Returns the names of the removed networks (the default network's record stays, as
        docker's `bridge` does).
        """
        removed = []
        with self.store.locked():
            self._drop_idle_default_bridge()
            for rec in self.store.networks():
                if rec.get("default") or self.store.has_members(rec["id"]):
                    continue
                self._delete_bridge(rec)
                self.store.drop_network(rec["id"])
                removed.append(rec["name"])
            self._drop_table_if_unused()
        return removed

    def drop_idle_default_bridge(self) -> None:
        """Take down the default network's bridge (and the firewall table with the last bridge) if no container uses it."""
        with self.store.locked():
            self._drop_idle_default_bridge()

    def _drop_idle_default_bridge(self) -> None:
        for rec in self.store.networks():
            if rec.get("default"):
                self._drop_bridge_if_idle(rec)

    def inspect(self, name_or_id: str) -> dict:
        """One network in docker's `network inspect` shape."""
        rec = self.get(name_or_id)
        containers = {}
        for ep in self.store.members(rec["id"]):
            containers[ep["container_id"]] = {
                "Name": ep.get("name") or "",
                "EndpointID": ep["endpoint_id"],
                "MacAddress": ep["mac"],
                "IPv4Address": f"{ep['ip']}/{ep['prefixlen']}",
                "IPv6Address": "",
            }
        return {
            "Name": rec["name"],
            "Id": rec["id"],
            "Created": rec["created"],
            "Scope": "local",
            "Driver": rec["driver"],
            "EnableIPv6": False,
            "IPAM": {
                "Driver": "default",
                "Options": {},
                "Config": [{"Subnet": rec["subnet"], "Gateway": rec["gateway"]}],
            },
            "Internal": rec["internal"],
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": containers,
            "Options": {
                "com.docker.network.bridge.name": rec["bridge"],
                "com.docker.network.bridge.default_bridge": str(bool(rec.get("default"))).lower(),
            },
            "Labels": rec.get("labels", {}),
        }

    # ------------------------------------------------------------ bridges (kernel)

    def _bridge_exists(self, rec: dict) -> bool:
        return os.path.exists(f"/sys/class/net/{rec['bridge']}")

    def _create_bridge(self, rec: dict) -> None:
        """Create the network's bridge (call under host_lock(): subnets and link names are host-wide)."""
        fw = None if rec["internal"] else self._firewall_or_none()
        if fw is not None:
            fw.ensure_base()  # the guard chain must exist before route_localnet is set
        try:
            self.links.create_bridge(
                rec["bridge"], rec["gateway"], ipaddress.IPv4Network(rec["subnet"]).prefixlen,
                self._alias(f"network {rec['id']}"), route_localnet=fw is not None,
            )
        except BaseException:
            self._drop_table_if_unused()
            raise
        try:
            self._isolate()
        except BaseException:
            self._delete_bridge(rec)
            self._drop_table_if_unused()
            raise

    def _delete_bridge(self, rec: dict) -> None:
        if self._bridge_exists(rec) and self._owns_link(rec["bridge"]):
            self.links.delete_link(rec["bridge"])
            self._isolate()

    def _isolate(self) -> None:
        """Rewrite the forward rules that keep the store's bridges apart (docker's DOCKER-ISOLATION).

        They matter on a host that forwards IPv4 (docker, podman's CNI and libvirt turn it on):
        there the host would route between two networks' bridges. No table: nothing to keep apart.
        """
        fw = self._firewall_or_none()
        if fw is not None and fw.exists():
            fw.isolate(sorted(r["bridge"] for r in self.store.networks() if self._owns_link(r["bridge"])))

    def _owns_link(self, name: str) -> bool:
        """True when the link's ifalias says this store made it (never delete another store's link)."""
        try:
            with open(f"/sys/class/net/{name}/ifalias") as f:
                alias = f.read().strip()
        except OSError:
            return False
        return alias.startswith(f"virtlab {self.owner_tag} ")

    def _materialize(self, rec: dict) -> dict:
        """Make sure the network's bridge exists (default network: pick a free name/subnet first)."""
        if self._bridge_exists(rec) and self._owns_link(rec["bridge"]):
            return rec
        with host_lock():
            return self._materialize_locked(rec)

    def _materialize_locked(self, rec: dict) -> dict:
        if rec.get("default") and not self.store.has_members(rec["id"]):
            # Another store may own virtlab0 or have taken the subnet since the record was made.
            changed = False
            if os.path.exists(f"/sys/class/net/{rec['bridge']}") and not self._owns_link(rec["bridge"]):
                rec["bridge"] = f"vlbr-{rec['id'][:10]}"
                changed = True
            net = ipaddress.IPv4Network(rec["subnet"])
            routes = self._host_routes()
            if any(net.overlaps(r) for r in routes):
                net = ipam.pick_subnet(self._taken_subnets(exclude=rec["id"]), routes)
                rec["subnet"], rec["gateway"] = str(net), str(net.network_address + 1)
                changed = True
            if changed:
                self.store.save_network(rec)
        self._create_bridge(rec)
        return rec

    def _drop_table_if_unused(self) -> None:
        fw = self._firewall_or_none()
        if fw is None:
            return
        if any(not r["internal"] and self._owns_link(r["bridge"]) for r in self.store.networks()):
            return
        fw.drop_all()

    # ------------------------------------------------------------ endpoints

    def attach(
        self,
        container_id: str,
        netns_path: str,
        network: str = DEFAULT_NETWORK,
        name: str | None = None,
        aliases: builtins.list[str] | tuple[str, ...] = (),
        ports: builtins.list[PortSpec] | tuple[PortSpec, ...] = (),
        hostname: str | None = None,
        ip: str | None = None,
    ) -> Attachment:
        """Connect a container's netns to a network: veth, address, route, ports, hosts files.

        Checks everything that can be checked (names, ports in use, free address, bridge
        capacity, the netns file) before it creates anything; undoes its work on failure.
        """
        check_container_id(container_id)
        for n in [name, hostname, *aliases]:
            if n is not None:
                hostsfile.check_name(n, "container name or alias")
        if network in ("host", "none"):
            raise InvalidArgument(f"network {network} has no endpoints to attach; the engine handles it")
        from runtime.network.links import open_netns

        with self.store.locked():
            rec = self.get(network)
            existing = self.store.endpoints_of(container_id)
            if any(e["network_id"] == rec["id"] for e in existing):
                raise AlreadyAttached(f"container {container_id[:12]} is already attached to network {rec['name']}")
            specs = list(ports)
            if specs and rec["internal"]:
                raise InvalidArgument(f"cannot publish ports on internal network {rec['name']}")
            if specs and any(e.get("ports") for e in existing):
                raise InvalidArgument(f"container {container_id[:12]} already publishes ports on another network")
            published = self.store.ports()
            fw = self.firewall if specs else None  # FirewallError here, before anything is made
            foreign = fw.foreign_ports() if fw is not None and hasattr(fw, "foreign_ports") else []
            concrete = reserve(specs, published + foreign, container_id) if specs else []
            netns_fd = open_netns(netns_path)
            made: builtins.list[str] = []
            try:
                bridge_was_there = self._bridge_exists(rec)
                rec = self._materialize(rec)
                if not bridge_was_there:
                    made.append("bridge")
                net = ipaddress.IPv4Network(rec["subnet"])
                addr = str(self._pool(rec).allocate(container_id, ip))
                made.append("ip")
                ep = {
                    "container_id": container_id,
                    "network_id": rec["id"],
                    "network": rec["name"],
                    "endpoint_id": secrets.token_hex(32),
                    "ip": addr,
                    "prefixlen": net.prefixlen,
                    "gateway": rec["gateway"],
                    "mac": mac_for(addr),
                    "ifname": _free_ifname(existing),
                    "host_ifname": veth_name(container_id, rec["id"]),
                    "bridge": rec["bridge"],
                    "netns": str(netns_path),
                    "name": name,
                    "hostname": hostname,
                    "aliases": list(dict.fromkeys(aliases)),
                    "ports": [p.to_dict() for p in concrete],
                    "firewall": None,
                    "created": _now(),
                }
                # Record first: a crash from here on leaves a record that gc() cleans up.
                self.store.save_endpoint(ep)
                made.append("record")
                if concrete:
                    self.store.save_ports(published + [{**p.to_dict(), "container_id": container_id} for p in concrete])
                    made.append("ports")
                made.append("veth")  # delete_link is idempotent, so a half-made pair is undone too
                self.links.plug(ep["host_ifname"], rec["bridge"], netns_fd, ep["ifname"], ep["mac"], addr,
                                net.prefixlen, None if rec["internal"] else rec["gateway"])
                if concrete:
                    from runtime.network.firewall import PortRule

                    rules = [PortRule(p.proto, p.host_ip, p.host_port, addr, p.container_port) for p in concrete]
                    made.append("firewall")
                    assert fw is not None  # set above whenever there are ports
                    ep["firewall"] = fw.add_ports(container_id, rules)
                    self.store.save_endpoint(ep)  # keep the rule handle for an exact detach
                self._refresh_hosts(rec, container_id)
            except BaseException:
                self._undo(rec, container_id, made, fw)
                raise
            finally:
                os.close(netns_fd)
            return self._attachment(ep)

    def _undo(self, rec: dict, container_id: str, made: builtins.list[str], fw) -> None:
        """Best-effort rollback of a failed attach, newest step first."""
        steps: dict[str, Callable[[], object]] = {
            "firewall": lambda: fw.remove_ports(container_id, None),
            "veth": lambda: self.links.delete_link(veth_name(container_id, rec["id"])),
            "ports": lambda: self.store.keep_ports(lambda p: p["container_id"] != container_id),
            "record": lambda: self.store.drop_endpoint(rec["id"], container_id),
            "ip": lambda: self._pool(rec).release(container_id),
            "bridge": lambda: self._drop_bridge_if_idle(rec),
        }
        for step in reversed(made):
            try:
                steps[step]()
            except Exception:  # noqa: BLE001 - rollback must go on; the original error is raised
                pass

    def _pool(self, rec: dict) -> ipam.Ipam:
        """The address allocator of network record ``rec``."""
        return ipam.Ipam(self.store, rec["id"], ipaddress.IPv4Network(rec["subnet"]), ipaddress.IPv4Address(rec["gateway"]))

    def _drop_bridge_if_idle(self, rec: dict) -> None:
        if rec.get("default") and not self.store.has_members(rec["id"]):
            self._delete_bridge(rec)
            self._drop_table_if_unused()

    def detach(self, container_id: str, network: str | None = None, netns_dropped: bool = False) -> None:
        """Remove a container's endpoints (all, or the one on `network`); idempotent.

        `netns_dropped`: the caller unmounted the container's last netns reference, so the
        kernel deletes the veth pairs with the namespace; deleting them here would only wait
        for that (an unregister takes ~25 ms of RCU grace periods).
        """
        check_container_id(container_id)
        with self.store.locked():
            eps = self.store.endpoints_of(container_id)
            if network is not None:
                rec = self._find(network)
                eps = [e for e in eps if rec is not None and e["network_id"] == rec["id"]]
            for ep in eps:
                self._remove_endpoint(ep, delete_link=not netns_dropped)
            if not self.store.endpoints_of(container_id):
                Store.remove(self.store.hosts_dir / container_id)
            else:
                self._write_hosts(container_id)

    def _remove_endpoint(self, ep: dict, delete_link: bool = True) -> None:
        cid, net_id = ep["container_id"], ep["network_id"]
        if ep.get("ports"):
            fw = self._firewall_or_none()
            if fw is not None:
                fw.remove_ports(cid, ep.get("firewall"))
            self.store.keep_ports(lambda p: p["container_id"] != cid)
        if delete_link and os.path.exists(f"/sys/class/net/{ep['host_ifname']}"):
            self.links.delete_link(ep["host_ifname"])
        rec = self._find(net_id)
        if rec is not None:
            self._pool(rec).release(cid, ep["ip"])
        self.store.drop_endpoint(net_id, cid)
        if rec is not None:
            self._refresh_hosts(rec, cid)

    def endpoints(self, container_id: str) -> builtins.list[Attachment]:
        """The container's current attachments."""
        return [self._attachment(e) for e in self.store.endpoints_of(container_id)]

    def ports_of(self, container_id: str) -> builtins.list[PortSpec]:
        """Host ports the container publishes (what `virtlab port` shows)."""
        out: builtins.list[PortSpec] = []
        for e in self.store.endpoints_of(container_id):
            out.extend(PortSpec(**p) for p in e.get("ports", []))
        return out

    @staticmethod
    def _attachment(ep: dict) -> Attachment:
        return Attachment(
            network=ep["network"], ip=ep["ip"], prefixlen=ep["prefixlen"], gateway=ep["gateway"], mac=ep["mac"],
            ifname=ep["ifname"], ports=[PortSpec(**p) for p in ep.get("ports", [])], network_id=ep["network_id"],
            host_ifname=ep["host_ifname"], bridge=ep["bridge"],
        )

    # ------------------------------------------------------------ hosts files

    def hosts_path(self, container_id: str) -> Path:
        """The hosts file the engine bind-mounts on /etc/hosts; virtlab rewrites it in place."""
        check_container_id(container_id)
        return self.store.hosts_dir / container_id

    def hosts_for(self, container_id: str) -> str:
        """/etc/hosts lines for the container and its peers on user networks (no localhost lines).

        The complete file, with the localhost lines, is `hosts_path(container_id)`.
        """
        check_container_id(container_id)
        return self._render_hosts(container_id, {}, localhost=False)

    def resolv_conf_for(self, container_id: str) -> str:
        """/etc/resolv.conf for the container: the host's, minus nameservers it cannot reach (see hosts.resolv_conf)."""
        return hostsfile.resolv_conf()

    @staticmethod
    def _names(ep: dict, own: bool) -> builtins.list[str]:
        names = []
        if own and ep.get("hostname"):
            names.append(ep["hostname"])
        if ep.get("name"):
            names.append(ep["name"])
        names.extend(ep.get("aliases") or [])
        if not own:
            names.append(ep["container_id"][:12])
        return names

    def _render_hosts(self, container_id: str, cache: dict[str, builtins.list[dict]], localhost: bool = True) -> str:
        own: builtins.list[tuple[str, builtins.list[str]]] = []
        peers: builtins.list[tuple[str, builtins.list[str]]] = []
        for ep in self.store.endpoints_of(container_id):
            own.append((ep["ip"], self._names(ep, own=True)))
            rec = self._find(ep["network_id"])
            if rec is None or rec.get("default"):
                continue  # docker: no name resolution between containers on the default bridge
            if ep["network_id"] not in cache:
                cache[ep["network_id"]] = self.store.members(ep["network_id"])
            for peer in cache[ep["network_id"]]:
                if peer["container_id"] != container_id:
                    peers.append((peer["ip"], self._names(peer, own=False)))
        return hostsfile.render(own, peers, localhost=localhost)

    def _write_hosts(self, container_id: str, cache: dict | None = None) -> None:
        hostsfile.write_in_place(self.store.hosts_dir / container_id, self._render_hosts(container_id, cache or {}))

    def _refresh_hosts(self, rec: dict, changed: str) -> None:
        """Rewrite the hosts file of `changed` and, on user networks, of every peer."""
        cache: dict[str, builtins.list[dict]] = {}
        if self.store.endpoints_of(changed):
            self._write_hosts(changed, cache)
        if rec.get("default"):
            return
        for peer in self.store.members(rec["id"]):
            if peer["container_id"] != changed:
                self._write_hosts(peer["container_id"], cache)

    # ------------------------------------------------------------ cleanup

    def gc(self, live_container_ids: builtins.list[str] | set[str]) -> dict[str, builtins.list[str]]:
        """Remove endpoints of containers not in `live_container_ids`, and kernel leftovers of crashes.

        Returns what was removed, per kind. Safe to run at any time (the engine runs it at start).
        """
        live = set(live_container_ids)
        report: dict[str, builtins.list[str]] = {"endpoints": [], "links": [], "rules": [], "hosts": [], "addresses": []}
        with self.store.locked():
            for ep in self.store.all_endpoints():
                if ep["container_id"] not in live:
                    self._remove_endpoint(ep)
                    report["endpoints"].append(f"{ep['container_id'][:12]} on {ep['network']}")
            eps = self.store.all_endpoints()
            known_veths = {e["host_ifname"] for e in eps}
            bridges = {r["bridge"] for r in self.store.networks() if self._owns_link(r["bridge"])}
            for link in _host_links():
                if link.startswith("vlv") and link not in known_veths and _master(link) in bridges:
                    self.links.delete_link(link)
                    report["links"].append(link)
            fw = self._firewall_or_none()
            if fw is not None and fw.exists():
                wanted = {fw.chain_for(e["container_id"]) for e in eps if e.get("ports")}
                for chain in sorted(fw.chains() - wanted):
                    fw.remove_chain(chain)
                    report["rules"].append(chain)
            has_eps = {e["container_id"] for e in eps}
            self.store.keep_ports(lambda p: p["container_id"] in has_eps)
            for name in os.listdir(self.store.hosts_dir):
                if name not in has_eps and not name.startswith("."):
                    Store.remove(self.store.hosts_dir / name)
                    report["hosts"].append(name)
            for rec in self.store.networks():
                members = {e["container_id"] for e in self.store.members(rec["id"])}
                pool = self._pool(rec)
                for addr, owner in pool.allocated().items():
                    if owner not in members:
                        pool.release(owner, addr)
                        report["addresses"].append(f"{addr} ({rec['name']})")
            self._drop_table_if_unused()
        return {k: v for k, v in report.items() if v}

    def teardown(self) -> None:
        """Remove every kernel object of this store (endpoints, bridges, firewall table); keep network records."""
        with self.store.locked():
            for ep in self.store.all_endpoints():
                self._remove_endpoint(ep)
            for rec in self.store.networks():
                self._delete_bridge(rec)
            fw = self._firewall_or_none()
            if fw is not None:
                fw.drop_all()

