"""Lifecycle logic against libvirt's in-memory test driver (test:///default): no root, no QEMU."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from vmd_unit_helpers import needs_qemu_img

from vmdriver.domain import FWCFG_CONFIG, METADATA_NS
from vmdriver.driver import VmDriver, VmSpec
from vmdriver.errors import InvalidSpec, NoSuchVm, UnsafeDisk, VmExists

libvirt = pytest.importorskip("libvirt")
pytestmark = needs_qemu_img


@pytest.fixture
def drv(tmp_path: Path, fake_artifacts):
    d = VmDriver(tmp_path / "root", uri="test:///default", accel="tcg")
    yield d
    # The test driver's state lives as long as the connection: leave it clean anyway.
    for v in d.list(all=True):
        d.remove(v.name)
    d.close()


def _spec(name="t1", **kw) -> VmSpec:
    return VmSpec(image="busybox", name=name, **kw)


def test_create_defines_a_domain_with_record_overlay_and_console(drv, fake_artifacts):
    vm = drv.create(_spec(cmd=["echo", "hi"]), artifacts=fake_artifacts)
    assert vm.name == "t1" and vm.domain == "virtlab-t1" and vm.state == "stopped" and vm.accel == "tcg"
    d = drv.layout.vm_dir("t1")
    assert (d / "overlay.qcow2").is_file() and (d / "console.log").is_file() and (d / "record.json").is_file()
    xml = ET.fromstring(drv.conn.lookupByName("virtlab-t1").XMLDesc(0))
    assert xml.get("type") == "qemu"
    assert xml.find(f"metadata/{{{METADATA_NS}}}vm").get("root") == str(drv.root)
    assert xml.find("sysinfo/entry").get("name") == FWCFG_CONFIG
    rec = drv.inspect("t1")
    assert rec["cmd"] == ["echo", "hi"] and rec["state"] == "stopped"


def test_start_stop_and_remove_twice(drv, fake_artifacts):
    drv.create(_spec(), artifacts=fake_artifacts)
    report = drv.start("t1", wait_ready=False)
    assert report.accel == "tcg" and report.vmm_started >= report.requested
    assert [v.state for v in drv.list(all=False)] == ["running"]
    with pytest.raises(Exception, match="already running"):
        drv.start("t1", wait_ready=False)
    drv.stop("t1", timeout=2)  # no agent socket in the test driver: ACPI, then destroy
    assert [v.state for v in drv.list(all=True)] == ["stopped"]
    assert drv.list(all=False) == []
    assert drv.remove("t1") is True
    assert drv.remove("t1") is False  # idempotent
    assert not drv.layout.vm_dir("t1").exists()
    with pytest.raises(NoSuchVm):
        drv.start("t1")


def test_names_are_unique_and_nothing_is_left_on_conflict(drv, fake_artifacts):
    drv.create(_spec(), artifacts=fake_artifacts)
    with pytest.raises(VmExists):
        drv.create(_spec(), artifacts=fake_artifacts)
    # A domain of the same name without our folder (a leftover) also blocks the name.
    drv.conn.defineXML("<domain type='test'><name>virtlab-t2</name><memory>65536</memory>"
                       "<os><type>hvm</type></os></domain>")
    with pytest.raises(VmExists, match="already exists"):
        drv.create(_spec("t2"), artifacts=fake_artifacts)
    assert not drv.layout.vm_dir("t2").exists()
    drv.conn.lookupByName("virtlab-t2").undefine()


@pytest.mark.parametrize(
    "kw",
    [dict(name="a/b"), dict(name="x" * 100), dict(memory_mib=8), dict(memory_mib=1 << 30), dict(vcpus=0),
     dict(vcpus=4096), dict(profile="huge"), dict(network="host"), dict(disk_format="vmdk"), dict(env=["NOEQ"])],
)
def test_bad_specs_are_rejected_before_anything_is_made(drv, fake_artifacts, kw):
    kw.setdefault("name", "t1")
    with pytest.raises(InvalidSpec) as ei:
        drv.create(VmSpec(image="busybox", **kw), artifacts=fake_artifacts)
    assert ei.value.exit_code == 125
    assert list(drv.layout.vms.iterdir()) == [] if drv.layout.vms.exists() else True
    assert [d.name() for d in drv.conn.listAllDomains() if d.name().startswith("virtlab-")] == []


def test_an_unsafe_user_disk_leaves_nothing_behind(drv, fake_artifacts, tmp_path):
    evil = tmp_path / "evil.qcow2"
    from vmd_unit_helpers import qemu_img

    qemu_img("create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b", "/etc/shadow", str(evil), "1M")
    with pytest.raises(UnsafeDisk):
        drv.create(_spec(disk=str(evil), disk_format="qcow2"), artifacts=fake_artifacts)
    assert not drv.layout.vm_dir("t1").exists()
    assert [d.name() for d in drv.conn.listAllDomains() if d.name() == "virtlab-t1"] == []


def test_user_disk_is_attached_with_its_declared_format(drv, fake_artifacts, tmp_path):
    img = tmp_path / "data.img"
    img.write_bytes(b"\0" * (1 << 20))
    drv.create(_spec(disk=str(img)), artifacts=fake_artifacts)
    xml = ET.fromstring(drv.conn.lookupByName("virtlab-t1").XMLDesc(0))
    disks = {d.find("target").get("dev"): d for d in xml.iter("disk")}
    assert disks["vdb"].find("driver").get("type") == "raw"
    assert disks["vdb"].find("source").get("file") == str(img.resolve())


def test_60_leftovers_are_visible_and_removed_idempotently(drv, fake_artifacts):
    # A crash left a domain that names this store but no record...
    drv.create(_spec("crashed"), artifacts=fake_artifacts)
    import shutil

    shutil.rmtree(drv.layout.vm_dir("crashed"))
    # ...and a folder whose domain is gone.
    drv.create(_spec("half"), artifacts=fake_artifacts)
    drv.conn.lookupByName("virtlab-half").undefine()
    # A domain of another store is not ours to list.
    other = VmDriver(drv.root.parent / "other", uri="test:///default", accel="tcg")
    other._conn = drv.conn
    states = {v.name: (v.state, v.orphan) for v in drv.list(all=True)}
    assert states == {"crashed": ("stopped", True), "half": ("missing-domain", False)}
    assert drv.remove("crashed") and drv.remove("half")
    assert drv.remove("crashed") is False and drv.remove("half") is False
    assert drv.list(all=True) == []


def test_disk_usage_splits_shared_and_instance_bytes(drv, fake_artifacts):
    drv.create(_spec(), artifacts=fake_artifacts)
    du = drv.disk_usage("t1")
    assert du["shared_bytes"] == fake_artifacts.shared_bytes > 0
    assert 0 < du["instance_bytes"] < 1 << 20


def test_generated_names_are_valid(drv, fake_artifacts):
    vm = drv.create(VmSpec(image="busybox"), artifacts=fake_artifacts)
    assert vm.name.startswith("vm-") and drv.remove(vm.name)


def test_start_refuses_an_overlay_that_no_longer_names_our_base(drv, fake_artifacts, tmp_path):
    from vmd_unit_helpers import qemu_img

    drv.create(_spec(), artifacts=fake_artifacts)
    overlay = drv.layout.vm_dir("t1") / "overlay.qcow2"
    other = tmp_path / "shadow.raw"
    other.write_bytes(b"secret" * 100)
    overlay.unlink()
    qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(other), str(overlay), "1M")
    with pytest.raises(UnsafeDisk, match="backing file"):
        drv.start("t1", wait_ready=False)
    assert not drv.conn.lookupByName("virtlab-t1").isActive()


def test_remove_is_bounded_when_libvirt_does_not_answer(drv, fake_artifacts, tmp_path):
    """A libvirtd that accepts but never answers (busy, stuck): rm gives up in time, keeps the VM."""
    import socket
    import time

    from vmdriver.errors import LibvirtTimeout

    drv.create(_spec("stuck", cmd=["echo", "hi"]), artifacts=fake_artifacts)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock_path = tmp_path / "silent.sock"
    silent.bind(str(sock_path))
    silent.listen(1)
    real_uri, drv.uri = drv.uri, f"qemu+unix:///system?socket={sock_path}"
    drv._conn = None
    try:
        t0 = time.monotonic()
        with pytest.raises(LibvirtTimeout, match=r"remove domain .*stuck.* within 1.0 s.*run rm again"):
            drv.remove("stuck", timeout=1.0)
        assert time.monotonic() - t0 < 5
        assert drv.layout.vm_dir("stuck").is_dir()  # the domain may still be defined: keep its record
    finally:
        silent.close()  # the abandoned call sees EOF and its thread ends
        drv.uri = real_uri
    assert drv.remove("stuck")
    assert not drv.layout.vm_dir("stuck").exists()
