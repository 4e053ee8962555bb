"""Resolve untrusted paths inside a root directory, never outside it.

Every path taken from config.json or from the image is resolved relative to an
O_PATH fd of the rootfs with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), so
``..`` and absolute symlinks stay inside, like a chroot. Kernels without openat2
get a component-wise walk that opens each component with O_NOFOLLOW and
evaluates symlinks itself, relative to the same root. Creation (mkdir-all, empty
files for bind mounts) uses *at calls relative to the parent's fd.
"""

import errno
import os
import stat

from runtime.oci import linux
from runtime.oci.errors import SecurityError, SyscallError

MAX_SYMLINKS = 40
_OPENAT2_OK: bool | None = None


def _components(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


def open_in_root(root_fd: int, path: str, flags: int = linux.O_PATH, host=None) -> int:
    """Open PATH (relative to the root, '..' and symlinks confined) and return an O_CLOEXEC fd."""
    global _OPENAT2_OK
    rel = "/".join(_components(path)) or "."
    if _OPENAT2_OK is not False:
        h = host or linux.host()
        try:
            return h.openat2(root_fd, rel, flags | os.O_CLOEXEC, 0,
                             linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS)
        except SyscallError as e:
            if e.errno in (errno.ENOSYS, errno.EPERM) and _OPENAT2_OK is None:
                _OPENAT2_OK = False  # no openat2 here (old kernel or seccomp): walk by hand
            elif e.errno == errno.EAGAIN:
                pass  # a rename raced the lookup: the careful walk copes
            else:
                raise _os_error(e, path) from None
        else:
            _OPENAT2_OK = True
    return _walk(root_fd, _components(path), flags)


def _os_error(e: SyscallError, path: str) -> OSError:
    return OSError(e.errno, os.strerror(e.errno), path)


def _walk(root_fd: int, parts: list[str], flags: int) -> int:
    """Component-wise resolution with in-root symlink evaluation (the openat2 fallback)."""
    stack: list[int] = [os.dup(root_fd)]
    todo = list(parts)
    links = 0
    try:
        while todo:
            name = todo.pop(0)
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not todo
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(name, dir_fd=stack[-1])
                os.close(fd)
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), "/".join(parts))
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo[:0] = _components(target)
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), "/".join(parts))
            stack.append(fd)
        result = stack.pop()
        if flags & ~(os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_DIRECTORY):
            # The caller wants a real open: reopen the verified O_PATH fd.
            fd = os.open(f"/proc/self/fd/{result}", flags | os.O_CLOEXEC)
            os.close(result)
            result = fd
        return result
    finally:
        for fd in stack:
            os.close(fd)


def mkdir_all(root_fd: int, path: str, mode: int = 0o755, host=None) -> int:
    """Create PATH and its parents inside the root; return an O_PATH fd of the directory."""
    try:  # most destinations exist already: one confined lookup instead of two per component
        fd = open_in_root(root_fd, path, host=host)
    except OSError:
        return _mkdir_walk(root_fd, path, mode, host)
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        return fd
    os.close(fd)
    return _mkdir_walk(root_fd, path, mode, host)  # names the component that is not a directory


def _existing_ancestor(root_fd: int, parts: list[str], host) -> tuple[int, int]:
    """(k, fd): the deepest proper ancestor parts[:k] that resolves (from the root) to a directory."""
    for k in range(len(parts) - 1, 0, -1):
        try:
            fd = open_in_root(root_fd, "/".join(parts[:k]), host=host)
        except FileNotFoundError:
            continue
        except OSError:
            break  # the walk from the root reports it
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            return k, fd
        os.close(fd)
        break
    return 0, os.dup(root_fd)


def _mkdir_walk(root_fd: int, path: str, mode: int, host) -> int:
    parts = _components(path)
    # Start below the deepest existing ancestor: each prefix is resolved from the root either way.
    k, fd = _existing_ancestor(root_fd, parts, host)
    done: list[str] = parts[:k]
    try:
        for name in parts[k:]:
            try:
                nfd = open_in_root(fd, name, host=host)
            except FileNotFoundError:
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    pass  # a dangling symlink or a racing creator: the open below decides
                nfd = open_in_root(fd, name, host=host)
            # Resolution of the next component must stay confined to the *root*, not this dir:
            # re-resolve the accumulated path from the root each time.
            os.close(nfd)
            done.append(name)
            os.close(fd)
            fd = open_in_root(root_fd, "/".join(done), host=host)
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise SecurityError(f"cannot create directory /{'/'.join(done)} in the rootfs: not a directory")
        return fd
    except BaseException:
        os.close(fd)
        raise


def ensure_file(root_fd: int, path: str, host=None) -> int:
    """Make sure PATH exists inside the root (creating an empty file); return an O_PATH fd."""
    try:
        return open_in_root(root_fd, path, host=host)
    except FileNotFoundError:
        pass
    parent, _, name = path.rstrip("/").rpartition("/")
    pfd = mkdir_all(root_fd, parent, host=host)
    try:
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=pfd))
        except FileExistsError:
            pass
    finally:
        os.close(pfd)
    return open_in_root(root_fd, path, host=host)


def fd_path(fd: int) -> str:
    """The /proc/self/fd path of FD: a stable handle to mount onto or to reopen."""
    return f"/proc/self/fd/{fd}"


def check_inside(fd: int, root: str, what: str) -> str:
    """Return the real path of FD and make sure it lies inside ROOT (the host path of the rootfs)."""
    real = os.readlink(fd_path(fd))
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        raise SecurityError(f"{what} resolved to {real}, outside the rootfs {root}")
    return real
