"""Domain XML: on q35 every PCI device sits on pcie.0 (no pcie-root-ports for the guest to probe)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from vmdriver.domain import DiskDef, DomainDef, domain_xml
from vmdriver.errors import InvalidSpec


def _def(**kw: Any) -> DomainDef:
    base: dict[str, Any] = dict(
        name="virtlab-t", memory_mib=64, vcpus=1, accel="tcg",
        disks=(DiskDef("/s/o.qcow2", "qcow2", "vda", "/s/b.qcow2", "qcow2"), DiskDef("/s/u.raw", "raw", "vdb")),
        console_log="/s/console.log", kernel="/s/k/vmlinux", initrd="/s/i.img", agent=True,
        network="virtlab-vm", mac="52:54:00:00:00:01",
    )
    base.update(kw)
    return DomainDef(**base)


def _addresses(x: ET.Element) -> list[tuple[str | None, str | None, str | None]]:
    return [(a.get("bus"), a.get("slot"), a.get("function")) for a in x.iter("address") if a.get("type") == "pci"]


def test_q35_devices_are_integrated_endpoints_on_distinct_root_slots():
    x = ET.fromstring(domain_xml(_def()))
    addrs = _addresses(x)
    assert len(addrs) == 4  # two disks, the virtio-serial controller, the NIC
    assert {b for b, _, _ in addrs} == {"0x00"}
    assert len({s for _, s, _ in addrs}) == 4
    assert not {"0x00", "0x01", "0x1f"} & {s for _, s, _ in addrs}  # host bridge, display, ICH9
    assert x.find("devices/controller[@type='virtio-serial']/address") is not None
    assert not [c for c in x.iter("controller") if (c.get("model") or "").startswith("pcie-root-port")]


def test_other_machines_keep_libvirts_placement_and_disk_count_is_bounded():
    assert _addresses(ET.fromstring(domain_xml(_def(machine="pc")))) == []
    many = tuple(DiskDef(f"/s/d{i}.raw", "raw", f"vd{chr(98 + i)}") for i in range(9))
    with pytest.raises(InvalidSpec, match="at most 8"):
        domain_xml(_def(disks=many))
