"""cp between a container and the host, with every container path resolved inside its root.

Container paths go through openat2(RESOLVE_IN_ROOT) and then only fd-relative calls with
O_NOFOLLOW (scandir on a dir fd, openat, mkdirat, symlinkat, fchownat), so a symlink the
container swaps in while we copy can never send a read or write to the host (CVE-2018-15664,
podman CVE-2019-10152). No program from the container runs and no NSS lookup happens
(CVE-2019-14271, CVE-2026-41567): ownership is numeric.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from runtime.engine import inroot, overlay
from runtime.engine.errors import EngineError, InvalidArgument

CHUNK = 1 << 20


@contextlib.contextmanager
def _rootfs(engine: Any, rec: dict[str, Any]):
    """The container's merged rootfs, mounted for the duration if the container is stopped."""
    cdir = engine.store.path(rec["Id"])
    merged = cdir / "merged"
    mounted_here = False
    if not overlay.is_mounted(merged):
        img = engine.images.resolve(rec["Image"])
        overlay.mount([Path(p) for p in engine.images.snapshot_dirs(img)], cdir / "upper", cdir / "work", merged)
        mounted_here = True
    try:
        yield str(merged)
    finally:
        if mounted_here:
            overlay.unmount(merged)


def _volume_root(rec: dict[str, Any], path: str, rootfs: str) -> tuple[str, str]:
    """(root dir, path inside it): a path under a volume or bind mount is resolved in that mount's source."""
    norm = os.path.normpath("/" + path.lstrip("/"))
    best = None
    for m in rec.get("Mounts") or []:
        d = m["Destination"]
        if norm == d or norm.startswith(d.rstrip("/") + "/"):
            if best is None or len(d) > len(best["Destination"]):
                best = m
    if best is None:
        return rootfs, path
    rest = norm[len(best["Destination"]):] or "/"
    return best["Source"], rest + ("/" if path.endswith("/") and rest != "/" else "")


