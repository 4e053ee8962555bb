"""Errors of the cgroup managers, all under ``runtime.oci.errors.CgroupError``.

Tree::

    OCIError (exit_code 125)                 runtime.oci.errors
    +-- CgroupError                          a cgroup could not be created, set, read or removed
        +-- CgroupUnsupported                the mode, driver or resource is not available here
        +-- InvalidResources                 linux.resources holds a bad value; nothing was written
        +-- FreezeTimeout                    the cgroup did not reach the frozen state in time
"""

from runtime.oci.errors import CgroupError, CgroupUnsupported

__all__ = ["CgroupError", "CgroupUnsupported", "FreezeTimeout", "InvalidResources"]


class InvalidResources(CgroupError):
    """A value in linux.resources is invalid for this host; nothing was written."""


class FreezeTimeout(CgroupError):
    """The cgroup's processes did not all stop within the freeze timeout (it was thawed again)."""
