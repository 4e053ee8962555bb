"""The container's root filesystem: an overlayfs of the image's layer snapshots plus an upper dir."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from runtime.engine import linux
from runtime.engine.errors import EngineError

MAX_OPTIONS = 4000  # the kernel takes one page of mount options


def mount(lowers: list[Path], upper: Path, work: Path, merged: Path, volatile: bool = False) -> None:
    """Mount overlayfs at `merged`; `lowers` is lowest layer first (as store.snapshot_dirs gives it).

    `volatile` (for --rm containers, as podman does): the overlay skips every sync, so its
    unmount does not flush the whole host filesystem under the upper dir (1 to 40 ms here).
    The upper dir is not crash-safe then, which does not matter for a container that is
    removed when it stops.
    """
    if not lowers:
        raise EngineError(f"cannot mount overlay at {merged}: the image has no layers")
    for p in (*lowers, upper, work):
        if any(c in str(p) for c in ",:\n"):
            raise EngineError(f"cannot mount overlay at {merged}: path {p} contains ',' or ':'")
    for d in (upper, work, merged):
        d.mkdir(mode=0o755, exist_ok=True)
    lowerdir = ":".join(str(p) for p in reversed(lowers))  # overlay wants the top layer first
    opts = f"lowerdir={lowerdir},upperdir={upper},workdir={work}"
    if len(opts) > MAX_OPTIONS - len(",volatile"):
        raise EngineError(f"cannot mount overlay at {merged}: {len(lowers)} layers exceed the mount option size")
    if volatile:
        _clear_volatile(work)
        try:
            linux.mount("overlay", str(merged), "overlay", 0, opts + ",volatile")
            return
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: a kernel before 5.10 without the option
                raise EngineError(f"cannot mount overlay at {merged}: {exc.strerror}") from None
    try:
        linux.mount("overlay", str(merged), "overlay", 0, opts)
    except OSError as exc:
        raise EngineError(f"cannot mount overlay at {merged}: {exc.strerror}") from None


def _clear_volatile(work: Path) -> None:
    """Drop the marker an earlier volatile mount left in `work` (the kernel refuses to remount over it).

    The marker is how overlayfs says the upper dir may be inconsistent after a crash; the only
    containers mounted volatile are --rm ones, whose upper dir is thrown away anyway.
    """
    marker = work / "work" / "incompat" / "volatile"
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(marker):
            os.unlink(marker / name)
        os.rmdir(marker)


def unmount(merged: Path) -> None:
    """Unmount the rootfs if it is mounted (idempotent; lazily if busy)."""
    try:
        linux.umount(str(merged))
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return
        if exc.errno == errno.EBUSY:
            with contextlib.suppress(OSError):
                linux.umount(str(merged), linux.MNT_DETACH)
            return
        raise EngineError(f"cannot unmount {merged}: {exc.strerror}") from None


def is_mounted(merged: Path) -> bool:
    """True when the overlay is mounted at `merged`."""
    try:
        return os.stat(merged).st_dev != os.stat(merged.parent).st_dev
    except FileNotFoundError:
        return False
