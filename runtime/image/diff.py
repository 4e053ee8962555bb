"""A container's changes as an OCI layer: an overlayfs upper dir written as a tar for `store.commit`.

overlayfs records a deletion as a 0:0 character device and an opaque directory as the
`trusted.overlay.opaque` (or `user.overlay.opaque`) xattr; the OCI layer format says
`.wh.<name>` and `.wh..wh..opq`. The tar is deterministic (sorted names), carries numeric
owners only (no name lookups), writes hardlinks inside the upper dir as links, keeps the
`security.capability` xattr, and skips sockets (tar cannot hold them) and mount points of
other filesystems (volumes are not part of an image).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from runtime.image.extract import OPAQUE, WHITEOUT_PREFIX

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_KEEP_XATTRS = ("security.capability",)


def _is_opaque(path: str) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _info(path: str, arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(arcname)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    xattrs = {}
    for name in _KEEP_XATTRS:
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        xattrs[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    if xattrs:
        ti.pax_headers = xattrs
    return ti


def is_whiteout(st: os.stat_result) -> bool:
    """True for overlayfs's mark of a deleted file: a 0:0 character device."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def walk(top: str | os.PathLike, one_fs: bool = True) -> Iterator[tuple[str, str, os.stat_result]]:
    """(path, relative name, lstat) of every entry under `top`: sorted, parents first.

    With `one_fs`, entries on another filesystem (a volume mounted there) are left out with
    everything under them.
    """
    top = os.fspath(top)
    root_dev = os.lstat(top).st_dev

    def below(path: str, rel: str) -> Iterator[tuple[str, str, os.stat_result]]:
        for child in sorted(os.listdir(path)):
            full = os.path.join(path, child)
            name = os.path.join(rel, child) if rel else child
            st = os.lstat(full)
            if one_fs and st.st_dev != root_dev:
                continue
            yield full, name, st
            if stat.S_ISDIR(st.st_mode):
                yield from below(full, name)

    return below(top, "")


def write_layer(upper: str | os.PathLike, out: BinaryIO,
                skip: Callable[[str, os.stat_result], bool] | None = None, one_fs: bool = True) -> int:
    """Write the changes in `upper` to `out` as an uncompressed layer tar; return the number of entries.

    `skip(name, st)` leaves out an entry (not its children) the caller knows is not a change,
    such as a mount point the engine created. A tree without whiteouts (a container's whole
    root) is written as is, which makes this `export` too.
    """
    links: dict[tuple[int, int], str] = {}
    count = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for path, rel, st in walk(upper, one_fs):
            if stat.S_ISSOCK(st.st_mode):
                continue  # tar cannot hold a socket
            if is_whiteout(st):
                parent, name = os.path.split(rel)
                ti = tarfile.TarInfo(os.path.join(parent, WHITEOUT_PREFIX + name))
                ti.mtime = 0
                tf.addfile(ti)
                count += 1
                continue
            if skip is not None and skip(rel, st):
                continue
            ti = _info(path, rel, st)
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
                count += 1
                if _is_opaque(path):
                    op = tarfile.TarInfo(os.path.join(rel, OPAQUE))
                    op.mtime = 0
                    tf.addfile(op)
                    count += 1
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in links:
                    ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, links[key], 0
                    tf.addfile(ti)
                    count += 1
                    continue
                links[key] = rel
            if stat.S_ISREG(st.st_mode):
                ti.size = st.st_size
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as f:
                    tf.addfile(ti, f)
            elif stat.S_ISLNK(st.st_mode):
                ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
                tf.addfile(ti)
            elif stat.S_ISFIFO(st.st_mode):
                ti.type = tarfile.FIFOTYPE
                tf.addfile(ti)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tf.addfile(ti)
            else:
                continue
            count += 1
    return count


def write_layer_file(upper: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """`write_layer` into the file `dest` (created 0600); returns its path."""
    dest = Path(dest)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        write_layer(upper, f)
    return dest
