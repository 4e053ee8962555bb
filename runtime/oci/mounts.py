"""config.json mounts: option parsing and mounting one entry safely inside the rootfs."""

import os
import stat

from runtime.oci import linux, paths
from runtime.oci.errors import SecurityError, SpecError, SyscallError

# option -> (clear?, flag)
FLAG_OPTIONS = {
    "defaults": (False, 0), "ro": (False, linux.MS_RDONLY), "rw": (True, linux.MS_RDONLY),
    "suid": (True, linux.MS_NOSUID), "nosuid": (False, linux.MS_NOSUID),
    "dev": (True, linux.MS_NODEV), "nodev": (False, linux.MS_NODEV),
    "exec": (True, linux.MS_NOEXEC), "noexec": (False, linux.MS_NOEXEC),
    "sync": (False, linux.MS_SYNCHRONOUS), "async": (True, linux.MS_SYNCHRONOUS),
    "dirsync": (False, linux.MS_DIRSYNC), "remount": (False, linux.MS_REMOUNT),
    "mand": (False, linux.MS_MANDLOCK), "nomand": (True, linux.MS_MANDLOCK),
    "atime": (True, linux.MS_NOATIME), "noatime": (False, linux.MS_NOATIME),
    "diratime": (True, linux.MS_NODIRATIME), "nodiratime": (False, linux.MS_NODIRATIME),
    "bind": (False, linux.MS_BIND), "rbind": (False, linux.MS_BIND | linux.MS_REC),
    "relatime": (False, linux.MS_RELATIME), "norelatime": (True, linux.MS_RELATIME),
    "strictatime": (False, linux.MS_STRICTATIME), "nostrictatime": (True, linux.MS_STRICTATIME),
    "lazytime": (False, linux.MS_LAZYTIME), "nolazytime": (True, linux.MS_LAZYTIME),
    "symfollow": (True, linux.MS_NOSYMFOLLOW), "nosymfollow": (False, linux.MS_NOSYMFOLLOW),
}
PROPAGATION_OPTIONS = {
    "private": linux.MS_PRIVATE, "rprivate": linux.MS_PRIVATE | linux.MS_REC,
    "shared": linux.MS_SHARED, "rshared": linux.MS_SHARED | linux.MS_REC,
    "slave": linux.MS_SLAVE, "rslave": linux.MS_SLAVE | linux.MS_REC,
    "unbindable": linux.MS_UNBINDABLE, "runbindable": linux.MS_UNBINDABLE | linux.MS_REC,
}
# Options runc accepts and ignores here (idmapped and recursive-attr mounts are not supported).
_IGNORED = {"tmpcopyup"}
# Targets that must be real directories of the image, never followed symlinks (CVE-2023-28642, CVE-2026-41579).
_REAL_DIR_TARGETS = ("/proc", "/sys", "/dev")


class MountSpec:
    """One parsed entry of config.json mounts."""

    def __init__(self, entry: dict):
        self.destination = entry["destination"]
        if not self.destination.startswith("/"):
            # runc treats relative destinations as relative to /; keep that.
            self.destination = "/" + self.destination
        self.type = entry.get("type") or ""
        self.source = entry.get("source") or ""
        self.flags, self.propagation, self.data = parse_options(entry.get("options") or [])
        if self.type == "bind":
            self.flags |= linux.MS_BIND
        if self.is_bind and not self.source:
            raise SpecError(f"invalid config: bind mount at {self.destination} needs a source")

    @property
    def is_bind(self) -> bool:
        """True for bind mounts (type bind, or a bind/rbind option)."""
        return bool(self.flags & linux.MS_BIND)

    def __repr__(self) -> str:
        return f"MountSpec({self.type or 'bind'} {self.source} -> {self.destination}, flags={self.flags:#x})"


def parse_options(options: list[str]) -> tuple[int, list[int], str]:
    """Split mount options into (flags, [propagation flags], data string)."""
    flags = 0
    prop = []
    data = []
    for opt in options:
        if not isinstance(opt, str):
            raise SpecError(f"invalid config: mount option {opt!r} must be a string")
        if opt in FLAG_OPTIONS:
            clear, f = FLAG_OPTIONS[opt]
            flags = flags & ~f if clear else flags | f
        elif opt in PROPAGATION_OPTIONS:
            prop.append(PROPAGATION_OPTIONS[opt])
        elif opt in _IGNORED:
            continue
        else:
            data.append(opt)
    return flags, prop, ",".join(data)


