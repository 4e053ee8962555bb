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
from collections.abc import Iterator
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


@contextlib.contextmanager
def _root_at(engine: Any, rec: dict[str, Any], path: str) -> Iterator[tuple[int, str]]:
    """An fd of the root PATH lives under (the container's rootfs, or a volume's source) and PATH inside it."""
    with _rootfs(engine, rec) as rootfs:
        base_root, inner = _volume_root(rec, path, rootfs)
        root = inroot.open_root(base_root)
        try:
            yield root, inner
        finally:
            os.close(root)


@contextlib.contextmanager
def _source(engine: Any, ref: str, src: str, follow: bool) -> Iterator[tuple[int, os.stat_result, str, bool]]:
    """The copy source SRC of a container, opened O_PATH inside its root (or a volume's source).

    Yields (fd, its stat, the path inside that root, whether SRC ends in `/.`: contents only).
    """
    rec = engine.record(ref)
    contents_only = src.endswith("/.")
    with _root_at(engine, rec, src) as (root, inner):
        try:
            sfd = inroot.open_in(root, inner, os.O_PATH, follow=follow or contents_only or inner.endswith("/"))
        except OSError as exc:
            raise EngineError(f"could not find the file {src} in container {rec['Name']}: {exc.strerror}") from None
        try:
            yield sfd, os.fstat(sfd), inner, contents_only
        finally:
            os.close(sfd)


def copy_from(engine: Any, ref: str, src: str, dest: str, archive: bool = False, follow: bool = False) -> None:
    """`cp CONTAINER:SRC DEST` (dest on the host)."""
    with _source(engine, ref, src, follow) as (sfd, st, inner, contents_only):
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
    with _root_at(engine, rec, dest) as (root, inner):
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
                    _host_subdir_at(src_p, sst, parent, name, archive, follow)
            else:
                _host_entry_at(src_p, sst, parent, name or src_p.name, archive)
        finally:
            os.close(parent)


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


def _host_subdir_at(src: Path, sst: os.stat_result, dirfd: int, name: str, archive: bool, follow: bool) -> None:
    """Copy the host directory SRC as NAME under DIRFD: made, filled, then given SRC's metadata."""
    sub = _mkdir_at(dirfd, name)
    try:
        _host_dir_into(src, sub, sst, archive, follow)
        _meta_ctr(sub, None, sst, archive)
    finally:
        os.close(sub)


def _host_dir_into(src: Path, dirfd: int, sst: os.stat_result, archive: bool, follow: bool) -> None:
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        p = Path(entry.path)
        est = os.lstat(p)
        if stat.S_ISDIR(est.st_mode):
            _host_subdir_at(p, est, dirfd, entry.name, archive, follow)
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



# ---------------------------------------------------------------- tar streams (`cp ... -`)


def tar_from(engine: Any, ref: str, src: str, out: Any, follow: bool = False) -> None:
    """`cp CONTAINER:SRC -`: write SRC as a tar stream to `out`, read fd-relative inside the root.

    As docker: a file is one entry named by its base name, a directory is its base name and what is
    below it (`SRC/.`: only what is below). Owners are numeric; devices, fifos and symlinks are
    entries of their own (a symlink is never followed below SRC).
    """
    import tarfile

    with _source(engine, ref, src, follow) as (sfd, st, inner, contents_only):
        name = "" if contents_only else os.path.basename(os.path.normpath(inner))
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            _TarWriter(tf).entry(sfd, st, name, top=True)


