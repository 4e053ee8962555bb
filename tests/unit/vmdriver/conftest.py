"""Helpers for vmdriver unit tests: qemu-img made disks and fake artifacts in a tmp store."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmd_unit_helpers import qemu_img

from vmdriver.artifacts import Artifacts
from vmdriver.layout import Layout


@pytest.fixture
def fake_artifacts(tmp_path: Path) -> Artifacts:
    """Artifacts with real files (a dummy kernel and initrd, a real qcow2 base) in a tmp store."""
    layout = Layout(tmp_path / "root")
    layout.ensure()
    kdir = layout.kernels / "6.1.0-test"
    kdir.mkdir()
    (kdir / "vmlinuz").write_bytes(b"not really a kernel")
    initrd = layout.initramfs / "0123456789abcdef.img"
    initrd.write_bytes(b"not really an initramfs")
    base = layout.disks / ("ab" * 32 + ".qcow2")
    qemu_img("create", "-q", "-f", "qcow2", str(base), "64M")
    return Artifacts(
        image="busybox", image_id="sha256:" + "ab" * 32, profile="micro", kernel=kdir / "vmlinuz",
        initrd=initrd, base_disk=base, base_format="qcow2", kernel_version="6.1.0-test",
        image_config={"Entrypoint": [], "Cmd": ["sh"], "Env": ["PATH=/bin"], "WorkingDir": "/", "User": ""},
        sizes={},
    )
