"""The in-process API of the OCI runtime, as docs/contracts.md fixes it (the engine uses this).

The caller is a child subreaper while create and exec_ run (and only then), so the container's init
and exec'd processes are its children: it can waitpid() them for their exit code.
"""

from __future__ import annotations

from runtime.oci import container
from runtime.oci import create as _create
from runtime.oci import state as _state

__all__ = ["create", "delete", "exec_", "kill", "list_containers", "pause", "ps", "resume", "start", "state"]


def create(root: str, container_id: str, bundle: str, pid_file: str | None = None,
           console_socket: str | None = None, no_pivot: bool = False, stdio=None, preserve_fds: int = 0) -> dict:
    """Create a container from BUNDLE; return the OCI state (status created)."""
    opts = _create.Options(pid_file=pid_file, console_socket=console_socket, no_pivot=no_pivot, stdio=stdio,
                             preserve_fds=preserve_fds)
    st = _create.create(str(root), container_id, str(bundle), opts)
    return _state.public(st)


def start(root: str, container_id: str) -> None:
    """Start a created container."""
    container.start(str(root), container_id)


def state(root: str, container_id: str) -> dict:
    """The OCI state document of a container."""
    return _state.public(_state.load(str(root), container_id))


def kill(root: str, container_id: str, sig=15, all: bool = False) -> None:  # noqa: A002 - the contract's name
    """Send SIG (number or name) to the container's init, or to all its processes."""
    container.kill(str(root), container_id, sig, all)


def delete(root: str, container_id: str, force: bool = False) -> None:
    """Delete a stopped container (force: kill it first)."""
    container.delete(str(root), container_id, force)


def pause(root: str, container_id: str) -> None:
    """Freeze a running container."""
    container.pause(str(root), container_id)


def resume(root: str, container_id: str) -> None:
    """Thaw a paused container."""
    container.resume(str(root), container_id)


def ps(root: str, container_id: str) -> list[int]:
    """Host pids of the container's processes."""
    return container.ps(str(root), container_id)


def exec_(root: str, container_id: str, process: dict, detach: bool = True, console_socket: str | None = None,
          pid_file: str | None = None, stdio=None, preserve_fds: int = 0) -> int:
    """Run PROCESS in the container; return its host pid (with detach=False, wait and return the exit code)."""
    from runtime.oci import execute

    pid = execute.exec_process(str(root), container_id, process, console_socket=console_socket,
                               pid_file=pid_file, stdio=stdio, preserve_fds=preserve_fds)
    if detach:
        return pid
    import os

    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def list_containers(root: str) -> list[dict]:
    """The OCI state of every container under ROOT."""
    out = []
    for cid in _state.list_ids(str(root)):
        try:
            out.append(_state.public(_state.load(str(root), cid)))
        except Exception:  # noqa: BLE001 - a container deleted meanwhile is simply not listed
            continue
    return out