def mount_entry(m: MountSpec, root_fd: int, rootfs: str, host=None, mount_label: str = "") -> None:
    """Mount one entry at its destination, resolved inside the rootfs, through an O_PATH fd."""
    h = host or linux.host()
    if m.type == "cgroup":
        raise SpecError("cgroup mounts are handled by rootfs.mount_cgroup")
    source_is_dir = True
    if m.is_bind:
        try:
            st = os.stat(m.source)
        except OSError as e:
            raise SpecError(f"cannot bind mount {m.source} at {m.destination}: {e.strerror}") from None
        source_is_dir = stat.S_ISDIR(st.st_mode)
    if m.destination in _REAL_DIR_TARGETS or m.type in ("proc", "sysfs"):
        check_real_directory(root_fd, m.destination)
    fd = paths.mkdir_all(root_fd, m.destination, host=h) if source_is_dir else \
        paths.ensure_file(root_fd, m.destination, host=h)
    try:
        paths.check_inside(fd, rootfs, f"mount destination {m.destination}")
        target = paths.fd_path(fd)
        data = m.data
        if mount_label and selinux_enabled() and m.type not in ("proc", "sysfs", "mqueue", "cgroup", "bind", "") and not m.is_bind:
            data = ",".join(x for x in (data, f"context=\"{mount_label}\"") if x)
        flags = m.flags
        try:
            if m.is_bind:
                h.mount(m.source, target, m.type or None, flags & (linux.MS_BIND | linux.MS_REC), None)
            else:
                h.mount(m.source or m.type, target, m.type, flags, data or None)
        except SyscallError as e:
            raise SyscallError(f"cannot mount {m.source or m.type} at {m.destination}: {os.strerror(e.errno)}",
                               e.errno) from None
    finally:
        os.close(fd)
    # Bind mounts ignore most flags on the first call: apply them with a remount. The old fd names
    # the covered directory, so reopen the destination to reach the new mount.
    rest = flags & ~(linux.MS_BIND | linux.MS_REC | linux.MS_REMOUNT) if m.is_bind else 0
    if rest or m.propagation:
        fd = paths.open_in_root(root_fd, m.destination, host=h)
        try:
            paths.check_inside(fd, rootfs, f"mount destination {m.destination}")
            target = paths.fd_path(fd)
            if rest:
                _remount_bind(h, target, rest)
            for p in m.propagation:
                h.mount(None, target, None, p, None)
        finally:
            os.close(fd)


def selinux_enabled() -> bool:
    """True when SELinux is mounted (mount labels are ignored otherwise, as crun does)."""
    return os.path.exists("/sys/fs/selinux/enforce")


def _remount_bind(h, target: str, flags: int) -> None:
    """Remount a bind mount with FLAGS, keeping the locked flags the kernel insists on (nodev, nosuid...)."""
    try:
        h.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | flags, None)
    except SyscallError as e:
        if e.errno != 1:  # EPERM: locked flags (in a user namespace) must be kept
            raise
        cur = _statvfs_flags(target)
        h.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | flags | cur, None)


def _statvfs_flags(path: str) -> int:
    st = os.statvfs(path)
    out = 0
    for bit, flag in ((os.ST_RDONLY, linux.MS_RDONLY), (os.ST_NOSUID, linux.MS_NOSUID),
                      (os.ST_NODEV, linux.MS_NODEV), (os.ST_NOEXEC, linux.MS_NOEXEC),
                      (os.ST_NOATIME, linux.MS_NOATIME), (os.ST_NODIRATIME, linux.MS_NODIRATIME),
                      (os.ST_RELATIME, linux.MS_RELATIME)):
        if st.f_flag & bit:
            out |= flag
    return out


def check_real_directory(root_fd: int, dest: str) -> None:
    """Refuse a /proc or /sys target that is a symlink or not a directory (CVE-2023-28642)."""
    parent, _, name = dest.rstrip("/").rpartition("/")
    try:
        pfd = paths.open_in_root(root_fd, parent or "/")
    except FileNotFoundError:
        return
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    finally:
        os.close(pfd)
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise SecurityError(f"{dest} cannot be mounted: the rootfs {dest} is {kind}; "
                            "it must be mounted on an ordinary directory")
