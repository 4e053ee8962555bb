"""The container's root filesystem, set up in the init's new mount namespace.

Order (read top to bottom, as runc does it): root propagation, bind the rootfs
onto itself, the config's mounts (each destination resolved inside the rootfs
and mounted through an O_PATH fd), device nodes and /dev links, then --after the
createContainer hooks-- pivot_root (or MS_MOVE + chroot with --no-pivot), the
rootfs propagation of the new /, masked and read-only paths, and a read-only root.
"""

import errno
import os
import stat

from runtime.oci import devices, linux, mounts, paths
from runtime.oci.errors import SecurityError, SpecError, SyscallError


def propagation_flag(config: dict) -> int:
    """The propagation to give the mounts of the new mount namespace (rslave unless rootfsPropagation says)."""
    prop = (config.get("linux") or {}).get("rootfsPropagation")
    if not prop:
        return linux.MS_SLAVE | linux.MS_REC
    if prop not in mounts.PROPAGATION_OPTIONS:
        raise SpecError(f"invalid config: unknown linux.rootfsPropagation {prop!r}")
    return mounts.PROPAGATION_OPTIONS[prop] | linux.MS_REC


def prepare(config: dict, rootfs: str, host=None, userns: bool = False, rootfs_fd: int | None = None,
            tree_fd: int = -1, stop_before_cgroup: bool = False) -> "Prepared":
    """Bind the rootfs and mount the config's entries (see mount_all); return the Prepared rootfs.

    TREE_FD, a detached copy of the rootfs made before entering a user namespace, is attached
    over / of the new mount namespace: that works where the namespace's root cannot traverse the
    bundle's path (e.g. a bundle under a 0700 /root), which a path-based bind mount cannot.
    """
    h = host or linux.host()
    if tree_fd >= 0:
        h.mount(None, "/", None, linux.MS_SLAVE | linux.MS_REC, None)
        h.attach_tree(tree_fd, "/")
        p = Prepared(tree_fd, "/")
        mount_all(p, config, h, userns, stop_before_cgroup)
        return p
    flag = propagation_flag(config)
    # Shared propagation of / would leak the container's mounts to the host: start from slave,
    # and only make the container's own / shared after pivot_root when asked to.
    h.mount(None, "/", None, flag if not flag & linux.MS_SHARED else linux.MS_SLAVE | linux.MS_REC, None)
    if flag & linux.MS_SHARED or not flag & linux.MS_SLAVE:
        _make_parent_private(h, rootfs)
    own_fd = rootfs_fd is None
    src_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if rootfs_fd is None else rootfs_fd
    try:
        try:
            root_fd = h.bind_tree(src_fd)
        except SyscallError as e:
            if e.errno not in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
                raise
            h.mount(rootfs, rootfs, "bind", linux.MS_BIND | linux.MS_REC, None)
            root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        if own_fd:
            os.close(src_fd)
    p = Prepared(root_fd, rootfs)
    mount_all(p, config, h, userns, stop_before_cgroup)
    return p


class Prepared:
    """A rootfs being set up: its fd, its path as seen here, and how far the mounts got."""

    def __init__(self, fd: int, path: str):
        self.fd = fd
        self.path = path
        self.next = 0
        self.dev_is_tmpfs = False
        self.done = False
        self.hierarchies: dict[str, tuple[str, str]] | None = None  # read while waiting for the cgroup


def _is_cgroup_mount(m: mounts.MountSpec) -> bool:
    return m.type == "cgroup" or (m.type == "" and m.source == "cgroup" and not m.is_bind)


def mount_all(p: Prepared, config: dict, h, userns: bool, stop_before_cgroup: bool = False,
              cgroup_dirs: list[str] | None = None) -> int:
    """Mount the config's entries from where P stopped; then devices and /dev links. Returns the fd.

    With STOP_BEFORE_CGROUP the walk pauses at the first cgroup mount: that one needs the init to be
    in its cgroup already, while everything before it can be done while the runtime creates it.
    CGROUP_DIRS (host directories, one per hierarchy at most) names the init's cgroups where
    /proc/self/cgroup may not show them yet (the runtime is still moving it there).
    """
    if p.done:
        return p.fd
    linux_cfg = config.get("linux") or {}
    try:
        entries = config.get("mounts") or []
        while p.next < len(entries):
            m = mounts.MountSpec(entries[p.next])
            if _is_cgroup_mount(m):
                if stop_before_cgroup:
                    p.hierarchies = _host_hierarchies()  # mountinfo parsed now, off the critical path
                    return p.fd
                mount_cgroup(m, p.fd, p.path, h, linux_cfg.get("namespaces") or [], cgroup_dirs, p.hierarchies)
            else:
                mounts.mount_entry(m, p.fd, p.path, h, linux_cfg.get("mountLabel") or "")
                if m.destination.rstrip("/") == "/dev" and not m.is_bind:
                    p.dev_is_tmpfs = True
            p.next += 1
        if stop_before_cgroup:
            return p.fd  # devices after the cgroup placement too: the device cgroup then applies to mknod
        if p.dev_is_tmpfs:
            devices.create(devices.parse(config), p.fd, p.path, bind=userns, host=h)
            devices.create_links(p.fd, host=h)
        elif linux_cfg.get("devices"):
            devices.create(devices.parse(config)[len(devices.DEFAULT_DEVICES):], p.fd, p.path, bind=userns, host=h)
        p.done = True
    except BaseException:
        os.close(p.fd)
        raise
    return p.fd


