"""Pure functions that produce libvirt XML (domains, the isolated network) and the guest's config.

Everything is built with ElementTree, so names, paths and command lines are escaped;
text that cannot be expressed safely (control characters, over-long command lines) is
rejected. Every disk carries an explicit format, its backing chain too: libvirt and
QEMU never probe.
"""

from __future__ import annotations

import base64
import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from vmdriver.errors import InvalidSpec

METADATA_NS = "https://virtlab.invalid/xmlns/vm/1"
AGENT_PORT = "org.virtlab.agent"
FWCFG_CONFIG = "opt/org.virtlab/config"
KERNEL_CMDLINE_MAX = 2047  # x86 COMMAND_LINE_SIZE is 2048 including the NUL
# no_timer_check: under heavy host load the kernel's IO-APIC timer check can fail under TCG
# ("MP-BIOS bug: 8254 timer not connected") and the guest hangs; the density run hit it at 38 VMs.
# initcall_blacklist=tracer_init_tracefs: kernels before 6.6 (no eventfs) create a tracefs
# inode and dentry for every trace event file at boot, ~9 MiB of slab that never goes away;
# micro guests never mount tracefs, and without it a 64 MiB guest has room to run (OOM at boot else).
# cryptomgr.notests: the crypto self-tests run in kthreads during boot and allocate compression
# workspaces; in a 64 MiB guest they hit an OOM panic now and then (1 of 50 in a density run),
# and under TCG they cost ~0.4 s of the kernel phase.
MICRO_CMDLINE = (
    "console=ttyS0 quiet panic=-1 no_timer_check i8042.noaux i8042.nokbd initcall_blacklist=tracer_init_tracefs"
    " cryptomgr.notests"
)
# Slots on q35's pcie.0 (0x00 is the host bridge, 0x01 is kept for a display, 0x1f is ICH9).
SLOT_DISK0, MAX_DISKS, SLOT_SERIAL, SLOT_NIC = 0x02, 8, 0x0A, 0x0B
_CTRL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DiskDef:
    """One disk: a file with an explicit format, optionally on an explicit backing file."""

    path: str
    format: str
    target: str
    backing: str | None = None
    backing_format: str | None = None
    readonly: bool = False


@dataclass(frozen=True)
class DomainDef:
    """Everything a domain's XML depends on (the record keeps the same fields)."""

    name: str
    memory_mib: int
    vcpus: int
    accel: str  # "kvm" or "tcg"
    disks: tuple[DiskDef, ...]
    console_log: str
    kernel: str | None = None  # direct kernel boot (micro); None boots firmware (full)
    initrd: str | None = None
    cmdline: str | None = None
    firmware: str | None = None  # an OVMF code image for full/UEFI; None is SeaBIOS
    nvram: str | None = None  # the VM's own UEFI variables (copied by libvirt from the template)
    nvram_template: str | None = None
    fwcfg: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    mac: str | None = None
    agent: bool = True
    tb_cache_mib: int = 64
    machine: str = "q35"
    metadata: dict[str, str] = field(default_factory=dict)


def check_text(what: str, value: str, limit: int = 4096) -> str:
    """Reject control characters and over-long values in text that goes into XML or argv."""
    if not isinstance(value, str) or _CTRL.search(value) or len(value) > limit:
        raise InvalidSpec(f"invalid {what}: {value!r:.80} (control characters or longer than {limit})")
    return value


def check_cmdline(cmdline: str) -> str:
    """A kernel command line: printable, one line, at most 2047 bytes."""
    check_text("kernel command line", cmdline, KERNEL_CMDLINE_MAX)
    if len(cmdline.encode()) > KERNEL_CMDLINE_MAX:
        raise InvalidSpec(f"kernel command line is longer than {KERNEL_CMDLINE_MAX} bytes")
    return cmdline


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    e = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        e.text = text
    return e


def _pci_root_slot(dev: ET.Element, slot: int) -> None:
    """Put a device on q35's root bus (pcie.0) as an integrated endpoint.

    Without an address libvirt puts every PCIe device behind a pcie-root-port of its
    own; the guest kernel then probes those ports (pciehp), which cost ~0.2 s of the kernel
    phase under TCG. Plain QEMU (the qemu-direct peer) puts them on pcie.0 as well.
    """
    _sub(dev, "address", type="pci", domain="0x0000", bus="0x00", slot=f"0x{slot:02x}", function="0x0")


def _disk(devices: ET.Element, d: DiskDef, slot: int | None = None) -> None:
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type=d.format, discard="unmap")
    _sub(disk, "source", file=check_text("disk path", d.path))
    if d.backing:
        bs = _sub(disk, "backingStore", type="file")
        _sub(bs, "format", type=d.backing_format or "raw")
        _sub(bs, "source", file=check_text("backing path", d.backing))
        _sub(bs, "backingStore")  # the chain ends here: nothing below the base
    else:
        _sub(disk, "backingStore")
    _sub(disk, "target", dev=d.target, bus="virtio")
    if d.readonly:
        _sub(disk, "readonly")
    if slot is not None:
        _pci_root_slot(disk, slot)


