"""Where cgroups live: the mode of the host, the v1 mount points, and cgroupsPath resolution.

Modes: ``v2`` (one cgroup2 tree at the root), ``hybrid`` (v1 controllers at
``<root>/<controller>`` plus a cgroup2 tree at ``<root>/unified``), ``v1`` (no cgroup2).
Everything takes the root as a parameter so unit tests can point it at a fake tree.

Directories are created level by level. Each level this code creates gets the extended
attribute ``trusted.virtlab.created``, so that ``remove_tree`` later removes the empty
parents that virtlab made (``/virtlab`` above ``/virtlab/<id>``) and never one that an
administrator made, even when a different process (``virtlab-runtime delete``) does it.
"""

import posix  # not os: see runtime.oci.lpath
import time

from runtime.oci import lpath
from runtime.oci.cgroups import files
from runtime.oci.cgroups.errors import CgroupError, CgroupUnsupported, InvalidResources

DEFAULT_ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "virtlab"
CREATED_XATTR = "trusted.virtlab.created"

# v1 hierarchies a container joins, as runc does (name=systemd only tracks processes).
V1_CONTROLLERS = (
    "cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio", "pids",
    "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "name=systemd",
)



def detect_mode(root: str = DEFAULT_ROOT) -> str:
    """The cgroup mode under ``root``: "v2", "hybrid" or "v1"."""
    if lpath.exists(lpath.join(root, "cgroup.controllers")):
        return "v2"
    if not lpath.isdir(root):
        raise CgroupUnsupported(f"no cgroup filesystem at {root}")
    if lpath.exists(lpath.join(root, "unified", "cgroup.controllers")):
        return "hybrid"
    if v1_mounts(root):
        return "v1"
    raise CgroupUnsupported(f"no cgroup filesystem at {root}: neither cgroup2 nor v1 controllers are mounted")


def v1_mounts(root: str = DEFAULT_ROOT, mountinfo: str = "/proc/self/mountinfo") -> dict[str, tuple[str, str]]:
    """v1 controller -> (mount point, mount root) for the hierarchies mounted under ``root``.

    The real tree is read from /proc/self/mountinfo (controllers sharing a mount, like
    "cpu,cpuacct", map to the same mount point). A fake tree (no cgroup mounts under
    ``root``) is read from its directory names instead.
    """
    root = root.rstrip("/") or "/"
    out: dict[str, tuple[str, str]] = {}
    try:
        with open(mountinfo) as f:
            lines = f.readlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        if fields[sep + 1] != "cgroup":
            continue
        mountpoint = _unescape(fields[4])
        if lpath.dirname(mountpoint) != root:
            continue
        for opt in fields[sep + 3].split(","):
            if opt in V1_CONTROLLERS:
                out.setdefault(opt, (mountpoint, _unescape(fields[3])))
    if out:
        return out
    if root == DEFAULT_ROOT:
        return out
    try:
        names = sorted(posix.listdir(root))
    except OSError:
        return out
    for name in names:
        path = lpath.join(root, name)
        if name == "unified" or not lpath.isdir(path):
            continue
        for part in name.split(","):
            key = "name=systemd" if part == "systemd" else part
            if key in V1_CONTROLLERS:
                out.setdefault(key, (path, "/"))
    return out


