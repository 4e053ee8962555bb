"""Initramfs pieces: modules.dep resolution, the cpio writer, static ELF detection."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from vmdriver.errors import ArtifactError
from vmdriver.initramfs import Cpio, is_static_elf, module_name, parse_modules_dep, resolve_modules

DEP = """\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
"""


def test_dependencies_come_first_and_once():
    deps = parse_modules_dep(DEP)
    order = resolve_modules(deps, set(), ("virtio_pci", "virtio_blk", "virtio_net"))
    names = [module_name(p) for p in order]
    assert len(names) == len(set(names))
    for mod, needs in (("virtio_pci", ["virtio", "virtio_ring", "virtio_pci_modern_dev"]),
                       ("virtio_net", ["net_failover", "failover"]), ("net_failover", ["failover"])):
        for n in needs:
            assert names.index(n) < names.index(mod)
    assert module_name("kernel/drivers/net/virtio_net.ko.xz") == "virtio_net"


def test_builtin_modules_are_skipped_and_missing_ones_named():
    deps = parse_modules_dep(DEP)
    assert resolve_modules(deps, {"virtio_blk"}, ("virtio_blk",)) == []
    with pytest.raises(ArtifactError, match="virtio_console"):
        resolve_modules(deps, set(), ("virtio_console",))


@pytest.mark.skipif(not shutil.which("cpio"), reason="requires cpio to read the archive back")
def test_cpio_archive_reads_back(tmp_path: Path):
    c = Cpio()
    c.dir("bin")
    c.file("bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
    c.symlink("bin/sh", "busybox")
    c.chardev("dev/console", 5, 1)
    data = c.finish()
    listing = subprocess.run(["cpio", "-itv"], input=data, capture_output=True, check=True).stdout.decode()
    assert "bin/hello" in listing and "bin/sh -> busybox" in listing
    assert "dev/console" in listing and "5," in listing
    out = tmp_path / "x"
    out.mkdir()
    # Extract without device nodes (cpio would need mknod): regular files round-trip exactly.
    subprocess.run(["cpio", "-id", "bin/hello"], input=data, cwd=out, capture_output=True, check=True)
    assert (out / "bin" / "hello").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert gzip.decompress(gzip.compress(data, mtime=0)) == data


def test_static_elf_detection():
    if Path("/bin/busybox").exists():
        assert is_static_elf(Path("/bin/busybox")) is not None
    assert is_static_elf(Path("/bin/ls")) is False
    assert is_static_elf(Path(__file__)) is False
