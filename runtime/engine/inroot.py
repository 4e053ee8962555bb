"""Resolve paths inside a container's root, never outside it (openat2 RESOLVE_IN_ROOT).

Every untrusted path (cp, --user lookups in /etc/passwd, workdir checks) goes through here:
symlinks, `..` and absolute links are evaluated as if the rootfs were `/`, and magic links
(/proc/self/fd/N) are refused. Because the result is an fd, a symlink swapped after the
lookup cannot redirect what we then read or write (the CVE-2018-15664 race).
"""

from __future__ import annotations

import errno
import os

from runtime.engine import linux

RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS


def open_root(rootfs: str) -> int:
    """An O_PATH fd of the rootfs directory itself."""
    return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def open_in(root_fd: int, path: str, flags: int = os.O_PATH, mode: int = 0, follow: bool = True) -> int:
    """Open `path` (absolute or relative to the container's /) inside the root; returns an fd."""
    rel = path.lstrip("/") or "."
    if not follow:
        flags |= os.O_NOFOLLOW
    return linux.openat2(root_fd, rel, flags, RESOLVE, mode)


def split_parent(path: str) -> tuple[str, str]:
    """'/a/b/c' -> ('/a/b', 'c'); the base name is never '' or '..'."""
    norm = os.path.normpath("/" + path.lstrip("/"))
    parent, base = os.path.split(norm)
    if base in ("", ".", ".."):
        raise OSError(errno.EINVAL, f"invalid path {path!r}")
    return parent, base


def read_file(rootfs: str, path: str, limit: int = 1 << 20) -> bytes | None:
    """The first `limit` bytes of a file inside the root, or None if it does not exist."""
    root = open_root(rootfs)
    try:
        try:
            fd = open_in(root, path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV):
                return None
            raise
        try:
            import stat

            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return os.read(fd, limit)
        finally:
            os.close(fd)
    finally:
        os.close(root)


def mkdir_all(root_fd: int, path: str, mode: int = 0o755) -> int:
    """Create every missing component of `path` inside the root (mkdirat); returns an O_PATH fd of it.

    Each prefix is resolved from the root again, so a symlink in the path is followed the way the
    container would follow it, and never out of the root.
    """
    comps = [c for c in path.split("/") if c and c != "."]
    if ".." in comps:
        raise OSError(errno.EINVAL, f"invalid path {path!r}")
    cur = os.dup(root_fd)
    try:
        for i, comp in enumerate(comps):
            prefix = "/".join(comps[: i + 1])
            try:
                nxt = linux.openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, RESOLVE)
            except FileNotFoundError:
                try:
                    os.mkdir(comp, mode, dir_fd=cur)
                except FileExistsError:
                    pass
                nxt = linux.openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, RESOLVE)
            os.close(cur)
            cur = nxt
        return cur
    except BaseException:
        os.close(cur)
        raise
