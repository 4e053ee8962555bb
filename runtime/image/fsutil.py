"""Crash-safe file updates and fd-based tree helpers for the store's own files."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename in it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = 0o600, suffix: str = "tmp") -> Iterator[BinaryIO]:
    """A file that appears at `path` whole or not at all: a temporary sibling, fsync, rename, fsync the dir."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` atomically (see atomic_file)."""
    with atomic_file(path, mode) as f:
        f.write(data)


def rmtree(path: Path | str) -> None:
    """Remove a tree through directory fds, never following a symlink; missing is fine.

    No shutil (and its bz2/lzma imports): `run --rm` removes its container dir with this.
    """
    from runtime.image.rootpath import remove_at

    parent, name = os.path.split(os.path.abspath(path))
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_at(fd, name)
    finally:
        os.close(fd)


def disk_usage(path: Path | str, *, skip_errors: bool = False) -> tuple[int, int]:
    """(apparent bytes of regular files, allocated bytes) under `path`, each inode counted once.

    Symlinks are not followed. Entries that vanish during the walk are passed over; with
    `skip_errors` so is any entry lstat fails on (a best-effort measurement of a live tree).
    """
    passed_over: type[OSError] = OSError if skip_errors else FileNotFoundError
    seen: set[tuple[int, int]] = set()
    apparent = allocated = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except passed_over:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            if stat.S_ISREG(st.st_mode):
                apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated
