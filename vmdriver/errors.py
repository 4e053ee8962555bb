"""Errors of the VM driver; every one maps to docker's exit code 125.

    VmDriverError                 root, exit_code 125
    ├── InvalidSpec               a bad name, size, profile, path or flag
    ├── NoSuchVm                  no VM record or domain with that name
    ├── VmExists                  the name is taken (record or libvirt domain)
    ├── ArtifactError             kernel, initramfs or disk could not be built or found
    ├── UnsafeDisk                a disk image that breaks the rules of SECURITY.md 5
    ├── LibvirtError              libvirt refused or failed an operation
    ├── BootTimeout               the guest did not report ready in time
    └── AgentError                the guest agent did not answer or broke the protocol
"""

from __future__ import annotations


class VmDriverError(Exception):
    """Root of every vmdriver error."""

    exit_code = 125


class InvalidSpec(VmDriverError):
    """A VM spec, name, size or path that cannot be used."""


class NoSuchVm(VmDriverError):
    """No VM record or domain with that name."""


class VmExists(VmDriverError):
    """The VM name is already taken."""


class ArtifactError(VmDriverError):
    """A kernel, initramfs or disk could not be built or found."""


class UnsafeDisk(VmDriverError):
    """A disk image that is rejected as untrusted input."""


class LibvirtError(VmDriverError):
    """libvirt refused or failed an operation."""


class LibvirtTimeout(LibvirtError):
    """A libvirt call did not return in time (a stuck job, a daemon still starting)."""


class BootTimeout(VmDriverError):
    """The guest did not report ready within the timeout."""


class AgentError(VmDriverError):
    """The guest agent did not answer or broke the protocol."""
