"""linux.namespaces: which namespaces to create (unshare) and which to join (setns by path).

Order matters: the user namespace comes first (joined or created, so the others
are owned by it), then the rest; mount last among the joins, because joining a
mount namespace changes the root the other paths would be opened from. A new PID
namespace only applies to children, which is why the init is forked again after
the unshare.
"""

import os

from runtime.oci import linux
from runtime.oci.errors import SpecError, SyscallError

FLAGS = {
    "pid": linux.CLONE_NEWPID, "network": linux.CLONE_NEWNET, "mount": linux.CLONE_NEWNS,
    "ipc": linux.CLONE_NEWIPC, "uts": linux.CLONE_NEWUTS, "user": linux.CLONE_NEWUSER,
    "cgroup": linux.CLONE_NEWCGROUP, "time": linux.CLONE_NEWTIME,
}
PROC_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
              "cgroup": "cgroup", "time": "time"}
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class Plan:
    """What to do with namespaces for one container."""

    def __init__(self, unshare: int, join: list[tuple[str, str]], types: set[str]):
        self.unshare = unshare
        self.join = join
        self.types = types

    @property
    def new_user(self) -> bool:
        """True when a new user namespace is created (the parent must write the id maps)."""
        return bool(self.unshare & linux.CLONE_NEWUSER)

    @property
    def new_pid(self) -> bool:
        """True when a new PID namespace is created (the init is forked once more)."""
        return bool(self.unshare & linux.CLONE_NEWPID)

    def __repr__(self) -> str:
        return f"Plan(unshare={self.unshare:#x}, join={self.join!r})"


def plan(config: dict) -> Plan:
    """Build the namespace plan of a config."""
    linux_cfg = config.get("linux") or {}
    unshare = 0
    joins = []
    types = set()
    for ns in linux_cfg.get("namespaces") or []:
        t = ns["type"]
        types.add(t)
        if ns.get("path"):
            joins.append((t, ns["path"]))
        else:
            unshare |= FLAGS[t]
    joins.sort(key=lambda j: _JOIN_ORDER.index(j[0]))
    if (linux_cfg.get("uidMappings") or linux_cfg.get("gidMappings")) and "user" not in types:
        raise SpecError("invalid config: uidMappings/gidMappings need a user namespace")
    if "user" in types and not any(t == "user" for t, _ in joins) and not linux_cfg.get("uidMappings"):
        raise SpecError("invalid config: a new user namespace needs linux.uidMappings and linux.gidMappings")
    return Plan(unshare, joins, types)


def join(joins: list[tuple[str, str]], host=None) -> None:
    """setns into each namespace path, checking its type (setns fails with EINVAL on a mismatch)."""
    h = host or linux.host()
    for t, path in joins:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SyscallError(f"cannot open {t} namespace {path}: {e.strerror}", e.errno) from None
        try:
            h.setns(fd, FLAGS[t])
        except SyscallError as e:
            raise SyscallError(f"cannot join {t} namespace {path}: {os.strerror(e.errno)}", e.errno) from None
        finally:
            os.close(fd)


def id_map_text(mappings: list[dict] | None) -> str:
    """Render linux.uidMappings/gidMappings as the text of /proc/PID/uid_map."""
    lines = []
    for m in mappings or []:
        try:
            lines.append(f"{int(m['containerID'])} {int(m['hostID'])} {int(m['size'])}")
        except (KeyError, TypeError, ValueError):
            raise SpecError(f"invalid config: bad id mapping {m!r}") from None
    return "\n".join(lines) + "\n"


def write_id_maps(pid: int, config: dict, host=None) -> None:
    """Write uid_map and gid_map of PID (a process that just unshared its user namespace)."""
    h = host or linux.host()
    linux_cfg = config.get("linux") or {}
    h.write_file(f"/proc/{pid}/uid_map", id_map_text(linux_cfg.get("uidMappings")))
    # Root in the parent namespace may write gid_map without denying setgroups first.
    h.write_file(f"/proc/{pid}/gid_map", id_map_text(linux_cfg.get("gidMappings")))


def namespace_paths(pid: int, types) -> dict[str, str]:
    """The /proc/PID/ns/* paths of a running container, for exec to join."""
    return {t: f"/proc/{pid}/ns/{PROC_NAMES[t]}" for t in types}
