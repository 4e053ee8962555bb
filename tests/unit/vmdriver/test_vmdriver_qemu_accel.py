"""The qemu-direct argv, and the accelerator probe's cache and fallbacks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from vmd_unit_helpers import needs_qemu_img

from vmdriver import accel
from vmdriver.driver import VmSpec
from vmdriver.errors import InvalidSpec
from vmdriver.qemu import direct_command


def _opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


@needs_qemu_img
def test_direct_command_mirrors_the_libvirt_domain(fake_artifacts, tmp_path):
    run = tmp_path / "run,with,commas"
    argv = direct_command(fake_artifacts, VmSpec(image="busybox", name="d1", memory_mib=96, vcpus=1), "tcg", run)
    assert argv[0] == "qemu-system-x86_64" and "-nodefaults" in argv
    assert _opt(argv, "-accel") == ["tcg,tb-size=64"]
    assert _opt(argv, "-m") == ["96"] and _opt(argv, "-smp") == ["1"]
    assert _opt(argv, "-kernel") == [str(fake_artifacts.kernel)]
    # Every blockdev names its driver: nothing is probed.
    bds = _opt(argv, "-blockdev")
    assert all("driver=" in b for b in bds)
    assert any(b.startswith("driver=qcow2,file=top-file,backing=base") for b in bds)
    # Commas in paths are doubled, so a path cannot smuggle in options.
    assert any("run,,with,,commas/overlay.qcow2" in b for b in bds)
    assert (run / "overlay.qcow2").is_file()
    fw = _opt(argv, "-fw_cfg")[0]
    assert fw.startswith("name=opt/org.virtlab/config,string=") and fw.count(",") == 1
    kvm = direct_command(fake_artifacts, VmSpec(image="busybox", name="d1"), "kvm", run)
    assert _opt(kvm, "-accel") == ["kvm"]
    with pytest.raises(InvalidSpec):
        direct_command(fake_artifacts, VmSpec(image="busybox"), "xen", run)


def test_probe_without_kvm_device_falls_back_to_tcg(tmp_path, monkeypatch):
    monkeypatch.setattr(accel, "_kvm_device_reason", lambda: "/dev/kvm does not exist")
    p = accel.probe(tmp_path / "cache")
    assert p.accel == "tcg" and p.kvm_usable is False and "/dev/kvm does not exist" in p.reason
    assert abs(p.checked_at - time.time()) < 60
    cached = json.loads((tmp_path / "cache" / "accel.json").read_text())
    assert cached["accel"] == "tcg" and cached["boot_id"] == accel._boot_id()


def test_probe_uses_its_cache_until_the_host_reboots(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    accel._write_cache(cache / accel.CACHE_FILE, accel.AccelProbe("kvm", True, "booted", 1.0))
    monkeypatch.setattr(accel, "_kvm_device_reason", lambda: pytest.fail("the cache should have answered"))
    assert accel.probe(cache).accel == "kvm"
    data = json.loads((cache / accel.CACHE_FILE).read_text())
    data["boot_id"] = "another-boot"
    (cache / accel.CACHE_FILE).write_text(json.dumps(data))
    monkeypatch.setattr(accel, "_kvm_device_reason", lambda: "no kvm here")
    assert accel.probe(cache).accel == "tcg"


def test_kvm_that_hangs_means_tcg(tmp_path, monkeypatch):
    monkeypatch.setattr(accel, "_kvm_device_reason", lambda: None)

    class K:
        vmlinuz = Path("/k")

    monkeypatch.setattr("vmdriver.kernel.ensure_kernel", lambda layout: K())
    monkeypatch.setattr("vmdriver.initramfs.ensure_initramfs", lambda layout, k: Path("/i"))
    monkeypatch.setattr(accel, "boot_test", lambda k, i, t, a: (False, "a kvm guest did not reach its marker (hung)"))
    p = accel.probe(tmp_path / "cache", timeout=1)
    assert p.accel == "tcg" and "hung" in p.reason
    monkeypatch.setattr(accel, "boot_test", lambda k, i, t, a: (True, "a kvm guest booted"))
    assert accel.probe(tmp_path / "cache", refresh=True).accel == "kvm"


def test_boot_test_reports_a_missing_kernel(tmp_path):
    ok, why = accel.boot_test(tmp_path / "nope", tmp_path / "nope2", timeout=10, accel="tcg")
    assert ok is False and "exited" in why


def test_probe_store_stays_inside_the_given_folders(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(accel, "_kvm_device_reason", lambda: None)

    class K:
        vmlinuz = Path("/k")

    monkeypatch.setattr("vmdriver.kernel.ensure_kernel", lambda layout: seen.append(layout.root) or K())
    monkeypatch.setattr("vmdriver.initramfs.ensure_initramfs", lambda layout, k: Path("/i"))
    monkeypatch.setattr(accel, "boot_test", lambda k, i, t, a: (False, "hung"))
    accel.probe(tmp_path / "store" / "cache")
    accel.probe(tmp_path / "elsewhere")
    assert seen == [tmp_path / "store", tmp_path / "elsewhere"]
