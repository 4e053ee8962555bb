"""Full profile building blocks: confined writes into the image's tree, ESP and GPT without loop devices."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vmdriver.domain import DiskDef, DomainDef, domain_xml
from vmdriver.full import FULL_CMDLINE, assemble_gpt, build_esp, has_systemd, symlink_in_root, write_in_root


@pytest.fixture
def host(tmp_path: Path) -> Path:
    h = tmp_path / "host" / "etc"
    h.mkdir(parents=True)
    (h / "unbroken").write_text("unbroken\n")
    return tmp_path / "host"


def test_writes_follow_image_symlinks_only_inside_the_root(tmp_path, host):
    root = tmp_path / "rootfs"
    root.mkdir()
    # An image whose /etc points at a host path, absolutely and relatively.
    (root / "etc").symlink_to(str(host / "etc"))
    (root / "usr").symlink_to("../../../../../../" + str(host).lstrip("/"))
    write_in_root(root, "etc/systemd/system/x.service", b"unit\n")
    write_in_root(root, "usr/local/lib/virtlab/agent.sh", b"#!/bin/sh\n", 0o755)
    # Nothing landed on the "host"; both went below the root, where the links resolve in-root.
    assert sorted(p.name for p in (host / "etc").iterdir()) == ["unbroken"]
    found = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    assert {p.name for p in found} == {"x.service", "agent.sh"}
    assert all(str(p).startswith(str(root)) for p in found)
    agent = next(p for p in found if p.name == "agent.sh")
    assert agent.stat().st_mode & 0o777 == 0o755


def test_an_existing_symlink_leaf_is_replaced_not_written_through(tmp_path, host):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").symlink_to(str(host / "etc" / "unbroken"))
    write_in_root(root, "etc/hostname", b"vm\n")
    assert (host / "etc" / "unbroken").read_text() == "unbroken\n"
    assert not (root / "etc" / "hostname").is_symlink() and (root / "etc" / "hostname").read_text() == "vm\n"
    symlink_in_root(root, "etc/systemd/system/multi-user.target.wants/a.service", "../a.service")
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/a.service") == "../a.service"


def test_has_systemd(tmp_path):
    root = tmp_path / "rootfs"
    (root / "sbin").mkdir(parents=True)
    assert not has_systemd(root)
    (root / "sbin" / "init").symlink_to("/lib/systemd/systemd")
    assert has_systemd(root)


@pytest.mark.skipif(not all(shutil.which(t) for t in ("mkfs.vfat", "mcopy", "sfdisk", "mdir")),
                    reason="requires dosfstools, mtools and fdisk")
def test_esp_and_gpt_are_built_from_files(tmp_path):
    from vmdriver.full import SYSTEMD_BOOT

    if not SYSTEMD_BOOT.is_file():
        pytest.skip("requires systemd-boot-efi")
    (tmp_path / "vmlinuz").write_bytes(b"k" * 4096)
    (tmp_path / "initrd").write_bytes(b"i" * 4096)
    esp = tmp_path / "esp.img"
    build_esp(esp, tmp_path / "vmlinuz", tmp_path / "initrd", FULL_CMDLINE)
    listing = subprocess.run(["mdir", "-i", str(esp), "-/", "-b", "::/"], capture_output=True, text=True).stdout
    for f in ("EFI/BOOT/BOOTX64.EFI", "vmlinuz", "initrd.img", "loader/loader.conf", "loader/entries/virtlab.conf"):
        assert f"::/{f}" in listing
    entry = subprocess.run(["mtype", "-i", str(esp), "::/loader/entries/virtlab.conf"], capture_output=True,
                           text=True).stdout
    assert f"options {FULL_CMDLINE}" in entry
    root = tmp_path / "root.raw"
    with open(root, "wb") as f:
        f.write(b"ROOT")
        f.truncate(8 << 20)
    disk = tmp_path / "disk.raw"
    assemble_gpt(disk, esp, root)
    parts = subprocess.run(["sfdisk", "-d", str(disk)], capture_output=True, text=True, check=True).stdout
    assert "label: gpt" in parts and "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in parts
    with open(disk, "rb") as f:
        f.seek((1 << 20) + esp.stat().st_size)
        assert f.read(4) == b"ROOT"
    assert disk.stat().st_blocks * 512 < disk.stat().st_size  # zero blocks stayed holes


def test_full_domain_boots_firmware_with_its_own_nvram():
    d = DomainDef(name="virtlab-f", memory_mib=512, vcpus=1, accel="tcg",
                  disks=(DiskDef("/s/o.qcow2", "qcow2", "vda", "/s/b.qcow2", "qcow2"),), console_log="/s/c.log",
                  firmware="/usr/share/OVMF/OVMF_CODE_4M.fd", nvram="/s/vms/f/VARS.fd",
                  nvram_template="/usr/share/OVMF/OVMF_VARS_4M.fd")
    x = ET.fromstring(domain_xml(d))
    assert x.find("os/loader").get("type") == "pflash" and x.find("os/loader").get("readonly") == "yes"
    assert x.find("os/nvram").text == "/s/vms/f/VARS.fd"
    assert x.find("os/nvram").get("template") == "/usr/share/OVMF/OVMF_VARS_4M.fd"
    assert x.find("os/kernel") is None and x.find("sysinfo") is None
