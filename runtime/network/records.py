"""The network store on disk: one lock, network records, endpoint records, hosts files.

Layout under `<root>/network/` (owned by runtime/network alone)::

    lock                    flock held for every change (parallel CLIs serialise here)
    networks/<id>.json      one network: name, subnet, gateway, bridge, internal, created
    ipam/<id>/<address>     one file per allocated address, holding its owner (see ipam.py)
    endpoints/<net id>/<cid>.json   one endpoint: container, ip, mac, veth, names, ports
    ports.json              host ports published by this store (proto/ip/port -> container)
    hosts/<cid>             the /etc/hosts the engine bind-mounts; rewritten in place

Writes go to a temporary file in the same directory and are renamed over the old one,
so a crash never leaves half a record. Hosts files are the exception: they are
bind-mounted into running containers and must keep their inode (see hosts.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def lock_file(path: Path | str) -> int:
    """Open (creating, mode 0600) and flock ``path`` exclusively; the caller closes the fd to release it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _names(d: Path) -> list[str]:
    """The entries of folder ``d``, sorted; none when it does not exist."""
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


def _record_names(d: Path) -> list[str]:
    """The JSON records in ``d`` (hidden files are temporary ones being written)."""
    return [n for n in _names(d) if n.endswith(".json") and not n.startswith(".")]


class Store:
    """Paths, the lock and JSON records of one store root's network folder."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.networks_dir = self.path / "networks"  # network records
        self.ipam_dir = self.path / "ipam"  # per-network allocation files
        self.endpoints_dir = self.path / "endpoints"  # per-container endpoint records, one folder per network
        self.hosts_dir = self.path / "hosts"  # the hosts files containers bind-mount
        self.ports_file = self.path / "ports.json"  # host ports published by containers of this store
        self._lock_fd: int | None = None
        self._depth = 0
        self._thread_lock = threading.RLock()
        self._ensured = False

    # ------------------------------------------------------------ layout

    def ensure(self) -> None:
        """Create the folders (0700: records name containers and addresses)."""
        for d in (self.path, self.networks_dir, self.ipam_dir, self.endpoints_dir, self.hosts_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The engine bind-mounts hosts files into containers that may run as another user.
        os.chmod(self.hosts_dir, 0o711)

    # ------------------------------------------------------------ locking

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's exclusive lock: an flock against other processes, an RLock against other threads."""
        with self._thread_lock:
            yield from self._flocked()

    def _flocked(self) -> Iterator[None]:
        if self._depth == 0:
            if not self._ensured:
                self.ensure()
                self._ensured = True
            self._lock_fd = lock_file(self.path / "lock")
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._lock_fd is not None:
                os.close(self._lock_fd)  # closing releases the flock
                self._lock_fd = None

    # ------------------------------------------------------------ JSON files

    @staticmethod
    def read_json(path: Path, default: Any = None) -> Any:
        """Parse a JSON file, or return `default` when it does not exist."""
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return default

    @staticmethod
    def write_json(path: Path, data: Any) -> None:
        """Replace a JSON file atomically (temp file + rename)."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)

    @staticmethod
    def remove(path: Path) -> None:
        """Delete a file if it exists."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _read_all(self, d: Path) -> list[dict]:
        """Every non-empty record in folder ``d``, by file name."""
        return [rec for rec in (self.read_json(d / n) for n in _record_names(d)) if rec]

    # ------------------------------------------------------------ records

    def networks(self) -> list[dict]:
        """Every network record, oldest first."""
        return sorted(self._read_all(self.networks_dir), key=lambda r: (r.get("created", ""), r["name"]))

    def save_network(self, rec: dict) -> None:
        """Write one network record."""
        self.write_json(self.networks_dir / f"{rec['id']}.json", rec)

    def drop_network(self, net_id: str) -> None:
        """Forget a network record and its allocations."""
        self.remove(self.networks_dir / f"{net_id}.json")
        shutil.rmtree(self.ipam_dir / net_id, ignore_errors=True)

    def members(self, net_id: str) -> list[dict]:
        """The endpoints on one network."""
        return self._read_all(self.endpoints_dir / net_id)

    def has_members(self, net_id: str) -> bool:
        """True when any container has an endpoint on the network."""
        return bool(_record_names(self.endpoints_dir / net_id))

    def endpoints_of(self, container_id: str) -> list[dict]:
        """A container's endpoints on every network, in the order they were made."""
        out = [self.read_json(self.endpoints_dir / net_id / f"{container_id}.json") for net_id in _names(self.endpoints_dir)]
        return sorted((ep for ep in out if ep), key=lambda e: e.get("ifname", ""))

    def all_endpoints(self) -> list[dict]:
        """Every endpoint of this store."""
        return [ep for net_id in _names(self.endpoints_dir) for ep in self.members(net_id)]

    def save_endpoint(self, ep: dict) -> None:
        """Write one endpoint record (endpoints/<network id>/<container id>.json)."""
        d = self.endpoints_dir / ep["network_id"]
        d.mkdir(mode=0o700, exist_ok=True)
        self.write_json(d / f"{ep['container_id']}.json", ep)

    def drop_endpoint(self, net_id: str, container_id: str) -> None:
        """Delete one endpoint record, and the network's folder when it empties."""
        d = self.endpoints_dir / net_id
        self.remove(d / f"{container_id}.json")
        try:
            os.rmdir(d)
        except OSError:
            pass

    def ports(self) -> list[dict]:
        """Published host ports: dicts with proto, host_ip, host_port, container_id."""
        return self.read_json(self.ports_file, [])

    def save_ports(self, ports: list[dict]) -> None:
        """Write the published-ports table."""
        self.write_json(self.ports_file, ports)

    def keep_ports(self, keep: Callable[[dict], bool]) -> None:
        """Rewrite the published-ports table with only the entries ``keep`` accepts."""
        self.save_ports([p for p in self.ports() if keep(p)])
