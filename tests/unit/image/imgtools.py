"""Helpers for image tests: hostile tarballs built with tarfile, and a tree snapshot for escape checks."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path


class _TI(tarfile.TarInfo):
    """A TarInfo that can carry its payload."""


def entry(kind: str, name: str, data: bytes | str = b"", **kw) -> tarfile.TarInfo:
    """A TarInfo (with its data in .payload) of kind file, dir, sym, link, chr, blk, fifo or a raw type byte."""
    ti = _TI(name)
    ti.mtime = kw.pop("mtime", 1_700_000_000)
    ti.payload = b""
    if kind == "file":
        ti.payload = data.encode() if isinstance(data, str) else data
        ti.size = len(ti.payload)
        ti.mode = 0o644
    elif kind == "dir":
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    elif kind == "sym":
        ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, data, 0o777
    elif kind == "link":
        ti.type, ti.linkname = tarfile.LNKTYPE, data
    elif kind in ("chr", "blk"):
        ti.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = data
        ti.mode = 0o600
    elif kind == "fifo":
        ti.type, ti.mode = tarfile.FIFOTYPE, 0o644
    else:
        ti.type = kind.encode()
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def make_tar(*entries: tarfile.TarInfo, fmt=tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar of the given entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti in entries:
            payload = getattr(ti, "payload", b"")
            tf.addfile(ti, io.BytesIO(payload) if ti.isreg() else None)
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def tree_state(path: Path, exclude: tuple[Path, ...] = ()) -> dict:
    """Every entry under `path` (minus `exclude` trees): type, mode, link count, content hash or link target."""
    out = {}
    skip = {str(e) for e in exclude}
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            if str(p) in skip:
                continue
            st = p.lstat()
            if p.is_symlink():
                val = ("l", os.readlink(p))
            elif p.is_file():
                val = ("f", hashlib.sha256(p.read_bytes()).hexdigest(), st.st_nlink)
            else:
                val = ("d",)
            out[str(p.relative_to(path))] = (*val, st.st_mode)
    return out
