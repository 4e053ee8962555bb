"""The container's network: none, host, or a network of runtime.network (bridge by default).

For `none` and bridge networks the engine makes the container's network namespace itself (a
bind mount at /run/netns/vl-<id12>, with the loopback interface up, as docker has it) and passes
its path in config.json; for a bridge network it then asks the NetworkManager to attach it
(veth, address, port DNAT). Everything is undone by teardown().
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from pathlib import Path

from runtime.engine import linux
from runtime.engine.errors import EngineError

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def _manager(engine: Any) -> Any:
    try:
        from runtime.network import NetworkManager
    except ImportError as exc:
        raise EngineError(f"bridge networking is not available ({exc}); use --network none or --network host") from None
    return NetworkManager(engine.root / "network")


def check_available(engine: Any, name: str) -> None:
    """Fail early (before anything is created) when network `name` cannot be used."""
    nm = _manager(engine)
    if name != "bridge":
        try:
            nm.inspect(name)
        except Exception as exc:  # noqa: BLE001 - the network package's own not-found error
            raise EngineError(f"network {name} not found") from exc


def netns_path(cid: str) -> Path:
    """Where the container's network namespace is bind-mounted."""
    return NETNS_DIR / f"vl-{cid[:12]}"


def loopback_up() -> None:
    """Bring `lo` up in the calling thread's network namespace (SIOCSIFFLAGS, no netlink)."""
    import _socket  # the C module: `socket` builds its enums at import (~2 ms)

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack("16sH22x", req)[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
    finally:
        s.close()


def _make_netns(path: Path) -> None:
    """Create a network namespace with `lo` up and pin it with a bind mount at `path`.

    Made in this thread, which then returns to its own namespace: a network namespace is
    per thread, and this costs no fork (a forked child was ~3 ms of every start).
    """
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            linux.unshare(CLONE_NEWNET)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise EngineError(f"cannot create network namespace {path}: {exc.strerror}") from None
        try:
            loopback_up()
            linux.mount("/proc/thread-self/ns/net", str(path), None, linux.MS_BIND)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise EngineError(f"cannot create network namespace {path}: {exc.strerror}") from None
        finally:
            _return_to(own)
    finally:
        os.close(own)


def _return_to(own: int) -> None:
    """Go back to the thread's own network namespace; staying in the new one is never an option."""
    try:
        linux.setns(own, CLONE_NEWNET)
    except OSError as exc:  # root can always rejoin its namespace: this is a broken host
        import sys

        print(f"fatal: cannot return to the host network namespace: {exc}", file=sys.stderr)
        os._exit(125)


def _drop_netns(path: Path) -> None:
    with contextlib.suppress(OSError):
        linux.umount(str(path), linux.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def setup(engine: Any, rec: dict[str, Any]) -> str | None:
    """Prepare the network for a start; returns the netns path for config.json (None: the runtime makes one)."""
    net = rec["Norm"]["network"]
    rec["NetworkSettings"] = {"Networks": {net: {}}, "Ports": {}}
    if net == "host":
        return None
    cid = rec["Id"]
    path = netns_path(cid)
    _drop_netns(path)
    _make_netns(path)
    if net == "none":
        rec["NetworkSettings"]["NetnsPath"] = str(path)
        return str(path)
    from runtime.network import PortSpec

    try:
        ports = [PortSpec(host_ip=p["host_ip"] or "0.0.0.0", host_port=p["host_port"],
                          container_port=p["container_port"], proto=p["proto"])
                 for p in _ports(rec)]
        nm = _manager(engine)
        att = nm.attach(cid, str(path), network=net, name=rec["Name"], aliases=[cid[:12]], ports=ports,
                        hostname=rec["Hostname"])
        hosts_path = str(nm.hosts_path(cid))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            _manager(engine).detach(cid)
        _drop_netns(path)
        if isinstance(exc, EngineError):
            raise
        raise EngineError(f"cannot attach container {rec['Name']} to network {net}: {exc}") from exc
    a = att.to_dict()
    # the network keeps this hosts file current as peers come and go; it is bind-mounted as is
    rec["NetworkSettings"] = {"Networks": {net: a}, "NetnsPath": str(path), "HostsPath": hosts_path}
    return str(path)


def _ports(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """-p mappings plus, with -P, every exposed port on a random host port."""
    out = list(rec["Norm"]["ports"])
    if rec["Spec"].get("publish_all"):
        have = {(p["container_port"], p["proto"]) for p in out}
        for exp in rec.get("ExposedPorts") or []:
            port, _, proto = exp.partition("/")
            if port.isdigit() and (int(port), proto or "tcp") not in have:
                out.append({"container_port": int(port), "proto": proto or "tcp", "host_ip": "", "host_port": 0})
    return out


def teardown(engine: Any, rec: dict[str, Any]) -> None:
    """Drop the netns and detach from the network (idempotent).

    The netns goes first: with the container's processes gone, its bind mount is the last
    reference, and the kernel then deletes the veth pair with the namespace, so the detach
    only releases the address, the ports and the hosts entries.
    """
    net = rec["Norm"]["network"]
    if net != "host":
        # from the ID, not the record: a start killed before it saved NetnsPath made one too
        _drop_netns(netns_path(rec["Id"]))
    if net not in ("none", "host"):
        with contextlib.suppress(EngineError):
            _manager(engine).detach(rec["Id"], netns_dropped=True)


def gc(engine: Any, gone: str) -> None:
    """After a crash: have the network drop what containers that no longer run left (endpoints, veths, rules)."""
    if not (engine.root / "network").is_dir():
        return
    live = [cid for cid in engine.store.ids() if cid != gone]
    try:
        _manager(engine).gc(live)
    except Exception as exc:  # noqa: BLE001 - the container goes anyway; say what stays behind
        import sys

        print(f"warning: network cleanup after container {gone[:12]} failed: {exc}", file=sys.stderr)


def resolv_conf(engine: Any, rec: dict[str, Any]) -> str:
    """/etc/resolv.conf for a container on a network: the network's (no nameserver it cannot reach)."""
    return _manager(engine).resolv_conf_for(rec["Id"])


def hosts(engine: Any, rec: dict[str, Any]) -> str:
    """/etc/hosts for the container: localhost, its own address, and its network peers."""
    base = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
    net = rec["Norm"]["network"]
    if net in ("none", "host"):
        return base
    with contextlib.suppress(Exception):
        return base + _manager(engine).hosts_for(rec["Id"])
    return base


def published(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The published ports of a started container: container_port, proto, host_ip, host_port."""
    for att in ((rec.get("NetworkSettings") or {}).get("Networks") or {}).values():
        if isinstance(att, dict) and att.get("ports"):
            return [dict(p) for p in att["ports"]]
    return []
