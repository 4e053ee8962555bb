"""bzImage -> PVH ELF extraction, the bzImage memory floor, and bounded libvirt calls (no boots)."""

from __future__ import annotations

import gzip
import lzma
import struct
import time
from pathlib import Path

import pytest

from vmdriver import kernel
from vmdriver.domain import MICRO_CMDLINE
from vmdriver.errors import ArtifactError, InvalidSpec, LibvirtTimeout


def _elf(notes: list[tuple[bytes, int, bytes]], loads: list[tuple[int, int]]) -> bytes:
    """A minimal ELF64 with PT_LOAD segments (paddr, memsz) and one PT_NOTE of `notes`."""
    note = b""
    for name, ntype, desc in notes:
        n = name + b"\0"
        note += struct.pack("<III", len(n), len(desc), ntype) + n + b"\0" * (-len(n) % 4) + desc + b"\0" * (-len(desc) % 4)
    phnum = len(loads) + 1
    note_off = 64 + 56 * phnum
    hdr = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    hdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x1000000, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    ph = b"".join(struct.pack("<IIQQQQQQ", 1, 5, 0, 0, paddr, 0, memsz, 0x200000) for paddr, memsz in loads)
    ph += struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(note), len(note), 4)
    return hdr + ph + note


def _bzimage(payload: bytes, init_size: int = 0x3000000, pref: int = 0x1000000) -> bytes:
    """A bzImage-shaped file: boot header (protocol 2.15), 4 setup sectors, then the payload."""
    head = bytearray(5 * 512)
    head[0x1F1] = 4
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x206, 0x20F)
    struct.pack_into("<II", head, 0x248, 0, len(payload))
    struct.pack_into("<Q", head, 0x258, pref)
    struct.pack_into("<I", head, 0x260, init_size)
    return bytes(head) + payload


PVH = (b"Xen", kernel.XEN_ELFNOTE_PHYS32_ENTRY, struct.pack("<I", 0x1000850))


def test_pvh_note_and_extent_are_read_from_the_elf():
    elf = _elf([(b"GNU", 3, b"x" * 20), PVH], [(0x1000000, 0x1800000), (0x304E000, 0xDB2000)])
    assert kernel.pvh_elf_info(elf) == (0x1000850, 0x3E00000)
    assert kernel.pvh_elf_info(_elf([(b"GNU", 3, b"x" * 20)], [(0x1000000, 0x100)])) is None
    assert kernel.pvh_elf_info(b"MZ not an elf" * 10) is None


@pytest.mark.parametrize("compress", [lambda b: gzip.compress(b, mtime=0),
                                      lambda b: lzma.compress(b, format=lzma.FORMAT_XZ)])
def test_payload_round_trip_and_size_trailer(compress):
    elf = _elf([PVH], [(0x1000000, 0x1000)]) + b"\0" * 5000
    payload = compress(elf) + struct.pack("<I", len(elf))
    assert kernel.decompress_payload(kernel.bzimage_payload(_bzimage(payload))) == elf
    with pytest.raises(ArtifactError, match="trailer says"):
        kernel.decompress_payload(compress(elf) + struct.pack("<I", len(elf) + 1))


def test_bad_bzimages_are_refused_clearly():
    with pytest.raises(ArtifactError, match="not a bzImage"):
        kernel.bzimage_payload(b"\x7fELF" + b"\0" * 1000)
    with pytest.raises(ArtifactError, match="unknown bzImage compression"):
        kernel.decompress_payload(b"ZZZZ" * 10 + struct.pack("<I", 40))
    with pytest.raises(ArtifactError, match="refused"):
        kernel.decompress_payload(b"\x1f\x8b" + b"\0" * 10 + struct.pack("<I", 0xFFFFFFFF))
    bz = bytearray(_bzimage(b"x" * 100))
    struct.pack_into("<I", bz, 0x24C, 10**6)  # payload length past the end of the file
    with pytest.raises(ArtifactError, match="outside the file"):
        kernel.bzimage_payload(bytes(bz))


def test_ensure_pvh_elf_extracts_once_or_records_why_not(tmp_path: Path):
    good = tmp_path / "good"
    good.mkdir()
    elf = _elf([PVH], [(0x1000000, 0x1000)])
    (good / "vmlinuz").write_bytes(_bzimage(gzip.compress(elf, mtime=0) + struct.pack("<I", len(elf))))
    assert kernel.ensure_pvh_elf(good) == good / "vmlinux"
    assert (good / "vmlinux").read_bytes() == elf
    bad = tmp_path / "bad"
    bad.mkdir()
    plain = _elf([], [(0x1000000, 0x1000)])
    (bad / "vmlinuz").write_bytes(_bzimage(gzip.compress(plain, mtime=0) + struct.pack("<I", len(plain))))
    assert kernel.ensure_pvh_elf(bad) is None
    assert "no PVH entry" in (bad / kernel.NO_ELF_MARKER).read_text()
    assert not (bad / "vmlinux").exists()


def test_bzimage_memory_floor_and_create_refuses_too_little_ram(tmp_path: Path, fake_artifacts):
    (tmp_path / "vmlinuz").write_bytes(_bzimage(b"x" * 64, init_size=int(51.5 * (1 << 20))))
    assert kernel.bzimage_min_memory_mib(tmp_path / "vmlinuz") == 68  # 16 MiB load address + 51.5
    assert kernel.bzimage_min_memory_mib(tmp_path / "nonexistent") == 0
    from dataclasses import replace

    from vmdriver.driver import VmDriver, VmSpec

    fake_artifacts.kernel.write_bytes(_bzimage(b"x" * 64, init_size=int(51.5 * (1 << 20))))
    art = replace(fake_artifacts)
    drv = VmDriver(tmp_path / "root", uri="test:///default", accel="tcg")
    try:
        with pytest.raises(InvalidSpec, match="too small for kernel 6.1.0-test"):
            drv.create(VmSpec(image="busybox", name="small", memory_mib=64), artifacts=art)
        assert not drv.layout.vm_dir("small").exists()
    finally:
        drv.close()


def test_micro_cmdline_skips_tracefs_and_crypto_self_tests():
    # ~9 MiB of never-freed slab on 6.1 kernels: without this, 64 MiB guests OOM at boot.
    assert "initcall_blacklist=tracer_init_tracefs" in MICRO_CMDLINE.split()
    assert "cryptomgr.notests" in MICRO_CMDLINE.split()  # no self-test allocations during boot


def test_bounded_call_returns_raises_and_times_out(tmp_path: Path):
    from vmdriver.driver import VmDriver

    drv = VmDriver(tmp_path / "root", uri="test:///default", accel="tcg")
    assert drv._bounded("add", lambda: 1 + 1, 5) == 2
    with pytest.raises(ZeroDivisionError):
        drv._bounded("divide", lambda: 1 / 0, 5)
    t0 = time.monotonic()
    with pytest.raises(LibvirtTimeout, match="did not wait within 0.3 s"):
        drv._bounded("wait", lambda: time.sleep(3), 0.3)
    assert time.monotonic() - t0 < 2.5
