"""Host mounts the peers need: an overlay per runc instance, and unmounting what is left under a path."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

from bench.errors import LaunchError

MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay of `lower` (read-only, shared) with a per-instance `upper` on `target`."""
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, opts) != 0:
        err = ctypes.get_errno()
        raise LaunchError(f"cannot mount overlay at {target}: {os.strerror(err)}")


def umount(target: Path | str) -> None:
    """Lazily unmount `target`; a path that is not mounted is fine."""
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, f"cannot unmount {target}: {os.strerror(err)}")


def mounts_under(path: Path | str) -> list[str]:
    """Mount points at or below `path`, deepest first (the order to unmount them in)."""
    base = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == base or mp.startswith(base.rstrip("/") + "/"):
                out.append(mp)
    return sorted(set(out), key=lambda p: p.count("/"), reverse=True)


def umount_under(path: Path | str) -> list[str]:
    """Unmount everything mounted at or below `path`; returns what it unmounted."""
    done = []
    for mp in mounts_under(path):
        try:
            umount(mp)
            done.append(mp)
        except OSError:
            continue
    return done
