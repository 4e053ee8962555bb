"""Device nodes in the container's /dev: the default set plus linux.devices.

Nodes are created with mknod relative to an fd of /dev inside the rootfs; in a
user namespace (where mknod is not allowed) the host node is bind-mounted
instead, as runc does.
"""

import os
import stat

from runtime.oci import linux, paths
from runtime.oci.errors import SecurityError, SpecError, SyscallError

# path, type, major, minor, mode
DEFAULT_DEVICES = [
    ("/dev/null", "c", 1, 3, 0o666), ("/dev/zero", "c", 1, 5, 0o666), ("/dev/full", "c", 1, 7, 0o666),
    ("/dev/random", "c", 1, 8, 0o666), ("/dev/urandom", "c", 1, 9, 0o666), ("/dev/tty", "c", 5, 0, 0o666),
]
DEFAULT_LINKS = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                 ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"),
                 ("pts/ptmx", "/dev/ptmx")]
_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


class Device:
    """One device node to create."""

    def __init__(self, path: str, kind: str, major: int, minor: int, mode: int, uid: int = 0, gid: int = 0):
        self.path, self.kind, self.major, self.minor = path, kind, major, minor
        self.mode, self.uid, self.gid = mode, uid, gid

    def __repr__(self) -> str:
        return f"Device({self.path} {self.kind} {self.major}:{self.minor})"


def parse(config: dict) -> list[Device]:
    """The default devices plus linux.devices (config entries override defaults with the same path)."""
    out = {p: Device(p, t, ma, mi, mode) for p, t, ma, mi, mode in DEFAULT_DEVICES}
    for d in (config.get("linux") or {}).get("devices") or []:
        path = d.get("path")
        if not isinstance(path, str) or not path.startswith("/dev/") or ".." in path.split("/"):
            raise SpecError(f"invalid config: device path {path!r} must be under /dev")
        kind = d.get("type")
        if kind not in _TYPES:
            raise SpecError(f"invalid config: device {path} has unknown type {kind!r}")
        major, minor = d.get("major", 0), d.get("minor", 0)
        if kind != "p" and ("major" not in d or "minor" not in d):
            raise SpecError(f"invalid config: device {path} needs major and minor numbers")
        mode = d.get("fileMode", 0o666)
        out[path] = Device(path, kind, int(major), int(minor), int(mode) & 0o7777,
                           int(d.get("uid", 0)), int(d.get("gid", 0)))
    return list(out.values())


def create(devices: list[Device], root_fd: int, rootfs: str, bind: bool, host=None) -> None:
    """Create DEVICES inside the rootfs (bind-mount the host nodes when BIND, i.e. in a user namespace)."""
    h = host or linux.host()
    old = os.umask(0)
    try:
        for dev in devices:
            parent, _, name = dev.path.rpartition("/")
            pfd = paths.mkdir_all(root_fd, parent, host=h)
            try:
                paths.check_inside(pfd, rootfs, f"device directory {parent}")
                if bind:
                    _bind_device(h, dev, pfd, name)
                    continue
                try:
                    os.unlink(name, dir_fd=pfd)
                except FileNotFoundError:
                    pass
                except IsADirectoryError:
                    raise SecurityError(f"cannot create device {dev.path}: a directory is in the way") from None
                node = _TYPES[dev.kind] | dev.mode
                try:
                    os.mknod(name, node, os.makedev(dev.major, dev.minor), dir_fd=pfd)
                except OSError as e:
                    raise SyscallError(f"cannot create device {dev.path}: {e.strerror}", e.errno) from None
                os.chown(name, dev.uid, dev.gid, dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(pfd)
    finally:
        os.umask(old)


def _bind_device(h, dev: Device, pfd: int, name: str) -> None:
    try:
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=pfd))
    except FileExistsError:
        pass
    tfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
    try:
        h.mount(dev.path, paths.fd_path(tfd), "bind", linux.MS_BIND, None)
    finally:
        os.close(tfd)


def create_links(root_fd: int, host=None) -> None:
    """The standard /dev symlinks (fd, stdin, stdout, stderr, ptmx)."""
    dfd = paths.open_in_root(root_fd, "/dev", host=host)
    try:
        for target, link in DEFAULT_LINKS:
            name = link.rpartition("/")[2]
            try:
                os.symlink(target, name, dir_fd=dfd)
            except FileExistsError:
                if name == "ptmx":  # a ptmx node left there would bypass the container's devpts
                    os.unlink(name, dir_fd=dfd)
                    os.symlink(target, name, dir_fd=dfd)
    finally:
        os.close(dfd)


def check_null(fd: int) -> None:
    """Make sure FD is the real /dev/null (char 1:3) before masking with it (CVE-2025-31133)."""
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) != 1 or os.minor(st.st_rdev) != 3:
        raise SecurityError("the container's /dev/null is not the null device (char 1:3); refusing to mask with it")


# Device cgroup rules runc appends after the config's own (mknod anywhere, the default nodes, ptys, tun).
DEFAULT_ALLOWED_RULES = [
    {"allow": True, "type": "c", "access": "m"}, {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


def cgroup_resources(config: dict) -> dict:
    """linux.resources with the device rules completed as runc does: config rules, defaults, linux.devices."""
    linux_cfg = config.get("linux") or {}
    resources = dict(linux_cfg.get("resources") or {})
    rules = list(resources.get("devices") or [])
    if rules or linux_cfg.get("devices"):
        rules += DEFAULT_ALLOWED_RULES
        for d in linux_cfg.get("devices") or []:
            if d.get("type") in ("c", "b", "u"):
                rules.append({"allow": True, "type": "c" if d["type"] == "u" else d["type"],
                              "major": d.get("major"), "minor": d.get("minor"), "access": "rwm"})
        resources["devices"] = rules
    return resources
