"""Resolve untrusted paths inside a directory, never outside it (SECURITY.md section 3.1).

A lookup is one `openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)` call where the kernel
has it (Linux 5.6+), else a walk one component at a time from a directory fd with
`openat(O_PATH|O_NOFOLLOW)`, where a symlink met on the way is read and evaluated as
if the directory were `/` (chroot semantics, like containerd's `fs.RootPath`). Either
way `..` and absolute targets stop at the root. Missing directories are created by
the walk with `mkdirat`. Callers then create or remove entries with `*at` calls
relative to the returned parent fd, never with a host path string.
"""

from __future__ import annotations

import errno
import os
import stat

from runtime.image.errors import InvalidArchive, LimitExceeded

O_PATH = getattr(os, "O_PATH", 0o10000000)
_DIR_FLAGS = O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437  # the same number on every architecture (added with the unified syscall table)
USE_OPENAT2 = True  # switched off for good on the first ENOSYS (old kernel) or EPERM (a seccomp filter)
_syscall = None


def _openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2) through ctypes; raises OSError like os.open."""
    global _syscall
    import ctypes

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

    if _syscall is None:
        libc = ctypes.CDLL(None, use_errno=True)
        _syscall = libc.syscall
        _syscall.restype = ctypes.c_long
    how = OpenHow(flags, 0, resolve)
    fd = _syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(os.fsencode(path)),
                  ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def _open_dir_kernel(root_fd: int, parts: list[str], max_symlinks: int) -> int | None:
    """The openat2 fast path: an fd, or None when the caller must walk (missing dirs, no openat2)."""
    global USE_OPENAT2
    if not USE_OPENAT2 or not parts or max_symlinks != 40:
        return None
    try:
        return _openat2(root_fd, "/".join(parts), O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM):
            USE_OPENAT2 = False
            return None
        if exc.errno == errno.ELOOP:
            raise LimitExceeded(f"too many levels of symbolic links resolving {'/'.join(parts)!r}") from exc
        if exc.errno == errno.ENOTDIR:
            raise InvalidArchive(f"cannot resolve {'/'.join(parts)!r}: a component is not a directory") from exc
        return None  # ENOENT (maybe to be created), EAGAIN, EXDEV...: the walk decides


def clean_parts(name: str | bytes) -> list[str]:
    """Split an archive member name into components, `..` clamped at the root (like filepath.Clean("/"+name))."""
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    out: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return out


def open_dir(root_fd: int, parts: list[str], create: bool = False, max_symlinks: int = 40, mode: int = 0o755) -> int:
    """Open (O_PATH) the directory `parts` below `root_fd`, following symlinks inside the root only.

    With `create`, missing directories are made (mkdirat, `mode`). Returns a new fd the
    caller closes. Raises InvalidArchive when a component is not a directory, and
    LimitExceeded after `max_symlinks` symlinks (a loop).
    """
    fast = _open_dir_kernel(root_fd, parts, max_symlinks)
    if fast is not None:
        return fast
    work = list(reversed(parts))
    stack: list[int] = []
    cur = os.dup(root_fd)
    links = 0
    try:
        while work:
            comp = work.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if stack:
                    os.close(cur)
                    cur = stack.pop()
                continue
            try:
                st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(comp, mode, dir_fd=cur)
                except FileExistsError:
                    pass
                st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > max_symlinks:
                    raise LimitExceeded(f"too many levels of symbolic links resolving {'/'.join(parts)!r}")
                target = os.readlink(comp, dir_fd=cur)
                if target.startswith("/"):
                    for fd in stack:
                        os.close(fd)
                    stack.clear()
                    os.close(cur)
                    cur = os.dup(root_fd)
                work.extend(reversed(target.split("/")))
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise InvalidArchive(f"cannot resolve {'/'.join(parts)!r}: {comp!r} is not a directory")
            try:
                fd = os.open(comp, _DIR_FLAGS, dir_fd=cur)
            except OSError as exc:
                # Swapped for a symlink or a file since the stat: refuse rather than follow.
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidArchive(f"cannot resolve {'/'.join(parts)!r}: {comp!r} changed during lookup") from exc
                raise
            stack.append(cur)
            cur = fd
        return cur
    except BaseException:
        os.close(cur)
        raise
    finally:
        for fd in stack:
            os.close(fd)


def remove_at(dir_fd: int, name: str) -> None:
    """Remove `name` in `dir_fd` (recursively for a directory), never following symlinks."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            clear_dir(fd)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def clear_dir(fd: int, keep: set[str] | None = None) -> None:
    """Remove every entry of the directory open at `fd` (an O_RDONLY fd) except names in `keep`."""
    for name in os.listdir(fd):
        if keep and name in keep:
            continue
        remove_at(fd, name)
