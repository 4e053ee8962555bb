"""Where the VM driver keeps its files under <root>/vm, and the names it validates.

QEMU runs as an unprivileged user (libvirt-qemu on Debian), so the directories
that hold kernels, initramfs images and disks are 0711: traversable, not listable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vmdriver.errors import InvalidSpec

DOMAIN_PREFIX = "virtlab-"
# Like docker's container names, minus the leading slash; short enough for a libvirt
# domain name and for a Linux hostname in the guest.
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")


def validate_name(name: str) -> str:
    """Return `name` if it is a valid VM name, else raise InvalidSpec naming it."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = repr(name)[:80]
        raise InvalidSpec(
            f"invalid VM name {shown}: use 1-63 characters [a-zA-Z0-9_.-], starting with a letter or digit"
        )
    return name


def domain_name(name: str) -> str:
    """The libvirt domain name of VM `name`."""
    return DOMAIN_PREFIX + validate_name(name)


@dataclass(frozen=True)
class Layout:
    """The paths of one store root's VM folder."""

    root: Path

    @property
    def base(self) -> Path:
        """<root>/vm."""
        return self.root / "vm"

    @property
    def kernels(self) -> Path:
        """Unpacked guest kernels and their modules."""
        return self.base / "kernels"

    @property
    def initramfs(self) -> Path:
        """Built initramfs images, by content hash."""
        return self.base / "initramfs"

    @property
    def disks(self) -> Path:
        """qcow2 base disks, one per image digest and profile."""
        return self.base / "disks"

    @property
    def vms(self) -> Path:
        """One folder per VM: record, overlay, console log."""
        return self.base / "vms"

    @property
    def tmp(self) -> Path:
        """Staging space for builds (same filesystem, so renames are atomic)."""
        return self.base / "tmp"

    @property
    def locks(self) -> Path:
        """Lock files serialising builds across processes."""
        return self.base / "locks"

    def vm_dir(self, name: str) -> Path:
        """The folder of VM `name`."""
        return self.vms / validate_name(name)

    def ensure(self) -> None:
        """Create the folders (0711: QEMU's user must traverse them)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for d in (self.base, self.kernels, self.initramfs, self.disks, self.vms, self.tmp, self.locks):
            d.mkdir(mode=0o711, exist_ok=True)
            os.chmod(d, 0o711)


def check_traversable(path: Path, uid: int) -> str | None:
    """Why user `uid` cannot reach `path` through its parents, or None when it can."""
    p = path.resolve()
    for parent in [*reversed(p.parents), p]:
        try:
            st = parent.stat()
        except OSError as exc:
            return f"cannot stat {parent}: {exc.strerror}"
        if st.st_uid == uid:
            continue
        if not st.st_mode & 0o001:
            return f"{parent} is not traversable by others (mode {oct(st.st_mode & 0o777)})"
    return None


class FileLock:
    """An exclusive flock on a file, as a context manager (safe across processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> FileLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
        self.fd = -1
