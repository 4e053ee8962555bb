"""virtlab's VM driver: the same OCI images booted as libvirt/QEMU guests.

The public names are imported lazily so that `import vmdriver` stays cheap and
does not load libvirt.
"""

from __future__ import annotations

__all__ = ["Artifacts", "BootReport", "ExecResult", "VmDriver", "VmSpec"]


def __getattr__(name: str):
    """Load the public classes on first use."""
    if name in __all__:
        from vmdriver import driver

        return getattr(driver, name)
    raise AttributeError(name)