def copy_from(engine: Any, ref: str, src: str, dest: str, archive: bool = False, follow: bool = False) -> None:
    """`cp CONTAINER:SRC DEST` (dest on the host)."""
    rec = engine.record(ref)
    contents_only = src.endswith("/.")
    with _rootfs(engine, rec) as rootfs:
        base_root, inner = _volume_root(rec, src, rootfs)
        root = inroot.open_root(base_root)
        try:
            try:
                sfd = inroot.open_in(root, inner, os.O_PATH, follow=follow or contents_only or inner.endswith("/"))
            except OSError as exc:
                raise EngineError(f"could not find the file {src} in container {rec['Name']}: {exc.strerror}") from None
            try:
                st = os.fstat(sfd)
                dest_p = Path(dest)
                if stat.S_ISDIR(st.st_mode):
                    if dest_p.exists() and not dest_p.is_dir():
                        raise InvalidArgument(f"cannot copy a directory to a file: {dest}")
                    if dest_p.is_dir() and not contents_only:
                        target = dest_p / (os.path.basename(os.path.normpath(inner)) or "root")
                    else:
                        target = dest_p
                    dfd = os.open(f"/proc/self/fd/{sfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    try:
                        _dir_to_host(dfd, target, st, archive)
                    finally:
                        os.close(dfd)
                else:
                    if dest.endswith("/") and not dest_p.is_dir():
                        raise InvalidArgument(f"destination directory {dest} does not exist")
                    target = dest_p / os.path.basename(inner) if dest_p.is_dir() else dest_p
                    if not target.parent.is_dir():
                        raise InvalidArgument(f"destination directory {target.parent} does not exist")
                    _entry_to_host_fd(sfd, st, target, archive)
            finally:
                os.close(sfd)
        finally:
            os.close(root)


def _entry_to_host_fd(sfd: int, st: os.stat_result, target: Path, archive: bool) -> None:
    """Copy one non-directory (an O_PATH fd) to the host path `target`."""
    if stat.S_ISLNK(st.st_mode):
        link = os.readlink("", dir_fd=sfd)  # readlinkat on the O_PATH|O_NOFOLLOW fd itself
        with contextlib.suppress(FileNotFoundError):
            if target.is_symlink() or target.exists():
                target.unlink()
        os.symlink(link, target)
    elif stat.S_ISREG(st.st_mode):
        rfd = os.open(f"/proc/self/fd/{sfd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _write_host_file(rfd, target, st, archive)
        finally:
            os.close(rfd)
    else:
        return  # devices, fifos and sockets are not copied
    _meta_host(target, st, archive)


def _write_host_file(rfd: int, target: Path, st: os.stat_result, archive: bool) -> None:
    if target.is_symlink():
        target.unlink()
    wfd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, stat.S_IMODE(st.st_mode))
    try:
        while True:
            chunk = os.read(rfd, CHUNK)
            if not chunk:
                break
            os.write(wfd, chunk)
    finally:
        os.close(wfd)


def _meta_host(target: Path, st: os.stat_result, archive: bool) -> None:
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
    if archive:
        os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    with contextlib.suppress(OSError):
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _dir_to_host(dfd: int, target: Path, st: os.stat_result, archive: bool) -> None:
    """Copy the directory open at `dfd` (inside the container) to `target` on the host."""
    target.mkdir(mode=0o700, exist_ok=True)
    for entry in sorted(os.scandir(dfd), key=lambda e: e.name):
        est = os.stat(entry.name, dir_fd=dfd, follow_symlinks=False)
        t = target / entry.name
        if stat.S_ISDIR(est.st_mode):
            sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            try:
                _dir_to_host(sub, t, est, archive)
            finally:
                os.close(sub)
        elif stat.S_ISLNK(est.st_mode):
            with contextlib.suppress(FileNotFoundError):
                if t.is_symlink() or t.exists():
                    t.unlink()
            os.symlink(os.readlink(entry.name, dir_fd=dfd), t)
            _meta_host(t, est, archive)
        elif stat.S_ISREG(est.st_mode):
            rfd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            try:
                _write_host_file(rfd, t, est, archive)
            finally:
                os.close(rfd)
            _meta_host(t, est, archive)
    _meta_host(target, st, archive)


def copy_to(engine: Any, ref: str, src: str, dest: str, archive: bool = False, follow: bool = False) -> None:
    """`cp SRC CONTAINER:DEST` (src on the host)."""
    rec = engine.record(ref)
    src_p = Path(src)
    try:
        sst = os.stat(src_p) if follow else os.lstat(src_p)
    except OSError as exc:
        raise InvalidArgument(f"cannot copy {src}: {exc.strerror}") from None
    contents_only = src.endswith("/.")
    with _rootfs(engine, rec) as rootfs:
        base_root, inner = _volume_root(rec, dest, rootfs)
        root = inroot.open_root(base_root)
        try:
            try:
                dfd = inroot.open_in(root, inner, os.O_PATH)
                dst = os.fstat(dfd)
            except FileNotFoundError:
                dfd, dst = -1, None
            except OSError as exc:
                raise EngineError(f"cannot copy to {dest} in container {rec['Name']}: {exc.strerror}") from None
            try:
                if dst is not None and stat.S_ISDIR(dst.st_mode):
                    parent = os.open(f"/proc/self/fd/{dfd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    name = None if (contents_only and stat.S_ISDIR(sst.st_mode)) else (src_p.name or "root")
                elif dst is not None:
                    if stat.S_ISDIR(sst.st_mode):
                        raise InvalidArgument(f"cannot copy a directory to a file: {dest}")
                    parent, name = _parent_of(root, inner, dest)
                else:
                    if inner.endswith("/"):
                        raise InvalidArgument(f"destination directory {dest} does not exist in the container")
                    parent, name = _parent_of(root, inner, dest)
            finally:
                if dfd >= 0:
                    os.close(dfd)
            try:
                if stat.S_ISDIR(sst.st_mode):
                    if name is None:
                        _host_dir_into(src_p, parent, sst, archive, follow)
                    else:
                        sub = _mkdir_at(parent, name)
                        try:
                            _host_dir_into(src_p, sub, sst, archive, follow)
                            _meta_ctr(sub, None, sst, archive)
                        finally:
                            os.close(sub)
                else:
                    _host_entry_at(src_p, sst, parent, name or src_p.name, archive)
            finally:
                os.close(parent)
        finally:
            os.close(root)


def _parent_of(root: int, inner: str, shown: str) -> tuple[int, str]:
    """An fd of the (in-root) parent directory of `inner`, and the base name."""
    parent_path, name = inroot.split_parent(inner)
    try:
        pfd = inroot.open_in(root, parent_path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise InvalidArgument(f"cannot copy to {shown}: parent directory: {exc.strerror}") from None
    return pfd, name


def _mkdir_at(parent: int, name: str) -> int:
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=parent)
            os.mkdir(name, 0o755, dir_fd=parent)
    except FileNotFoundError:
        os.mkdir(name, 0o755, dir_fd=parent)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)


def _meta_ctr(fd: int | None, name: str | None, st: os.stat_result, archive: bool, parent: int | None = None) -> None:
    uid, gid = (st.st_uid, st.st_gid) if archive else (0, 0)
    if fd is not None:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
        with contextlib.suppress(OSError):
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif name is not None and parent is not None:
        os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)


def _host_entry_at(src: Path, sst: os.stat_result, parent: int, name: str, archive: bool) -> None:
    """Create `name` under the container dir fd `parent` from the host file `src`."""
    with contextlib.suppress(FileNotFoundError):
        est = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(est.st_mode):
            raise InvalidArgument(f"cannot overwrite directory {name} with a file")
        os.unlink(name, dir_fd=parent)  # replace the inode, never write through a link
    if stat.S_ISLNK(sst.st_mode):
        os.symlink(os.readlink(src), name, dir_fd=parent)
        _meta_ctr(None, name, sst, archive, parent)
        return
    if not stat.S_ISREG(sst.st_mode):
        return
    wfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
    try:
        with open(src, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                os.write(wfd, chunk)
        _meta_ctr(wfd, None, sst, archive)
    finally:
        os.close(wfd)


def _host_dir_into(src: Path, dirfd: int, sst: os.stat_result, archive: bool, follow: bool) -> None:
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        p = Path(entry.path)
        est = os.lstat(p)
        if stat.S_ISDIR(est.st_mode):
            sub = _mkdir_at(dirfd, entry.name)
            try:
                _host_dir_into(p, sub, est, archive, follow)
                _meta_ctr(sub, None, est, archive)
            finally:
                os.close(sub)
        else:
            _host_entry_at(p, est, dirfd, entry.name, archive)


def split_arg(arg: str) -> tuple[str | None, str]:
    """'web:/etc/x' -> ('web', '/etc/x'); a host path -> (None, path). './a:b' stays a host path."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    if not path:
        raise InvalidArgument(f"invalid copy path {arg!r}: no path after the container name")
    return name, path

