"""A container's filesystem changes: diff (A/C/D), export (the whole rootfs) and commit (a layer).

The upper dir of the overlay is the change set: a 0:0 character device is a deletion
(whiteout), a directory with trusted.overlay.opaque=y hides the lower one. Files the engine
itself puts there as mount points (/etc/hosts, ...) are left out, as docker does.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from runtime.engine.errors import EngineError

# Mount points the runtime creates in the rootfs when the image lacks them.
PLACEHOLDERS = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev", "/proc", "/sys", "/dev/init"}


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lowers(engine: Any, rec: dict[str, Any]) -> list[Path]:
    img = engine.images.resolve(rec["Image"])
    return [Path(p) for p in engine.images.snapshot_dirs(img)]


def _placeholders(rec: dict[str, Any]) -> set[str]:
    return PLACEHOLDERS | {m["Destination"] for m in rec.get("Mounts") or []}


def diff(engine: Any, ref: str) -> list[tuple[str, str]]:
    """[("A"|"C"|"D", "/path"), ...] sorted by path."""
    rec = engine.record(ref)
    upper = engine.store.path(rec["Id"]) / "upper"
    lowers = _lowers(engine, rec)
    skip = _placeholders(rec)
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = "/" + os.path.relpath(dirpath, upper).lstrip(".")
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            path = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(full)
            if _is_whiteout(st):
                out.append(("D", path))
                continue
            in_lower = any(os.path.lexists(str(lo) + path) for lo in lowers)
            if not in_lower and path in skip and (stat.S_ISDIR(st.st_mode) or st.st_size == 0):
                continue
            out.append(("C" if in_lower else "A", path))
    out.sort(key=lambda x: x[1])
    return out


def _tarinfo(tf: tarfile.TarFile, full: str, arcname: str, st: os.stat_result) -> tarfile.TarInfo | None:
    """A TarInfo with numeric owners only (no NSS lookups), or None for sockets."""
    if stat.S_ISSOCK(st.st_mode):
        return None
    ti = tarfile.TarInfo(arcname)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(full)
    elif stat.S_ISREG(st.st_mode):
        ti.type = tarfile.REGTYPE
        ti.size = st.st_size
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(st.st_mode):
        ti.type = tarfile.FIFOTYPE
    else:
        return None
    return ti


def _walk_children(full: str, rel: str) -> Iterator[tuple[str, str, os.stat_result]]:
    for name in sorted(os.listdir(full)):
        f = os.path.join(full, name)
        r = os.path.join(rel, name)
        st = os.lstat(f)
        yield f, r, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_children(f, r)


def _add_tree(tf: tarfile.TarFile, top: str, skip_dev: bool = False) -> None:
    links: dict[tuple[int, int], str] = {}
    for full, rel, st in _walk_children(top, ""):
        ti = _tarinfo(tf, full, rel, st)
        if ti is None:
            continue
        if ti.type == tarfile.REGTYPE and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in links:
                ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, links[key], 0
                tf.addfile(ti)
                continue
            links[key] = rel
        if ti.type == tarfile.REGTYPE:
            with open(full, "rb") as f:
                tf.addfile(ti, f)
        else:
            tf.addfile(ti)


def export(engine: Any, ref: str, out: BinaryIO) -> None:
    """Write the container's whole filesystem as a tar stream (no volume or /proc contents)."""
    from runtime.engine.cp import _rootfs

    rec = engine.record(ref)
    with _rootfs(engine, rec) as rootfs, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_tree(tf, rootfs)


def layer_tar(engine: Any, rec: dict[str, Any], out: Any) -> None:
    """The container's changes as an OCI layer: whiteouts as .wh.<name>, opaque dirs as .wh..wh..opq."""
    upper = str(engine.store.path(rec["Id"]) / "upper")
    lowers = _lowers(engine, rec)
    skip = _placeholders(rec)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for full, rel, st in _walk_children(upper, ""):
            path = "/" + rel
            if _is_whiteout(st):
                d, n = os.path.split(rel)
                wh = tarfile.TarInfo(os.path.join(d, ".wh." + n))
                wh.mtime = 0
                tf.addfile(wh)
                continue
            in_lower = any(os.path.lexists(str(lo) + path) for lo in lowers)
            if not in_lower and path in skip and (stat.S_ISDIR(st.st_mode) or st.st_size == 0):
                continue
            ti = _tarinfo(tf, full, rel, st)
            if ti is None:
                continue
            if ti.type == tarfile.REGTYPE:
                with open(full, "rb") as f:
                    tf.addfile(ti, f)
            else:
                tf.addfile(ti)
            if stat.S_ISDIR(st.st_mode) and _is_opaque(full):
                op = tarfile.TarInfo(os.path.join(rel, ".wh..wh..opq"))
                op.mtime = 0
                tf.addfile(op)


def commit(engine: Any, ref: str, image_ref: str | None, changes: dict[str, Any] | None = None,
           comment: str = "", author: str = "", pause: bool = True) -> Any:
    """A new image: the container's image plus one layer of its changes (paused while it is read)."""
    import tempfile

    rec = engine.record(ref)
    paused_here = False
    if pause and rec["State"]["Status"] == "running":
        engine.pause(rec["Id"])
        paused_here = True
    try:
        base = engine.images.resolve(rec["Image"])
        tmpdir = engine.root / "containers" / ".tmp"
        tmpdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=tmpdir, suffix=".tar") as f:
            layer_tar(engine, rec, f)
            f.flush()
            try:
                return engine.images.commit(base, Path(f.name), image_ref, config_changes=changes or None,
                                            comment=comment, author=author)
            except EngineError:
                raise
            except Exception as exc:  # the image package's own errors
                raise EngineError(f"cannot commit container {rec['Name']}: {exc}") from exc
    finally:
        if paused_here:
            with contextlib.suppress(EngineError):
                engine.unpause(rec["Id"])


def parse_changes(lines: list[str]) -> dict[str, Any]:
    """`commit -c` Dockerfile instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL)."""
    import json
    import shlex

    out: dict[str, Any] = {}
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        word = word.upper()
        rest = rest.strip()

        def argv(text: str) -> list[str]:
            if text.startswith("["):
                try:
                    v = json.loads(text)
                    if isinstance(v, list) and all(isinstance(x, str) for x in v):
                        return v
                except ValueError:
                    pass
            return ["/bin/sh", "-c", text]

        if word == "CMD":
            out["Cmd"] = argv(rest)
        elif word == "ENTRYPOINT":
            out["Entrypoint"] = argv(rest)
        elif word == "ENV":
            k, _, v = rest.partition("=") if "=" in rest.split(" ")[0] else rest.partition(" ")
            out.setdefault("Env", []).append(f"{k}={v}")
        elif word == "WORKDIR":
            out["WorkingDir"] = rest
        elif word == "USER":
            out["User"] = rest
        elif word == "EXPOSE":
            for p in rest.split():
                out.setdefault("ExposedPorts", {})[p if "/" in p else p + "/tcp"] = {}
        elif word == "LABEL":
            for item in shlex.split(rest):
                k, _, v = item.partition("=")
                out.setdefault("Labels", {})[k] = v
        elif word == "STOPSIGNAL":
            out["StopSignal"] = rest
        else:
            raise EngineError(f"invalid --change {line!r}: {word} is not supported")
    return out

