"""The confined layer extractor: apply a (decompressed) tar stream to a directory.

Never `tarfile.extractall`: tarfile only parses headers and streams member data.
Every entry's parent is resolved inside the target with `rootpath.open_dir` (a
component walk from a directory fd, symlinks evaluated as if the target were `/`),
and every inode is created with `*at` calls relative to that parent fd. Existing
inodes are replaced, never written through. Owners are numeric (no NSS lookups).
Names, link targets, sizes, counts and depths are bounded (limits.Limits).

Two modes:
- `overlay`: unpack one layer into an empty snapshot dir used as an overlayfs
  lowerdir. Whiteouts become 0:0 character devices, opaque markers the
  `trusted.overlay.opaque` xattr (what overlayfs itself understands).
- `apply`: apply a layer on top of earlier ones in the same directory (flatten):
  whiteouts remove, opaque markers clear what earlier layers put in the directory.

Duplicate paths in one layer: the last entry wins. Hardlink targets must already
exist inside the target. Devices are created only when `devices=True` (root, inside
the store); otherwise skipped with a warning. Sockets cannot appear in tar.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from runtime.image import rootpath
from runtime.image.errors import InvalidArchive, LimitExceeded
from runtime.image.limits import DEFAULT, Limits

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_SUPPORTED = (*_FILE_TYPES, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
              tarfile.FIFOTYPE)
_XATTR_ALLOWED = ("user.", "security.capability")


@dataclass
class ExtractStats:
    """What one extraction did."""

    entries: int = 0
    files: int = 0
    bytes: int = 0
    whiteouts: int = 0
    skipped: list[str] = field(default_factory=list)


def bounded_tarinfo(limits: Limits):
    """The TarInfo class to parse untrusted tar streams with (see _make_tarinfo_class)."""
    return _make_tarinfo_class(limits)


def _make_tarinfo_class(limits: Limits):
    """A TarInfo that refuses oversized extended headers and sparse members before tarfile allocates."""

    class BoundedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tf):  # noqa: D401 - tarfile's private hook
            if self.size < 0:
                raise InvalidArchive(f"invalid tar header: negative size for {self.name!r}")
            if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                             tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE) and self.size > limits.max_header_bytes:
                raise LimitExceeded(f"tar extended header of {self.size} bytes is over the limit "
                                    f"of {limits.max_header_bytes}")
            if self.type == tarfile.GNUTYPE_SPARSE:
                raise InvalidArchive(f"sparse tar member {self.name!r} is not supported")
            return super()._proc_member(tf)

    return BoundedTarInfo


class _TailKeeper:
    """Reads for tarfile and remembers recent bytes, so we can tell a clean end of archive from garbage."""

    KEEP = 1 << 17

    def __init__(self, raw):
        self.raw = raw
        self.pos = 0
        self.buf = bytearray()
        self.buf_start = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else _CHUNK)
        if data:
            self.buf += data
            self.pos += len(data)
            if len(self.buf) > 2 * self.KEEP:
                cut = len(self.buf) - self.KEEP
                del self.buf[:cut]
                self.buf_start += cut
        return data

    def readable(self) -> bool:
        return True

    def tail_from(self, offset: int) -> bytes:
        """Bytes from `offset` to the end of the stream (drains the stream)."""
        if offset < self.buf_start:
            raise InvalidArchive("invalid tar stream: cannot verify the end of the archive")
        rest = bytearray(self.buf[offset - self.buf_start :])
        while True:
            chunk = self.raw.read(_CHUNK)
            if not chunk:
                break
            if len(rest) < 4096:
                rest += chunk[:4096]
            self.pos += len(chunk)
        return bytes(rest)


def _check_name(name: str, limits: Limits, what: str = "name") -> None:
    raw = os.fsencode(name)
    if b"\x00" in raw:
        raise InvalidArchive(f"invalid tar member {what} {name[:80]!r}: contains NUL")
    if len(raw) > limits.max_path_bytes:
        raise LimitExceeded(f"tar member {what} of {len(raw)} bytes is over the limit of {limits.max_path_bytes}")


class Extractor:
    """Applies tar members to the directory open at `root_fd`."""

    def __init__(self, root_fd: int, mode: str = "overlay", limits: Limits = DEFAULT, devices: bool | None = None,
                 chown: bool | None = None, warn: Callable[[str], None] | None = None):
        if mode not in ("overlay", "apply"):
            raise ValueError(f"unknown extract mode {mode!r}")
        self.root_fd = root_fd
        self.mode = mode
        self.limits = limits
        is_root = os.geteuid() == 0
        self.devices = is_root if devices is None else devices
        self.chown = is_root if chown is None else chown
        self.warn = warn or (lambda msg: None)
        self.stats = ExtractStats()
        self._dirs: dict[tuple[str, ...], int] = {}  # resolved parent fds, dropped on any replacement
        self._written: set[tuple[str, ...]] = set()  # paths this layer created (kept by an opaque marker)
        self._opaque: list[tuple[str, ...]] = []
        self._dir_times: list[tuple[tuple[str, ...], float]] = []

    # -------------------------------------------------------------- plumbing

    def close(self) -> None:
        """Close cached directory fds."""
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def _invalidate(self) -> None:
        self.close()

    def _parent(self, parts: tuple[str, ...], create: bool = True) -> int:
        fd = self._dirs.get(parts)
        if fd is None:
            fd = rootpath.open_dir(self.root_fd, list(parts), create=create, max_symlinks=self.limits.max_symlinks)
            if len(self._dirs) >= 64:
                self._invalidate()
            self._dirs[parts] = fd
        return fd

    def _replace(self, parent: tuple[str, ...], base: str, want_dir: bool) -> tuple[int, bool]:
        """Clear the way for a new entry at parent/base: return (parent fd, merge into an existing dir)."""
        pfd = self._parent(parent)
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return pfd, False
        if want_dir and stat.S_ISDIR(st.st_mode):
            return pfd, True
        rootpath.remove_at(pfd, base)
        # Cached parents may have resolved through what was just removed: resolve again.
        self._invalidate()
        return self._parent(parent), False

    # ----------------------------------------------------------------- apply

    def apply(self, stream) -> ExtractStats:
        """Read a tar stream to its end and apply every member. Raises InvalidArchive on bad input."""
        keeper = _TailKeeper(stream)
        try:
            tf = tarfile.open(fileobj=cast(Any, keeper), mode="r|", tarinfo=_make_tarinfo_class(self.limits),
                              errorlevel=2, encoding="utf-8", errors="surrogateescape")
        except tarfile.ReadError as exc:
            raise InvalidArchive(f"invalid tar archive: {exc}") from exc
        try:
            while True:
                try:
                    member = tf.next()
                except tarfile.ReadError as exc:
                    raise InvalidArchive(f"invalid tar archive: {exc}") from exc
                if member is None:
                    break
                self.stats.entries += 1
                if self.stats.entries > self.limits.max_entries:
                    raise LimitExceeded(f"layer has more than {self.limits.max_entries} entries")
                try:
                    self._member(tf, member)
                except OSError as exc:
                    raise InvalidArchive(f"cannot extract {member.name[:80]!r}: {exc.strerror or exc}") from exc
                except (OverflowError, ValueError) as exc:
                    # Absurd owners, times or device numbers from the header.
                    raise InvalidArchive(f"cannot extract {member.name[:80]!r}: {exc}") from exc
                # Stream mode keeps every header otherwise: memory would grow with the entry count.
                tf.members.clear()  # type: ignore[attr-defined]
            tail = keeper.tail_from(tf.offset)
            if tail and tail[:512].strip(b"\0"):
                raise InvalidArchive(f"invalid tar archive: truncated or corrupt header at offset {tf.offset}")
            self._finish()
        finally:
            self.close()
        return self.stats

    def _member(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        if m.type not in _SUPPORTED:
            raise InvalidArchive(f"unhandled tar header type {m.type!r} for {m.name[:80]!r}")
        _check_name(m.name, self.limits)
        parts = rootpath.clean_parts(m.name)
        if len(parts) > self.limits.max_depth:
            raise LimitExceeded(f"tar member {m.name[:80]!r} is deeper than {self.limits.max_depth} levels")
        if not parts:
            return  # the root itself: keep the target's own attributes
        base = parts[-1]
        parent = tuple(parts[:-1])
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base)
            return
        if m.type in _FILE_TYPES and m.size > self.limits.max_layer_bytes:
            raise LimitExceeded(f"tar member {m.name[:80]!r} claims {m.size} bytes, over the layer limit")
        key = (*parent, base)
        if m.type == tarfile.DIRTYPE:
            pfd, merge = self._replace(parent, base, want_dir=True)
            if not merge:
                os.mkdir(base, 0o700, dir_fd=pfd)
            self._attrs(pfd, base, m, is_dir=True)
            self._dir_times.append((key, m.mtime))
        elif m.type in _FILE_TYPES:
            pfd, _ = self._replace(parent, base, want_dir=False)
            self._file(tf, pfd, base, m)
        elif m.type == tarfile.SYMTYPE:
            _check_name(m.linkname, self.limits, "link target")
            if not m.linkname:
                raise InvalidArchive(f"symlink {m.name[:80]!r} has an empty target")
            pfd, _ = self._replace(parent, base, want_dir=False)
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._attrs(pfd, base, m, is_link=True)
        elif m.type == tarfile.LNKTYPE:
            self._hardlink(parent, base, m)
        elif m.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            if not self.devices:
                self.stats.skipped.append(m.name)
                self.warn(f"skipped device node {m.name!r} (devices are created only as root)")
                return
            pfd, _ = self._replace(parent, base, want_dir=False)
            kind = stat.S_IFCHR if m.type == tarfile.CHRTYPE else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            self._attrs(pfd, base, m)
        elif m.type == tarfile.FIFOTYPE:
            pfd, _ = self._replace(parent, base, want_dir=False)
            os.mkfifo(base, 0o600, dir_fd=pfd)
            self._attrs(pfd, base, m)
        self._mark_written(key)

    def _mark_written(self, key: tuple[str, ...]) -> None:
        for i in range(1, len(key) + 1):
            self._written.add(key[:i])

    def _file(self, tf: tarfile.TarFile, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        try:
            src = tf.extractfile(m)
            if src is None:
                raise InvalidArchive(f"cannot read tar member {m.name[:80]!r}")
            left = m.size
            while left > 0:
                try:
                    chunk = src.read(min(_CHUNK, left))
                except tarfile.ReadError as exc:
                    raise InvalidArchive(f"file incomplete: {m.name[:80]!r}: {exc}") from exc
                if not chunk:
                    raise InvalidArchive(f"file incomplete: {m.name[:80]!r} is shorter than its header says")
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                left -= len(chunk)
            self.stats.files += 1
            self.stats.bytes += m.size
            self._fd_attrs(fd, m)
        finally:
            os.close(fd)

    def _hardlink(self, parent: tuple[str, ...], base: str, m: tarfile.TarInfo) -> None:
        _check_name(m.linkname, self.limits, "link target")
        tparts = rootpath.clean_parts(m.linkname)
        if not tparts:
            raise InvalidArchive(f"hardlink {m.name[:80]!r} points at the root directory")
        try:
            tfd = rootpath.open_dir(self.root_fd, tparts[:-1], create=False, max_symlinks=self.limits.max_symlinks)
        except (FileNotFoundError, InvalidArchive) as exc:
            raise InvalidArchive(f"hardlink {m.name[:80]!r}: target {m.linkname[:80]!r} not found in the layer") from exc
        try:
            try:
                st = os.stat(tparts[-1], dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError as exc:
                raise InvalidArchive(f"hardlink {m.name[:80]!r}: target {m.linkname[:80]!r} not found in the layer") from exc
            if stat.S_ISDIR(st.st_mode):
                raise InvalidArchive(f"hardlink {m.name[:80]!r}: target {m.linkname[:80]!r} is a directory")
            if (tuple(tparts[:-1]), tparts[-1]) == (parent, base):
                return  # a link to itself: nothing to do
            pfd, _ = self._replace(parent, base, want_dir=False)
            # linkat without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
            os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    # ------------------------------------------------------------- whiteouts

    def _whiteout(self, parent: tuple[str, ...], base: str) -> None:
        self.stats.whiteouts += 1
        if base == OPAQUE:
            pfd = self._parent(parent)
            if self.mode == "overlay":
                self._set_opaque(pfd)
            else:
                self._opaque.append(parent)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # other .wh..wh. names are reserved metadata: ignored, like containerd
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", "..") or "/" in target:
            raise InvalidArchive(f"invalid whiteout name {'/'.join((*parent, base))!r}")
        if self.mode == "overlay":
            pfd, _ = self._replace(parent, target, want_dir=False)
            try:
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
            except PermissionError as exc:
                raise InvalidArchive(f"cannot create overlay whiteout for {target!r}: {exc}") from exc
            self._mark_written((*parent, target))
            return
        try:
            pfd = self._parent(parent, create=False)
        except (FileNotFoundError, InvalidArchive):
            return  # nothing below to hide
        rootpath.remove_at(pfd, target)
        self._invalidate()

    def _set_opaque(self, dir_fd: int) -> None:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            try:
                os.setxattr(fd, "trusted.overlay.opaque", b"y")
            except PermissionError:
                os.setxattr(fd, "user.overlay.opaque", b"y")
        finally:
            os.close(fd)

    def _finish(self) -> None:
        # Opaque markers hide what earlier layers left, but keep what this layer put there.
        for parent in self._opaque:
            try:
                pfd = rootpath.open_dir(self.root_fd, list(parent), create=False)
            except (FileNotFoundError, InvalidArchive):
                continue
            try:
                dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
                try:
                    keep = {k[-1] for k in self._written if k[:-1] == parent}
                    rootpath.clear_dir(dfd, keep)
                finally:
                    os.close(dfd)
            finally:
                os.close(pfd)
        self._invalidate()
        for key, mtime in reversed(self._dir_times):
            try:
                pfd = rootpath.open_dir(self.root_fd, list(key[:-1]), create=False)
            except (FileNotFoundError, InvalidArchive):
                continue
            try:
                os.utime(key[-1], (mtime, mtime), dir_fd=pfd, follow_symlinks=False)
            except (FileNotFoundError, OverflowError, ValueError):
                pass  # gone (a later entry replaced it), or an absurd time: keep the extraction time
            finally:
                os.close(pfd)

    # ------------------------------------------------------------ attributes

    def _xattrs(self, fd: int, m: tarfile.TarInfo) -> None:
        for key, value in (m.pax_headers or {}).items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr.") :]
            if not name.startswith(_XATTR_ALLOWED):
                self.warn(f"ignored xattr {name!r} on {m.name!r} (not allowed from images)")
                continue
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            try:
                os.setxattr(fd, name, raw)
            except OSError as exc:
                if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
                    self.warn(f"could not set xattr {name!r} on {m.name!r}: {exc.strerror}")
                else:
                    raise

    def _fd_attrs(self, fd: int, m: tarfile.TarInfo) -> None:
        if self.chown:
            os.fchown(fd, m.uid, m.gid)  # numeric ids only: no NSS lookups
        self._xattrs(fd, m)
        os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears setuid bits
        os.utime(fd, (m.mtime, m.mtime))

    def _attrs(self, pfd: int, base: str, m: tarfile.TarInfo, is_dir: bool = False, is_link: bool = False) -> None:
        if is_link:
            if self.chown:
                os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        if is_dir:
            flags |= os.O_DIRECTORY
        if not is_dir and m.type not in _FILE_TYPES:
            flags = rootpath.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, dir_fd=pfd)
        try:
            if flags & rootpath.O_PATH:
                # Device/FIFO: chown/chmod through /proc/self/fd of an O_PATH fd (no open of the node itself).
                path = f"/proc/self/fd/{fd}"
                if self.chown:
                    os.chown(path, m.uid, m.gid)
                os.chmod(path, m.mode & 0o7777)
                return
            self._fd_attrs(fd, m)
        finally:
            os.close(fd)


def apply_layer(stream, root_fd: int, mode: str = "overlay", limits: Limits = DEFAULT,
                devices: bool | None = None, warn: Callable[[str], None] | None = None) -> ExtractStats:
    """Apply the tar `stream` to the directory open at `root_fd` (see the module docstring for `mode`)."""
    ex = Extractor(root_fd, mode=mode, limits=limits, devices=devices, warn=warn)
    return ex.apply(stream)