def _make_parent_private(h, rootfs: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared: make that mount private."""
    mountpoint = _mountpoint_of(rootfs)
    if mountpoint is not None:
        try:
            h.mount(None, mountpoint, None, linux.MS_PRIVATE, None)
        except SyscallError:
            pass


def _mountpoint_of(path: str) -> str | None:
    """The mount point (from /proc/self/mountinfo) that contains PATH."""
    best = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split(" ", 5)[4].replace("\\040", " ")
                if (path == mp or path.startswith(mp.rstrip("/") + "/")) and (best is None or len(mp) > len(best)):
                    best = mp
    except OSError:
        return None
    return best


def mount_cgroup(m: mounts.MountSpec, root_fd: int, rootfs: str, h, namespaces: list,
                 cgroup_dirs: list[str] | None = None,
                 hierarchies: dict[str, tuple[str, str]] | None = None) -> None:
    """Mount /sys/fs/cgroup: cgroup2 on a unified host; on v1/hybrid a tmpfs with one mount per hierarchy.

    Each hierarchy shows the init's own cgroup: the one of CGROUP_DIRS under its mount point,
    else the one /proc/self/cgroup names (read only when needed: reading it takes the kernel's
    cgroup_mutex, which the runtime may hold while it adds the init to the cgroup2 tree).
    """
    ro = m.flags & linux.MS_RDONLY
    base_flags = m.flags & ~linux.MS_RDONLY
    own_cgroupns = any(ns.get("type") == "cgroup" for ns in namespaces)
    if hierarchies is None:
        hierarchies = _host_hierarchies()
    if hierarchies.get("") and hierarchies[""][0] == "/sys/fs/cgroup":  # pure cgroup v2
        fd = paths.mkdir_all(root_fd, m.destination, host=h)
        try:
            target = paths.fd_path(fd)
            if own_cgroupns:
                h.mount("cgroup2", target, "cgroup2", m.flags, None)
            else:
                h.mount(_own_cgroup_dir("/sys/fs/cgroup", ""), target, "bind", linux.MS_BIND | linux.MS_REC, None)
        finally:
            os.close(fd)
        if not own_cgroupns and m.flags & ~linux.MS_BIND:
            fd = paths.open_in_root(root_fd, m.destination, host=h)
            try:
                h.mount(None, paths.fd_path(fd), None, linux.MS_REMOUNT | linux.MS_BIND | m.flags, None)
            finally:
                os.close(fd)
        return
    tmpfs = mounts.MountSpec({"destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                              "options": ["mode=755"]})
    tmpfs.flags = base_flags
    mounts.mount_entry(tmpfs, root_fd, rootfs, h)
    own: list[tuple[str, str]] | None = None  # /proc/self/cgroup, read once if at all
    binds: list[str] = []  # given their flags together, below
    for key, (mountpoint, options) in sorted(hierarchies.items()):
        name = os.path.basename(mountpoint)
        dest = f"{m.destination.rstrip('/')}/{name}"
        fd = paths.mkdir_all(root_fd, dest, host=h)
        try:
            target = paths.fd_path(fd)
            if own_cgroupns and key:
                h.mount("cgroup", target, "cgroup", base_flags | ro, options)
            elif own_cgroupns:
                h.mount("cgroup2", target, "cgroup2", base_flags | ro, None)
            else:
                prefix = mountpoint.rstrip("/") + "/"
                src = next((d for d in cgroup_dirs or () if d.startswith(prefix)), "")
                if not src:
                    if own is None:
                        own = _own_cgroups()
                    src = _own_cgroup_dir(mountpoint, key, own)
                h.mount(src, target, "bind", linux.MS_BIND | linux.MS_REC, None)
                binds.append(dest)
        finally:
            os.close(fd)
        # cpu,cpuacct style co-mounts get the per-controller symlinks tools expect.
        if "," in name:
            for sub in name.split(","):
                pfd = paths.open_in_root(root_fd, m.destination, host=h)
                try:
                    os.symlink(name, sub, dir_fd=pfd)
                except FileExistsError:
                    pass
                finally:
                    os.close(pfd)
    if binds:
        _set_bind_flags(root_fd, m.destination, binds, base_flags | ro, h)
    if ro:
        fd = paths.open_in_root(root_fd, m.destination, host=h)
        try:
            h.mount(None, paths.fd_path(fd), None, linux.MS_REMOUNT | linux.MS_RDONLY | base_flags, "mode=755")
        finally:
            os.close(fd)


def _set_bind_flags(root_fd: int, top: str, binds: list[str], flags: int, h) -> None:
    """Give the bind mounts BINDS under TOP (a tmpfs) the mount FLAGS.

    One recursive mount_setattr from TOP (Linux 5.12+; the tmpfs gets FLAGS too, which it is
    given anyway) instead of one bind remount per hierarchy: ten fewer mount calls in `create`.
    """
    fd = paths.open_in_root(root_fd, top, host=h)
    try:
        h.set_mount_flags(fd, flags)
        return
    except SyscallError:
        pass  # before 5.12: one remount each
    finally:
        os.close(fd)
    for dest in binds:
        fd = paths.open_in_root(root_fd, dest, host=h)  # the new mount, not the covered dir
        try:
            h.mount(None, paths.fd_path(fd), None, linux.MS_REMOUNT | linux.MS_BIND | flags, None)
        finally:
            os.close(fd)


def _host_hierarchies() -> dict[str, tuple[str, str]]:
    """{controller key: (mountpoint, options)} of the cgroup mounts visible here; v2 has key ''."""
    out: dict[str, tuple[str, str]] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _src, sopts = post.split()[:3]
            mp = pre.split()[4]
            if fstype == "cgroup":
                ctrls = [o for o in sopts.split(",") if o not in ("rw", "ro") and "=" not in o or o.startswith("name=")]
                out.setdefault(",".join(ctrls), (mp, ",".join(ctrls)))
            elif fstype == "cgroup2":
                out.setdefault("", (mp, ""))
    return out


def _own_cgroups() -> list[tuple[str, str]]:
    """(controllers, path) of each line of /proc/self/cgroup."""
    with open("/proc/self/cgroup") as f:
        return [tuple(line.rstrip("\n").split(":", 2)[1:]) for line in f]  # type: ignore[misc]


def _own_cgroup_dir(mountpoint: str, key: str, own: list[tuple[str, str]] | None = None) -> str:
    """The host directory of this process's cgroup in the hierarchy KEY (from /proc/self/cgroup)."""
    for ctrls, path in own if own is not None else _own_cgroups():
        if ctrls == key or (key and set(ctrls.split(",")) == set(key.split(","))):
            return mountpoint.rstrip("/") + path
    return mountpoint


def pivot(root_fd: int, host=None, no_pivot: bool = False) -> None:
    """Make the rootfs mount (ROOT_FD) the process's / and detach the old root."""
    h = host or linux.host()
    if no_pivot:
        os.fchdir(root_fd)
        h.mount(".", "/", None, linux.MS_MOVE, None)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(root_fd)
        h.pivot_root(".", ".")
        os.fchdir(old)
        # The old root is stacked on the new one: make it slave so the detach does not propagate.
        h.mount(None, ".", None, linux.MS_SLAVE | linux.MS_REC, None)
        h.umount2(".", linux.MNT_DETACH)
    finally:
        os.close(old)
    os.chdir("/")


def finish(config: dict, host=None) -> None:
    """After pivot_root: root propagation, masked and read-only paths, read-only root."""
    h = host or linux.host()
    linux_cfg = config.get("linux") or {}
    prop = linux_cfg.get("rootfsPropagation")
    if prop:
        h.mount(None, "/", None, propagation_flag(config), None)
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for p in linux_cfg.get("readonlyPaths") or []:
            readonly_path(root_fd, p, h)
        masked = linux_cfg.get("maskedPaths") or []
        if masked:
            mask_paths(root_fd, masked, h)
    finally:
        os.close(root_fd)
    if (config.get("root") or {}).get("readonly"):
        flags = mounts._statvfs_flags("/")
        h.mount(None, "/", None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | flags, None)


def readonly_path(root_fd: int, path: str, h) -> None:
    """Bind PATH onto itself read-only (missing paths are skipped)."""
    try:
        fd = paths.open_in_root(root_fd, path, host=h)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        target = paths.fd_path(fd)
        h.mount(target, target, None, linux.MS_BIND | linux.MS_REC, None)
    finally:
        os.close(fd)
    # Reopen: the fd still names the covered inode, the bind mount is on top of it.
    fd = paths.open_in_root(root_fd, path, host=h)
    try:
        target = paths.fd_path(fd)
        flags = mounts._statvfs_flags(target)
        h.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_REC | flags,
                None)
    finally:
        os.close(fd)


def mask_paths(root_fd: int, masked: list[str], h) -> None:
    """Hide each path: directories under a read-only tmpfs, files under the checked /dev/null."""
    null_fd = None
    try:
        for path in masked:
            try:
                fd = paths.open_in_root(root_fd, path, host=h)
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                target = paths.fd_path(fd)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    h.mount("tmpfs", target, "tmpfs", linux.MS_RDONLY, None)
                    continue
                if null_fd is None:
                    null_fd = paths.open_in_root(root_fd, "/dev/null", host=h)
                    devices.check_null(null_fd)
                try:
                    h.mount(paths.fd_path(null_fd), target, None, linux.MS_BIND, None)
                except SyscallError as e:
                    if e.errno != errno.ENOENT:
                        raise
            finally:
                os.close(fd)
    except OSError as e:
        raise SecurityError(f"cannot mask paths: {e}") from None
    finally:
        if null_fd is not None:
            os.close(null_fd)
