"""Errors of the container engine (runtime.engine).

Tree::

    EngineError (exit_code 125)
    +-- NoSuchContainer       no container matches the name or ID (prefix)
    +-- NoSuchVolume          no volume with that name
    +-- NameConflict          the name is taken (container or volume)
    +-- InvalidArgument       a bad flag value, name or path
    +-- InvalidState          the operation is not allowed in the container's state
    +-- ImageUnavailable      the image is unknown or the image store is missing
    +-- RuntimeFailure        the OCI runtime failed (create, start, kill, delete, exec)
    +-- CannotInvoke          the command exists but cannot be run (exit_code 126)
    +-- CommandNotFound       the command does not exist in the container (exit_code 127)
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error raised by runtime.engine."""

    exit_code = 125


class NoSuchContainer(EngineError):
    """No container matches the name or ID."""

    def __init__(self, ref: str):
        super().__init__(f"no such container: {ref}")
        self.ref = ref


class NoSuchVolume(EngineError):
    """No volume with that name."""

    def __init__(self, name: str):
        super().__init__(f"no such volume: {name}")
        self.name = name


class NameConflict(EngineError):
    """A container or volume name is already in use."""


class InvalidArgument(EngineError):
    """A flag value, name or path is not valid."""


class InvalidState(EngineError):
    """The container's state does not allow the operation."""

    def __init__(self, container: str, status: str, operation: str, hint: str = ""):
        msg = f"cannot {operation} container {container}: it is {status}"
        super().__init__(msg + (f" ({hint})" if hint else ""))
        self.container, self.status, self.operation = container, status, operation


class ImageUnavailable(EngineError):
    """The image is unknown, or no image store is available."""


class RuntimeFailure(EngineError):
    """The OCI runtime reported an error."""


class CannotInvoke(EngineError):
    """The container's command exists but cannot be executed (docker's 126)."""

    exit_code = 126


class CommandNotFound(EngineError):
    """The container's command was not found (docker's 127)."""

    exit_code = 127