def domain_xml(d: DomainDef) -> str:
    """The libvirt domain XML for `d`."""
    if d.accel not in ("kvm", "tcg"):
        raise InvalidSpec(f"unknown accelerator {d.accel!r}")
    if d.memory_mib < 16 or d.vcpus < 1:
        raise InvalidSpec(f"domain {d.name}: memory {d.memory_mib} MiB / {d.vcpus} vCPUs is too small")
    dom = ET.Element("domain", type="kvm" if d.accel == "kvm" else "qemu")
    _sub(dom, "name", check_text("domain name", d.name, 200))
    if d.metadata:
        md = _sub(dom, "metadata")
        ET.SubElement(md, f"{{{METADATA_NS}}}vm", {k: check_text(k, v) for k, v in sorted(d.metadata.items())})
    _sub(dom, "memory", str(d.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(d.vcpus), placement="static")
    if d.fwcfg:
        si = _sub(dom, "sysinfo", type="fwcfg")
        for k, v in sorted(d.fwcfg.items()):
            _sub(si, "entry", check_text("fw_cfg value", v, 1 << 16), name=check_text("fw_cfg name", k, 55))
    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine=d.machine)
    if d.kernel:
        _sub(os_, "kernel", check_text("kernel path", d.kernel))
        if d.initrd:
            _sub(os_, "initrd", check_text("initrd path", d.initrd))
        if d.cmdline:
            _sub(os_, "cmdline", check_cmdline(d.cmdline))
    else:
        if d.firmware:
            _sub(os_, "loader", check_text("firmware path", d.firmware), readonly="yes", type="pflash")
            if d.nvram:
                attrs = {"template": check_text("nvram template", d.nvram_template)} if d.nvram_template else {}
                _sub(os_, "nvram", check_text("nvram path", d.nvram), **attrs)
        _sub(os_, "boot", dev="hd")
    feats = _sub(dom, "features")
    _sub(feats, "acpi")
    if d.accel == "tcg":
        # Without this, QEMU reserves a 1 GiB translation cache per VM (ENVIRONMENT.md).
        tcg = _sub(feats, "tcg")
        _sub(tcg, "tb-cache", str(d.tb_cache_mib), unit="MiB")
    if d.accel == "kvm":
        _sub(dom, "cpu", mode="host-passthrough", check="none", migratable="off")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "destroy")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    q35 = d.machine.startswith(("q35", "pc-q35"))
    if len(d.disks) > MAX_DISKS:
        raise InvalidSpec(f"domain {d.name}: {len(d.disks)} disks, at most {MAX_DISKS}")
    for i, disk in enumerate(d.disks):
        _disk(devices, disk, SLOT_DISK0 + i if q35 else None)
    # q35 would add a USB controller, a balloon and a display; none is needed.
    _sub(devices, "controller", type="usb", model="none")
    if d.agent and q35:
        _pci_root_slot(_sub(devices, "controller", type="virtio-serial", index="0"), SLOT_SERIAL)
    if d.network:
        iface = _sub(devices, "interface", type="network")
        _sub(iface, "source", network=check_text("network name", d.network, 100))
        if d.mac:
            _sub(iface, "mac", address=d.mac)
        _sub(iface, "model", type="virtio")
        if q35:
            _pci_root_slot(iface, SLOT_NIC)
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=check_text("console path", d.console_log), append="on")
    _sub(serial, "target", port="0")
    if d.agent:
        ch = _sub(devices, "channel", type="unix")
        _sub(ch, "source", mode="bind")
        _sub(ch, "target", type="virtio", name=AGENT_PORT)
    _sub(devices, "memballoon", model="none")
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode")


def network_xml(name: str, bridge: str, address: str, prefix: int) -> str:
    """An isolated libvirt network: a host bridge with an address, no <forward>, no DHCP, no DNS."""
    net = ET.Element("network")
    _sub(net, "name", check_text("network name", name, 100))
    _sub(net, "bridge", name=check_text("bridge name", bridge, 15), stp="off", delay="0")
    _sub(net, "dns", enable="no")
    _sub(net, "ip", address=address, prefix=str(prefix))
    ET.indent(net)
    return ET.tostring(net, encoding="unicode")


def guest_config(
    hostname: str,
    argv: list[str],
    env: list[str],
    workdir: str = "/",
    root_dev: str = "/dev/vda",
    net_addr: str = "",
    net_gw: str = "",
) -> str:
    """The shell fragment the guest init sources: every value quoted, so image data stays data."""
    if not argv:
        raise InvalidSpec("no command specified: the image has no Entrypoint or Cmd and none was given")
    if not workdir.startswith("/"):
        workdir = "/" + workdir
    q = shlex.quote
    lines = [
        f"VL_HOSTNAME={q(hostname)}",
        f"VL_WORKDIR={q(workdir.rstrip('/') or '')}",
        f"VL_ROOT_DEV={q(root_dev)}",
        f"VL_NET_ADDR={q(net_addr)}",
        f"VL_NET_GW={q(net_gw)}",
        "vl_env() { env -i " + " ".join(q(e) for e in env if "=" in e) + ' "$@"; }',
        "vl_entry() { vl_in_root " + " ".join(q(a) for a in argv) + "; }",
    ]
    return "\n".join(lines) + "\n"


def fwcfg_value(config: str) -> str:
    """The fw_cfg string for a guest config (base64: no commas or quotes reach QEMU's argv)."""
    return base64.b64encode(config.encode()).decode()


def parse_ready(line: str) -> dict[str, float]:
    """`VIRTLAB_READY init=1.52 ready=1.83` -> {"init": 1.52, "ready": 1.83}."""
    out: dict[str, float] = {}
    for part in line.split()[1:]:
        k, _, v = part.partition("=")
        try:
            out[k] = float(v)
        except ValueError:
            continue
    return out
