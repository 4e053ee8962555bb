"""The one narrow seam for raw Linux syscalls, through _ctypes (runtime.oci.cfuncs).

Every privileged kernel call of the runtime (mount, pivot_root, unshare, setns,
capset, prctl, openat2, ...) goes through an instance of :class:`Linux`. The
mechanism modules take that instance as a parameter, so unit tests can pass a
recording fake and check which calls and flags a config produces without root.
"""

import os
import struct

from runtime.oci.errors import SyscallError

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from runtime.oci import cfuncs as ctypes
else:
    # Imported by the first Linux() (~0.5 ms): commands that make no syscall through the seam
    # (start, delete, state) only need the constants below. Not the ctypes package: see cfuncs.
    ctypes = None

# Syscall numbers glibc has no wrapper for (or only a recent one).
_NR = {
    "x86_64": {"pivot_root": 155, "capget": 125, "capset": 126, "openat2": 437, "close_range": 436,
               "execveat": 322, "setns": 308, "unshare": 272, "pidfd_open": 434, "open_tree": 428,
               "move_mount": 429, "clone3": 435, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "capget": 90, "capset": 91, "openat2": 437, "close_range": 436,
                "execveat": 281, "setns": 268, "unshare": 97, "pidfd_open": 434, "open_tree": 428,
                "move_mount": 429, "clone3": 435, "mount_setattr": 442},
}

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000
MNT_DETACH = 0x2

# clone(2) / unshare(2) namespace flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
CLONE_CHILD_CLEARTID = 0x00200000
CLONE_CHILD_SETTID = 0x01000000
CLONE_INTO_CGROUP = 0x200000000

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_TID_ADDRESS = 40
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# openat2(2) resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# mount_setattr(2) attributes
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

O_PATH = 0o10000000
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SIGCHLD = 17