class _TarWriter:
    """Adds entries read through fds (O_NOFOLLOW below the top) so a swapped symlink cannot redirect us."""

    def __init__(self, tf: Any):
        self.tf = tf
        self.links: dict[tuple[int, int], str] = {}

    def _info(self, name: str, st: os.stat_result) -> Any:
        import tarfile

        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid  # numeric only: no lookups under an untrusted root
        ti.mtime = int(st.st_mtime)
        return ti

    def entry(self, fd: int, st: os.stat_result, name: str, top: bool = False) -> None:
        """Add the inode open at `fd` (O_PATH or readable) as `name` (a directory with what is below it)."""
        import tarfile

        if stat.S_ISDIR(st.st_mode):
            dfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                if name:
                    ti = self._info(name, st)
                    ti.type = tarfile.DIRTYPE
                    self.tf.addfile(ti)
                for child in sorted(os.listdir(dfd)):
                    try:
                        cst = os.stat(child, dir_fd=dfd, follow_symlinks=False)
                        cfd = os.open(child, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                    except FileNotFoundError:
                        continue  # removed meanwhile (the container may run)
                    try:
                        self.entry(cfd, cst, f"{name}/{child}" if name else child)
                    finally:
                        os.close(cfd)
            finally:
                os.close(dfd)
            return
        name = name or "root"
        ti = self._info(name, st)
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                ti.type, ti.linkname = tarfile.LNKTYPE, self.links[key]
                self.tf.addfile(ti)
                return
            if st.st_nlink > 1:
                self.links[key] = name
            rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                ti.size = os.fstat(rfd).st_size
                self.tf.addfile(ti, _Exactly(rfd, ti.size))
            finally:
                os.close(rfd)
        elif stat.S_ISLNK(st.st_mode):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink("", dir_fd=fd)
            self.tf.addfile(ti)
        elif stat.S_ISFIFO(st.st_mode):
            ti.type = tarfile.FIFOTYPE
            self.tf.addfile(ti)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tf.addfile(ti)
        # sockets cannot be in a tar


class _Exactly:
    """Reads `size` bytes of `fd`: zeros if the file shrank meanwhile, never more if it grew."""

    def __init__(self, fd: int, size: int):
        self.fd, self.left = fd, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = os.read(self.fd, n) if n else b""
        data += bytes(n - len(data))
        self.left -= n
        return data


def extract_to(engine: Any, ref: str, dest: str, stream: Any, archive: bool = False,
               warn: Any = None) -> None:
    """`cp - CONTAINER:DEST`: unpack the tar stream into the directory DEST with the confined extractor.

    The stream is untrusted. It is spooled to an unnamed file in the store first and every header
    is checked before anything is written (all or nothing for what the checks see): member names and
    hardlink targets must stay below DEST, relative symlinks must not point above it, and no entry
    may be written through a symlink the archive itself made. Then runtime.image.extract applies it
    with every path resolved inside the container's root (or the volume's), devices skipped,
    existing inodes replaced rather than written through, and its size and count limits.
    """
    from runtime.image.errors import InvalidArchive

    rec = engine.record(ref)
    engine.store.ensure()
    spool = os.open(engine.store.scratch, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(spool, "w+b", closefd=False) as f:
            _spool(stream, f)
            try:
                f.seek(0)
                _CpChecks(prefix=[]).scan(f)
                with _root_at(engine, rec, dest) as (root, inner):
                    try:
                        dfd = inroot.open_in(root, inner, os.O_PATH)
                    except OSError as exc:
                        raise EngineError(f"could not find the directory {dest} in container "
                                          f"{rec['Name']}: {exc.strerror}") from None
                    is_dir = stat.S_ISDIR(os.fstat(dfd).st_mode)
                    os.close(dfd)
                    if not is_dir:
                        raise InvalidArgument(f"destination {dest} in container {rec['Name']} must be a directory")
                    f.seek(0)
                    prefix = [p for p in os.path.normpath("/" + inner.lstrip("/")).split("/") if p]
                    _extractor(root, prefix, archive, warn).apply(f)
            except InvalidArchive as exc:
                raise EngineError(f"cannot copy the tar stream to {dest} in container {rec['Name']}: {exc}") from None
    finally:
        os.close(spool)


def _spool(stream: Any, f: Any) -> None:
    from runtime.image.errors import LimitExceeded
    from runtime.image.limits import DEFAULT

    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        if total > DEFAULT.max_layer_bytes:
            raise LimitExceeded(f"the tar stream is over the limit of {DEFAULT.max_layer_bytes} bytes")
        f.write(chunk)
    f.flush()


class _CpChecks:
    """docker's breakout checks on a cp tar stream, relative to the destination directory."""

    def __init__(self, prefix: list[str]):
        self.prefix = prefix
        self.symlinks: set[tuple[str, ...]] = set()  # paths where this archive made a symlink

    @staticmethod
    def _below(name: str, what: str, base: tuple[str, ...] = ()) -> list[str]:
        from runtime.image.errors import InvalidArchive

        out = list(base)
        for part in name.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not out:
                    raise InvalidArchive(f"{what} {name[:200]!r} points outside the destination directory")
                out.pop()
                continue
            out.append(part)
        return out

    def _through_link(self, parts: list[str], name: str, what: str) -> None:
        from runtime.image.errors import InvalidArchive

        for i in range(1, len(parts)):
            if tuple(parts[:i]) in self.symlinks:
                raise InvalidArchive(f"{what} {name[:200]!r} goes through the symlink {'/'.join(parts[:i])!r} "
                                     "the archive itself made")

    def check(self, m: Any) -> list[str]:
        """Check one member and rewrite its name (and hardlink target) below the prefix; returns its parts."""
        import tarfile

        from runtime.image.errors import InvalidArchive

        parts = self._below(m.name, "member")
        if not parts:
            return parts
        self._through_link(parts, m.name, "member")
        if parts[-1].startswith(".wh."):
            raise InvalidArchive(f"member {m.name[:200]!r}: names starting with .wh. are reserved (whiteouts)")
        if m.type == tarfile.LNKTYPE:
            target = self._below(m.linkname, f"hardlink {m.name[:200]!r} ->")
            self._through_link(target + ["x"], m.linkname, f"hardlink target of {m.name[:200]!r}")
            m.linkname = "/".join(self.prefix + target)
        elif m.type == tarfile.SYMTYPE and not m.linkname.startswith("/"):
            # an absolute target is read in the container's root, as the container itself reads it
            self._below(m.linkname, f"symlink {m.name[:200]!r} ->", tuple(parts[:-1]))
        if m.type == tarfile.SYMTYPE:
            self.symlinks.add(tuple(parts))
        else:
            self.symlinks.discard(tuple(parts))
        m.name = "/".join(self.prefix + parts)
        return parts

    def scan(self, f: Any) -> None:
        """Check every header of the tar file `f` and its end (nothing is written)."""
        import tarfile

        from runtime.image.errors import InvalidArchive
        from runtime.image.extract import bounded_tarinfo
        from runtime.image.limits import DEFAULT

        try:
            tf = tarfile.open(fileobj=f, mode="r|", tarinfo=bounded_tarinfo(DEFAULT), errorlevel=2,
                              encoding="utf-8", errors="surrogateescape")
            n = 0
            while (m := tf.next()) is not None:
                n += 1
                if n > DEFAULT.max_entries:
                    raise InvalidArchive(f"the archive has more than {DEFAULT.max_entries} entries")
                self.check(m)
                tf.members.clear()  # type: ignore[attr-defined]
        except tarfile.TarError as exc:
            raise InvalidArchive(f"invalid tar archive: {exc}") from None
        f.seek(tf.offset)
        if f.read(512).strip(b"\0"):
            raise InvalidArchive(f"invalid tar archive: truncated or corrupt header at offset {tf.offset}")


def _extractor(root: int, prefix: list[str], archive: bool, warn: Any) -> Any:
    """runtime.image.extract's Extractor on the container root, with the cp checks on each member."""
    import tarfile

    from runtime.image.errors import InvalidArchive
    from runtime.image.extract import Extractor

    class CpExtractor(Extractor):
        def __init__(self) -> None:
            # devices from a stream are never made; owners from the tar only with -a (else root's)
            super().__init__(root, mode="apply", devices=False, chown=archive, warn=warn)
            self.checks = _CpChecks(prefix)

        def _member(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
            parts = self.checks.check(m)
            if not parts:
                return  # the destination itself keeps its attributes
            full = prefix + parts
            try:
                st: os.stat_result | None = os.stat(full[-1], dir_fd=self._parent(tuple(full[:-1])),
                                                    follow_symlinks=False)
            except FileNotFoundError:
                st = None
            # docker's NoOverwriteDirNonDir: never replace a directory by a file or the other way round
            if st is not None and stat.S_ISDIR(st.st_mode) != (m.type == tarfile.DIRTYPE):
                kinds = ("directory", "non-directory") if stat.S_ISDIR(st.st_mode) else ("non-directory", "directory")
                raise InvalidArchive(f"cannot overwrite {kinds[0]} {'/'.join(parts)!r} with a {kinds[1]}")
            super()._member(tf, m)

    return CpExtractor()
