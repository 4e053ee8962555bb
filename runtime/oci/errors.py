"""Errors of the OCI runtime (``virtlab-runtime`` and ``runtime.oci.api``).

Tree::

    OCIError (exit_code 125)
    +-- SpecError             the bundle or config.json is invalid
    +-- ContainerNotFound     no container with that id under --root
    +-- ContainerExists       the id is taken
    +-- StateError            the operation is not allowed in the container's state
    +-- SecurityError         a path escapes the rootfs, a masked target is not what it must be
    +-- SyscallError          a raw syscall failed (carries errno)
    +-- HookError             a hook failed or timed out
    +-- CgroupError           the cgroup manager failed (runtime.oci.cgroups)
    |   +-- CgroupUnsupported the requested resource or mode is not available here
    +-- ExecError             the container process could not be started (exit_code 126/127)
"""


class OCIError(Exception):
    """Root of every error raised by runtime.oci."""

    exit_code = 125


class SpecError(OCIError):
    """The bundle's config.json is missing or invalid."""


class ContainerNotFound(OCIError):
    """No container with that id exists under the runtime root."""


class ContainerExists(OCIError):
    """A container with that id already exists."""


class StateError(OCIError):
    """The operation is not valid in the container's current state."""

    def __init__(self, container_id: str, state: str, operation: str):
        super().__init__(f"cannot {operation} container {container_id}: container is {state}")
        self.container_id = container_id
        self.state = state
        self.operation = operation


class SecurityError(OCIError):
    """A path or object failed a safety check (escape, symlink, wrong type)."""


class SyscallError(OCIError):
    """A raw syscall failed; ``errno`` holds the error number."""

    def __init__(self, message: str, errno: int | None = 0):
        super().__init__(message)
        self.errno: int = errno or 0


class HookError(OCIError):
    """A lifecycle hook failed or timed out."""


class CgroupError(OCIError):
    """The cgroup manager could not create, configure or remove a cgroup."""


class CgroupUnsupported(CgroupError):
    """The requested cgroup resource or mode is not supported on this host."""


class ExecError(OCIError):
    """The container process could not be executed (126: not executable, 127: not found)."""

    def __init__(self, message: str, exit_code: int = 126):
        super().__init__(message)
        self.exit_code = exit_code