class Linux:
    """Real syscalls. Every method raises SyscallError (with errno) on failure."""

    def __init__(self) -> None:
        global ctypes
        from runtime.oci import cfuncs as ctypes

        self._libc = ctypes.Library()
        self._libc.syscall.restype = ctypes.c_long
        self._nr = _NR.get(os.uname().machine, _NR["x86_64"])

    def _check(self, rc: int, what: str) -> int:
        if rc < 0:
            err = ctypes.get_errno()
            raise SyscallError(f"{what}: {os.strerror(err)}", err)
        return rc

    def _syscall(self, name: str, *args) -> int:
        return self._libc.syscall(ctypes.c_long(self._nr[name]), *args)

    # -- mounts ---------------------------------------------------------------
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
        """mount(2)."""
        rc = self._libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
        self._check(rc, f"mount {source or fstype or ''} on {target}")

    def umount2(self, target: str, flags: int = 0) -> None:
        """umount2(2)."""
        self._check(self._libc.umount2(_b(target), flags), f"umount {target}")

    def pivot_root(self, new_root: str, put_old: str) -> None:
        """pivot_root(2)."""
        self._check(self._syscall("pivot_root", _b(new_root), _b(put_old)), f"pivot_root {new_root}")

    def bind_tree(self, fd: int) -> int:
        """Bind-mount the directory FD onto itself (recursively) and return an fd of the new mount.

        open_tree(OPEN_TREE_CLONE|AT_RECURSIVE) + move_mount onto the same directory: no path is
        resolved, so it works where the caller could not traverse the path (a user namespace).
        """
        tree = self._check(self._syscall("open_tree", fd, b"", ctypes.c_uint(
            OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH | os.O_CLOEXEC)), "open_tree")
        try:
            self._check(self._syscall("move_mount", tree, b"", fd, b"",
                                      ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)),
                        "move_mount")
        except BaseException:
            os.close(tree)
            raise
        return tree

    def clone_tree(self, fd: int) -> int:
        """A detached recursive copy of the mount at directory FD (open_tree OPEN_TREE_CLONE)."""
        return self._check(self._syscall("open_tree", fd, b"", ctypes.c_uint(
            OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH | os.O_CLOEXEC)), "open_tree")

    def attach_tree(self, tree: int, path: str) -> None:
        """Attach a detached mount TREE at PATH (move_mount)."""
        self._check(self._syscall("move_mount", tree, b"", -100, _b(path), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)),
                    f"move_mount onto {path}")

    # -- namespaces -----------------------------------------------------------
    def set_mount_flags(self, fd: int, flags: int) -> None:
        """Give the mount at directory FD and every mount below it the per-mount MS_* FLAGS.

        mount_setattr(AT_RECURSIVE): one call where MS_REMOUNT|MS_BIND would take one per mount;
        the result is that of such a remount (rdonly, nosuid, nodev, noexec, nodiratime,
        nosymfollow exactly as given; atime as mount(2) defaults it: relatime unless MS_NOATIME
        or MS_STRICTATIME). SyscallError before Linux 5.12.
        """
        attr = 0
        for ms, ma in ((MS_RDONLY, MOUNT_ATTR_RDONLY), (MS_NOSUID, MOUNT_ATTR_NOSUID), (MS_NODEV, MOUNT_ATTR_NODEV),
                       (MS_NOEXEC, MOUNT_ATTR_NOEXEC), (MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
                       (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW)):
            if flags & ms:
                attr |= ma
        if flags & MS_STRICTATIME:
            attr |= MOUNT_ATTR_STRICTATIME
        elif flags & MS_NOATIME:
            attr |= MOUNT_ATTR_NOATIME
        clear = (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR__ATIME
                 | MOUNT_ATTR_NODIRATIME | MOUNT_ATTR_NOSYMFOLLOW)
        how = struct.pack("QQQQ", attr, clear, 0, 0)  # struct mount_attr: set, clr, propagation, userns_fd
        self._check(self._syscall("mount_setattr", fd, b"", ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE), how,
                                  ctypes.c_size_t(len(how))), "mount_setattr")

    def unshare(self, flags: int) -> None:
        """unshare(2)."""
        self._check(self._libc.unshare(ctypes.c_int(flags)), f"unshare {flags:#x}")

    def setns(self, fd: int, nstype: int = 0) -> None:
        """setns(2) on an open namespace fd."""
        self._check(self._libc.setns(fd, nstype), f"setns {nstype:#x}")

    def sethostname(self, name: str) -> None:
        """sethostname(2)."""
        raw = name.encode()
        self._check(self._libc.sethostname(raw, len(raw)), f"sethostname {name}")

    def setdomainname(self, name: str) -> None:
        """setdomainname(2)."""
        raw = name.encode()
        self._check(self._libc.setdomainname(raw, len(raw)), f"setdomainname {name}")

    # -- process --------------------------------------------------------------
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        """prctl(2)."""
        rc = self._libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4),
                              ctypes.c_ulong(arg5))
        return self._check(rc, f"prctl {option}")

    def fork_into_cgroup(self, cgroup_fd: int) -> int:
        """os.fork(), with the child born in the cgroup2 directory CGROUP_FD (clone3 CLONE_INTO_CGROUP).

        Moving a running process into a cgroup2 directory takes the kernel's global
        cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period (1-12 ms here);
        a child placed there at birth only takes it for reading. The clone mirrors glibc's
        fork(): the kernel stores the child's tid at glibc's own tid slot (PR_GET_TID_ADDRESS)
        and clears it at exit, and Python's before/after-fork hooks run around it, with the GIL
        held as os.fork holds it. glibc's atfork handlers do not run: callers are single-threaded.
        Raises SyscallError (the parent's errno) when the kernel cannot do it; fall back to os.fork.
        """
        tid_slot = ctypes.c_void_p(0)
        self._check(self._libc.prctl(PR_GET_TID_ADDRESS, ctypes.byref(tid_slot), ctypes.c_ulong(0),
                                     ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl PR_GET_TID_ADDRESS")
        # struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
        # tls, set_tid, set_tid_size, cgroup
        args = (ctypes.c_uint64 * 11)(CLONE_INTO_CGROUP | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID, 0,
                                      tid_slot.value or 0, 0, _SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd)
        api = ctypes.Library(python_api=True)  # keeps the GIL across the call, as os.fork does
        api.syscall.restype = ctypes.c_long
        api.PyOS_BeforeFork()
        pid = api.syscall(ctypes.c_long(self._nr["clone3"]), args, ctypes.c_size_t(ctypes.sizeof(args)))
        err = ctypes.get_errno()
        if pid == 0:
            api.PyOS_AfterFork_Child()
            return 0
        api.PyOS_AfterFork_Parent()
        if pid < 0:
            raise SyscallError(f"clone3 into cgroup: {os.strerror(err)}", err)
        return pid

    def child_subreaper(self) -> int:
        """prctl(PR_GET_CHILD_SUBREAPER): 1 if orphaned descendants are reparented to this process."""
        val = ctypes.c_int(0)
        self._check(self._libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(val), ctypes.c_ulong(0),
                                     ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl PR_GET_CHILD_SUBREAPER")
        return val.value

    def capget(self) -> tuple[int, int, int]:
        """Return the (effective, permitted, inheritable) capability masks of this thread."""
        hdr = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
        data = ctypes.char_buffer(24)
        self._check(self._syscall("capget", hdr, data), "capget")
        e0, p0, i0, e1, p1, i1 = struct.unpack("6I", data.raw)
        return e0 | e1 << 32, p0 | p1 << 32, i0 | i1 << 32

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        """capset(2) with 64-bit masks."""
        hdr = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
        lo, hi = 0xFFFFFFFF, 32
        data = struct.pack("6I", effective & lo, permitted & lo, inheritable & lo,
                           effective >> hi, permitted >> hi, inheritable >> hi)
        self._check(self._syscall("capset", hdr, data), "capset")

    def close_range(self, first: int, last: int = 0xFFFFFFFF) -> None:
        """close_range(2); falls back to closing each fd in /proc/self/fd."""
        if self._syscall("close_range", ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(0)) == 0:
            return
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if first <= fd <= last:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def execveat(self, fd: int, argv: list[str], env: list[str]) -> None:
        """execveat(fd, "", argv, env, AT_EMPTY_PATH): exec an open file; returns only on failure."""
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
        c_env = (ctypes.c_char_p * (len(env) + 1))(*[e.encode() for e in env], None)
        self._check(self._syscall("execveat", fd, b"", c_argv, c_env, AT_EMPTY_PATH), "execveat")

    def openat2(self, dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
        """openat2(2); returns the new fd."""
        how = struct.pack("QQQ", flags, mode, resolve)
        rc = self._syscall("openat2", dirfd, _b(path), how, ctypes.c_size_t(len(how)))
        return self._check(rc, f"openat2 {path}")

    def pidfd_open(self, pid: int) -> int:
        """pidfd_open(2)."""
        return self._check(self._syscall("pidfd_open", pid, 0), f"pidfd_open {pid}")

    # -- plain os wrappers, here so that fakes can record them ---------------
    def mknod(self, path: str, mode: int, device: int) -> None:
        """mknod(2)."""
        os.mknod(path, mode, device)

    def write_file(self, path: str, data: str) -> None:
        """Write a small proc/sys file in one write(2)."""
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)


def _b(value: str | None) -> bytes | None:
    return None if value is None else value.encode()


_host: Linux | None = None


def host() -> Linux:
    """Return the process-wide real seam (created on first use)."""
    global _host
    if _host is None:
        _host = Linux()
    return _host
