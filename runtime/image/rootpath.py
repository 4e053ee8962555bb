"""Resolve untrusted paths inside a directory, never outside it (SECURITY.md section 3.1).

Every lookup walks one component at a time from a directory fd with
`openat(O_PATH|O_NOFOLLOW)`. A symlink met on the way is read and evaluated as if
the directory were `/` (chroot semantics, like containerd's `fs.RootPath`), so `..`
and absolute targets stop at the root. Callers then create or remove entries with
`*at` calls relative to the returned parent fd, never with a host path string.
"""

from __future__ import annotations

import errno
import os
import stat

from runtime.image.errors import InvalidArchive, LimitExceeded

O_PATH = getattr(os, "O_PATH", 0o10000000)
_DIR_FLAGS = O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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
