"""The backends: one protocol (base.py) and one module per way of running the probe.

Names as in docs/contracts.md: native, container, vm-micro, vm-full, podman, runc,
qemu-direct. Modules are imported only when their backend is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.errors import ConfigError

NAMES = ("native", "container", "vm-micro", "vm-full", "podman", "runc", "qemu-direct")
KIND = {"native": "native", "container": "container", "vm-micro": "vm", "vm-full": "vm", "podman": "container",
        "runc": "container", "qemu-direct": "vm"}


def create(name: str, root: Path | str, work: Path | str, **options: Any):
    """A backend object by name (nothing is started or checked yet)."""
    if name == "native":
        from bench.backends.native import NativeBackend

        return NativeBackend(root, work)
    if name == "container":
        from bench.backends.container import ContainerBackend

        return ContainerBackend(root, work)
    if name in ("vm-micro", "vm-full"):
        from bench.backends.vm import VmBackend

        return VmBackend(root, work, profile=name.split("-", 1)[1], **options)
    if name == "podman":
        from bench.backends.podman import PodmanBackend

        return PodmanBackend(root, work)
    if name == "runc":
        from bench.backends.runc import RuncBackend

        return RuncBackend(root, work)
    if name == "qemu-direct":
        from bench.backends.qemu_direct import QemuDirectBackend

        return QemuDirectBackend(root, work, **options)
    raise ConfigError(f"unknown backend {name!r}: choose from {', '.join(NAMES)}")


def parse_list(text: str | None, default: tuple[str, ...]) -> list[str]:
    """A comma-separated list of backend names, validated (duplicates dropped, order kept)."""
    if not text:
        return list(default)
    out: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item not in NAMES:
            raise ConfigError(f"unknown backend {item!r}: choose from {', '.join(NAMES)}")
        if item not in out:
            out.append(item)
    if not out:
        raise ConfigError("no backend given")
    return out
