"""Domain and network XML, guest config and markers: pure functions (corpus case 58)."""

from __future__ import annotations

import base64
import subprocess
import xml.etree.ElementTree as ET

import pytest

from vmdriver.domain import (
    AGENT_PORT,
    FWCFG_CONFIG,
    METADATA_NS,
    MICRO_CMDLINE,
    DiskDef,
    DomainDef,
    check_cmdline,
    domain_xml,
    fwcfg_value,
    guest_config,
    network_xml,
    parse_ready,
)
from vmdriver.errors import InvalidSpec


def _def(**kw) -> DomainDef:
    base = dict(
        name="virtlab-t",
        memory_mib=128,
        vcpus=1,
        accel="tcg",
        disks=(DiskDef("/s/vms/t/overlay.qcow2", "qcow2", "vda", "/s/disks/b.qcow2", "qcow2"),),
        console_log="/s/vms/t/console.log",
        kernel="/s/kernels/k/vmlinuz",
        initrd="/s/initramfs/i.img",
        cmdline=MICRO_CMDLINE,
        fwcfg={FWCFG_CONFIG: "aGk="},
        metadata={"root": "/s", "name": "t"},
    )
    base.update(kw)
    return DomainDef(**base)


def test_tcg_domain_has_type_qemu_and_bounded_translation_cache():
    x = ET.fromstring(domain_xml(_def()))
    assert x.get("type") == "qemu"
    tb = x.find("features/tcg/tb-cache")
    assert tb is not None and tb.text == "64" and tb.get("unit") == "MiB"
    assert x.find("cpu") is None


def test_kvm_domain_has_type_kvm_and_no_tcg_feature():
    x = ET.fromstring(domain_xml(_def(accel="kvm")))
    assert x.get("type") == "kvm"
    assert x.find("features/tcg") is None
    assert x.find("cpu").get("mode") == "host-passthrough"


def test_memory_vcpus_and_direct_kernel_boot():
    x = ET.fromstring(domain_xml(_def(memory_mib=256, vcpus=2)))
    assert x.find("memory").text == "256" and x.find("memory").get("unit") == "MiB"
    assert x.find("vcpu").text == "2"
    assert x.find("os/kernel").text == "/s/kernels/k/vmlinuz"
    assert x.find("os/initrd").text == "/s/initramfs/i.img"
    assert x.find("os/cmdline").text == MICRO_CMDLINE
    assert x.find("os/boot") is None


def test_every_disk_and_its_backing_chain_has_an_explicit_format():
    user = DiskDef("/u/disk.img", "raw", "vdb")
    x = ET.fromstring(domain_xml(_def(disks=(*_def().disks, user))))
    disks = x.findall("devices/disk")
    assert [d.find("driver").get("type") for d in disks] == ["qcow2", "raw"]
    chain = disks[0].find("backingStore")
    assert chain.find("format").get("type") == "qcow2"
    assert chain.find("source").get("file") == "/s/disks/b.qcow2"
    # The chain is closed: an empty backingStore below the base, and below a plain disk.
    assert chain.find("backingStore") is not None and len(chain.find("backingStore")) == 0
    assert disks[1].find("backingStore") is not None and len(disks[1].find("backingStore")) == 0


def test_no_device_that_is_not_needed():
    x = ET.fromstring(domain_xml(_def()))
    dev = x.find("devices")
    tags = sorted({c.tag for c in dev})
    assert tags == ["channel", "controller", "disk", "memballoon", "serial"]
    assert dev.find("controller").get("model") == "none"  # no USB
    assert dev.find("memballoon").get("model") == "none"
    assert dev.find("graphics") is None and dev.find("video") is None
    assert dev.find("serial").get("type") == "file"
    assert dev.find("serial/source").get("path") == "/s/vms/t/console.log"
    ch = dev.find("channel")
    assert ch.get("type") == "unix" and ch.find("target").get("name") == AGENT_PORT


def test_network_interface_only_when_asked():
    x = ET.fromstring(domain_xml(_def(network="virtlab-vm", mac="52:54:00:01:02:03")))
    iface = x.find("devices/interface")
    assert iface.get("type") == "network"
    assert iface.find("source").get("network") == "virtlab-vm"
    assert iface.find("model").get("type") == "virtio"
    assert iface.find("mac").get("address") == "52:54:00:01:02:03"


def test_firmware_boot_for_the_full_profile():
    x = ET.fromstring(domain_xml(_def(kernel=None, initrd=None, cmdline=None, fwcfg={}, agent=False,
                                      firmware="/usr/share/OVMF/OVMF_CODE.fd")))
    assert x.find("os/kernel") is None
    assert x.find("os/boot").get("dev") == "hd"
    assert x.find("os/loader").text == "/usr/share/OVMF/OVMF_CODE.fd"
    assert x.find("devices/channel") is None


