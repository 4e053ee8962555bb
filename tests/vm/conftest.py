"""VM tier fixtures: one store (busybox image, kernel, initramfs, base disk) for the whole session.

QEMU runs as an unprivileged user (libvirt-qemu) and must traverse every folder above
its disks. pytest's /tmp/pytest-of-root is 0700 and every new pytest session (other
people's too) resets it to 0700, so the VM store cannot live under tmp_path: it is a
private 0711 folder in /var/tmp, created before the first test's leak snapshot (autouse,
session scope) and removed, with every VM in it, at the end of the session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def vm_root():
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="virtlab-vmtest-", dir="/var/tmp"))
    os.chmod(root, 0o711)
    from runtime.image.build import build_busybox
    from runtime.image.store import ImageStore

    build_busybox(ImageStore(root / "image"))
    yield root
    from vmdriver.driver import VmDriver

    drv = VmDriver(root)
    for v in drv.list(all=True):
        drv.remove(v.name)
    drv.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def drv(vm_root: Path):
    """A driver on the session store; every VM a test leaves is removed, even on failure."""
    from vmdriver.driver import VmDriver

    d = VmDriver(vm_root)
    before = {v.name for v in d.list(all=True)}
    yield d
    for v in d.list(all=True):
        if v.name not in before:
            d.remove(v.name)
    d.close()