def own_cgroups(pid: int | str = "self") -> dict[str, str]:
    """The cgroup of a process per hierarchy: v1 controller -> path, and "" -> the cgroup2 path."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return parse_proc_cgroup(f.read())
    except FileNotFoundError:
        return {}


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/PID/cgroup ("4:memory:/a", "1:name=systemd:/b", "0::/c") as controller -> path."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            out[""] = path
            continue
        for c in controllers.split(","):
            out[c] = path
    return out


def parse_cgroups_path(cgroups_path: str | None, container_id: str) -> tuple[bool, list[str]]:
    """Validate an OCI cgroupsPath: (relative?, its components). None means /virtlab/<id>."""
    check_name(container_id, "container id")
    if cgroups_path is None or cgroups_path == "":
        return False, [DEFAULT_PARENT, container_id]
    if not isinstance(cgroups_path, str):
        raise InvalidResources(f"invalid cgroupsPath {cgroups_path!r}: must be a string")
    if _is_systemd_path(cgroups_path):
        raise CgroupUnsupported(
            f"invalid cgroupsPath {cgroups_path!r}: the systemd cgroup driver (slice:prefix:name) is not supported"
        )
    relative = not cgroups_path.startswith("/")
    parts = [p for p in cgroups_path.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidResources(f"invalid cgroupsPath {cgroups_path!r}: a container cannot use the root cgroup")
    for p in parts:
        if p == "..":
            raise InvalidResources(f"invalid cgroupsPath {cgroups_path!r}: '..' is not allowed")
        check_name(p, f"cgroupsPath {cgroups_path!r} component")
    return relative, parts


def check_name(name: str, what: str) -> None:
    """Reject names that cannot be one cgroup directory level."""
    if not isinstance(name, str) or not name or name in (".", "..") or _has_bad_char(name) or len(name) > 255:
        raise InvalidResources(f"invalid {what} {name!r}: must be one path component without control characters")


def base_dir(mountpoint: str, mount_root: str, relative: bool, own_path: str | None) -> str:
    """The directory a cgroupsPath is relative to in one hierarchy."""
    if not relative:
        return mountpoint
    own = own_path or "/"
    # In a cgroup namespace or a bind-mounted subtree the mount shows only part of the tree.
    if mount_root not in ("", "/") and (own == mount_root or own.startswith(mount_root + "/")):
        own = own[len(mount_root):] or "/"
    return lpath.join(mountpoint, own.lstrip("/"))


def create_tree(base: str, parts: list[str], on_level=None) -> list[str]:
    """Create ``base/parts...`` level by level; return the directories this call made.

    ``on_level(dir)`` runs on every level (new or not) before the next is made: the v1
    cpuset controller needs cpus and mems copied down before a child can hold tasks.
    A concurrent ``remove_tree`` may delete a shared parent between two mkdirs; then try
    again. On failure the levels made here are removed again.
    """
    if not lpath.isdir(base):
        raise CgroupError(f"cannot create cgroup under {base}: no such cgroup")
    made: list[str] = []
    try:
        for attempt in range(5):
            path = base
            try:
                for part in parts:
                    path = lpath.join(path, part)
                    try:
                        posix.mkdir(path, 0o755)
                    except FileExistsError:
                        # One lstat: two checks (isdir, then lexists) race with a concurrent
                        # remove and re-create of the same level.
                        try:
                            mode = posix.lstat(path).st_mode
                        except FileNotFoundError:
                            raise FileNotFoundError(path) from None  # removed meanwhile: again
                        if mode & 0o170000 != 0o040000:
                            raise CgroupError(f"cannot create cgroup {path}: a file is in the way") from None
                    else:
                        made.append(path)
                        _mark_created(path)
                    if on_level is not None:
                        on_level(path)
                return made
            except FileNotFoundError:
                if attempt == 4:
                    raise CgroupError(f"cannot create cgroup {path}: a parent kept disappearing") from None
                made = [m for m in made if lpath.isdir(m)]
            except CgroupError as exc:
                # ENODEV: a control file of a level another container removed meanwhile
                if files.is_errno(exc, files.ENOENT, files.ENODEV) and attempt < 4:
                    made = [m for m in made if lpath.isdir(m)]
                    continue
                raise
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {path}: {exc.strerror}") from exc
    except CgroupError:
        remove_made(made)
        raise
    raise AssertionError("unreachable")


def remove_made(made: list[str]) -> None:
    """Undo a partial creation: remove the given directories, deepest first, if still empty."""
    for path in sorted(made, key=len, reverse=True):
        try:
            posix.rmdir(path)
        except OSError:
            pass


def remove_tree(path: str, stop_at: str, timeout: float = 2.0) -> None:
    """Remove the cgroup ``path`` and its child cgroups, then the empty parents virtlab created.

    rmdir fails with EBUSY while exiting processes are still being reaped, so retry until
    ``timeout``. A missing directory is fine (idempotent). ``stop_at`` is never removed.
    """
    try:
        posix.rmdir(path)  # the common case: no child cgroups, no tasks left
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        if exc.errno not in (files.EBUSY, files.ENOTEMPTY):
            raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror}") from exc
        busy = True
    else:
        busy = False
    deadline = time.monotonic() + timeout
    delay = 0.001
    while busy:
        try:
            _rmdir_recursive(path)
            break
        except FileNotFoundError:
            break
        except OSError as exc:
            if exc.errno not in (files.EBUSY, files.ENOTEMPTY) or time.monotonic() >= deadline:
                raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    stop_at = stop_at.rstrip("/")
    parent = lpath.dirname(path)
    while parent.startswith(stop_at + "/") and created_by_us(parent):
        try:
            posix.rmdir(parent)
        except OSError:
            break  # still used by another container, or gone already
        parent = lpath.dirname(parent)


def _rmdir_recursive(path: str) -> None:
    for entry in posix.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _rmdir_recursive(entry.path)
    posix.rmdir(path)


def _mark_created(path: str) -> None:
    try:
        posix.setxattr(path, CREATED_XATTR, b"1")
    except OSError as exc:
        files.debug("cannot mark %s as created by virtlab (%s); it will be left in place", path, exc.strerror)


def created_by_us(path: str) -> bool:
    """True when virtlab created the cgroup directory ``path`` (it carries the tag)."""
    try:
        return posix.getxattr(path, CREATED_XATTR) == b"1"
    except OSError:
        return False


def under(path: str, root: str) -> bool:
    """True when ``path`` is strictly inside ``root`` once normalised (no .. escapes)."""
    path = lpath.normpath(path)
    root = lpath.normpath(root)
    return path.startswith(root.rstrip("/") + "/")


def _is_systemd_path(path: str) -> bool:
    """slice:prefix:name (two colons, no "/" before the first): the systemd driver's syntax."""
    return path.count(":") == 2 and "/" not in path.partition(":")[0]


def _has_bad_char(name: str) -> bool:
    """A "/" or a control character (U+0000..U+001F). String methods: `re` costs ~6 ms per start."""
    return "/" in name or any(ch < " " for ch in name)


_OCTAL = frozenset("01234567")


def _unescape(s: str) -> str:
    """Undo /proc/self/mountinfo's octal escapes (\\040 for a space)."""
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        esc = s[i + 1:i + 4]
        if s[i] == "\\" and len(esc) == 3 and _OCTAL.issuperset(esc):
            out.append(chr(int(esc, 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)