def test_fw_cfg_config_entry():
    x = ET.fromstring(domain_xml(_def()))
    e = x.find("sysinfo/entry")
    assert x.find("sysinfo").get("type") == "fwcfg"
    assert e.get("name") == FWCFG_CONFIG and e.text == "aGk="


@pytest.mark.parametrize("nasty", ["a<b", "it's", "x&y", 'q"uote', "]]>", "<domain type='kvm'>"])
def test_names_paths_and_metadata_are_escaped(nasty):
    xml = domain_xml(_def(name=f"virtlab-{nasty}", console_log=f"/s/{nasty}/c.log", metadata={"image": nasty}))
    x = ET.fromstring(xml)  # still well-formed
    assert x.find("name").text == f"virtlab-{nasty}"
    assert x.find("devices/serial/source").get("path") == f"/s/{nasty}/c.log"
    assert x.find(f"metadata/{{{METADATA_NS}}}vm").get("image") == nasty
    assert len(x.findall("devices/disk")) == 1


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "nul\x00", "tab\tbad", "esc\x1b[31m"])
def test_control_characters_are_rejected(bad):
    with pytest.raises(InvalidSpec):
        domain_xml(_def(name=bad))
    with pytest.raises(InvalidSpec):
        domain_xml(_def(cmdline=MICRO_CMDLINE + " " + bad))


def test_kernel_cmdline_is_bounded():
    assert check_cmdline("console=ttyS0") == "console=ttyS0"
    with pytest.raises(InvalidSpec, match="longer"):
        check_cmdline("x" * 2048)
    with pytest.raises(InvalidSpec, match="longer"):
        check_cmdline("é" * 1100)  # 2200 bytes


def test_unknown_accel_and_tiny_domains_are_rejected():
    with pytest.raises(InvalidSpec):
        domain_xml(_def(accel="xen"))
    with pytest.raises(InvalidSpec):
        domain_xml(_def(memory_mib=8))
    with pytest.raises(InvalidSpec):
        domain_xml(_def(vcpus=0))


def test_network_is_isolated():
    x = ET.fromstring(network_xml("virtlab-vm", "vlbr-vm", "10.89.0.1", 24))
    assert x.find("forward") is None  # no NAT, no routing out
    assert x.find("ip/dhcp") is None
    assert x.find("dns").get("enable") == "no"
    assert x.find("bridge").get("name") == "vlbr-vm"
    assert x.find("ip").get("address") == "10.89.0.1" and x.find("ip").get("prefix") == "24"


def _eval_config(cfg: str) -> tuple[list[str], list[str], str]:
    """Source the config in a real shell and see what argv, env and workdir it yields."""
    script = cfg + (
        'vl_in_root() { for a in "$@"; do printf "A:%s\\0" "$a"; done; vl_env sh -c \'env -0\'; }\n'
        "vl_entry\n"
        'printf "W:%s\\0" "$VL_WORKDIR"\n'
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout.decode()
    parts = [p for p in out.split("\0") if p]
    argv = [p[2:] for p in parts if p.startswith("A:")]
    wd = [p[2:] for p in parts if p.startswith("W:")][0]
    env = [p for p in parts if not p.startswith(("A:", "W:"))]
    return argv, env, wd


def test_guest_config_keeps_argv_and_env_as_data():
    argv = ["sh", "-c", "echo $HOME; rm -rf / ; `id`", "it's", "a\nb", "", "$(reboot)", ";&|<>*"]
    env = ["PATH=/bin", "X=$(touch /tmp/pwned)", "Y=it's 'quoted'", "NOEQUALS"]
    cfg = guest_config("web", argv, env, "/srv/app")
    got_argv, got_env, wd = _eval_config(cfg)
    assert got_argv == argv
    assert "X=$(touch /tmp/pwned)" in got_env and "Y=it's 'quoted'" in got_env
    assert not any(e.startswith("NOEQUALS") for e in got_env)
    assert wd == "/srv/app"


def test_guest_config_root_workdir_and_empty_command():
    _, _, wd = _eval_config(guest_config("web", ["true"], [], "/"))
    assert wd == ""  # the guest prefixes /newroot
    with pytest.raises(InvalidSpec, match="no command"):
        guest_config("web", [], [], "/")


def test_fwcfg_value_is_base64_without_commas():
    v = fwcfg_value("a,b=c\n'x'")
    assert "," not in v and base64.b64decode(v) == b"a,b=c\n'x'"


def test_parse_ready():
    assert parse_ready("VIRTLAB_READY init=1.52 ready=1.83") == {"init": 1.52, "ready": 1.83}
    assert parse_ready("VIRTLAB_READY init=x ready=2") == {"ready": 2.0}
