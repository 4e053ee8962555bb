"""Drivers for the OCI runtime: any runc-compatible CLI (`--runtime PATH`) or virtlab's own, in-process.

Both offer the same verbs (create, start, kill, delete, state, pause, resume, ps, exec, update).
`create` is called from the launcher process, which the container's init must end up a child
of (it becomes the monitor), so both drivers leave the init as a child/grandchild of the caller.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from runtime.engine.errors import CannotInvoke, CommandNotFound, EngineError, RuntimeFailure

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    import subprocess
    from typing import Any

_MSG = r'msg="((?:[^"\\]|\\.)*)"'  # compiled by re on the first error, not in every `run`


def classify(message: str, what: str) -> EngineError:
    """Map a runtime's error text to docker's exit codes (127 not found, 126 cannot invoke, else 125)."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low and "exec" in low:
        return CommandNotFound(f"{what}: {message}")
    if "permission denied" in low and "exec" in low or "is a directory" in low or "exec format error" in low:
        return CannotInvoke(f"{what}: {message}")
    return RuntimeFailure(f"{what}: {message}")


def _message(stderr: str) -> str:
    msgs = [m.encode().decode("unicode_escape", errors="replace") for m in re.findall(_MSG, stderr)]
    text = msgs[-1] if msgs else stderr.strip().splitlines()[-1] if stderr.strip() else "failed"
    return text[:2000]


class RuncCLI:
    """A runc-compatible runtime binary driven through its command line."""

    def __init__(self, path: str, state_root: Path):
        import shutil

        found = shutil.which(path)
        if not found:
            raise EngineError(f"no such OCI runtime: {path}")
        self.path = found
        self.name = os.path.basename(found)
        self.root = str(state_root)

    def _argv(self, *args: str) -> list[str]:
        return [self.path, "--root", self.root, *args]

    def _run(self, what: str, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        import subprocess

        r = subprocess.run(self._argv(*args), input=input, capture_output=True)
        if check and r.returncode != 0:
            raise classify(_message(r.stderr.decode(errors="replace")), what)
        return r

    def _create_argv(self, cid: str, bundle: Path, pid_file: Path, console_socket: str | None) -> list[str]:
        # The init inherits the runtime's stdio, so runtime errors go to a log file instead.
        args = ["--log", str(bundle / "runtime.log"), "--log-format", "json",
                "create", "--bundle", str(bundle), "--pid-file", str(pid_file)]
        if console_socket:
            args += ["--console-socket", console_socket]
        return [self.path, "--root", self.root, *args, cid]

    def create_error(self, cid: str, bundle: Path) -> EngineError:
        """The error of a failed create, from the runtime's log file."""
        msg = "failed"
        try:
            with open(bundle / "runtime.log", "rb") as f:
                lines = f.read()[-65536:].decode(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in reversed(lines):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") in ("error", "fatal"):
                msg = str(entry.get("msg", "failed"))[:2000]
                break
        return classify(msg, f"cannot create container {cid[:12]}")

    def warm(self) -> None:
        """Import before the launcher is forked what its `create` needs (a fork shares it, copy-on-write)."""
        import subprocess  # noqa: F401

    def create(self, cid: str, bundle: Path, pid_file: Path, stdio: tuple[int, int, int],
               console_socket: str | None = None) -> int:
        """`runtime create`; returns the init's pid (the init waits for `start`)."""
        import subprocess

        r = subprocess.run(self._create_argv(cid, bundle, pid_file, console_socket),
                           stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
        if r.returncode != 0:
            raise self.create_error(cid, bundle)
        return int(pid_file.read_text().strip())

    def create_async(self, cid: str, bundle: Path, pid_file: Path, stdio: tuple[int, int, int],
                     console_socket: str | None = None) -> subprocess.Popen:
        """Start `runtime create` without waiting (for the console socket handshake)."""
        import subprocess

        return subprocess.Popen(self._create_argv(cid, bundle, pid_file, console_socket),
                                stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])

    def start(self, cid: str) -> None:
        """`runtime start`: the init execs the workload."""
        self._run(f"cannot start container {cid[:12]}", "start", cid)

    def kill(self, cid: str, sig: int, all: bool = False) -> None:
        """`runtime kill`."""
        self._run(f"cannot kill container {cid[:12]}", "kill", *(["--all"] if all else []), cid, str(sig))

    def delete(self, cid: str, force: bool = False) -> None:
        """`runtime delete` (idempotent: a missing container is fine)."""
        r = self._run("delete", "delete", *(["--force"] if force else []), cid, check=False)
        if r.returncode != 0:
            msg = _message(r.stderr.decode(errors="replace"))
            if "does not exist" not in msg and "not exist" not in msg:
                raise RuntimeFailure(f"cannot delete container {cid[:12]} in the runtime: {msg}")

    def state(self, cid: str) -> dict[str, Any] | None:
        """`runtime state`, or None when the runtime does not know the container."""
        r = self._run("state", "state", cid, check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def pause(self, cid: str) -> None:
        """Freeze every process of the container."""
        self._run(f"cannot pause container {cid[:12]}", "pause", cid)

    def resume(self, cid: str) -> None:
        """Thaw the container."""
        self._run(f"cannot unpause container {cid[:12]}", "resume", cid)

    def ps(self, cid: str) -> list[int]:
        """Host pids of the container's processes."""
        r = self._run(f"cannot list processes of {cid[:12]}", "ps", "--format", "json", cid)
        return [int(p) for p in json.loads(r.stdout or b"[]") or []]

    def exec_argv(self, cid: str, process_file: Path, detach: bool = False, tty: bool = False,
                  pid_file: Path | None = None) -> list[str]:
        """The command line of `runtime exec` (the CLI runs it with the user's terminal)."""
        return self._argv(*_exec_args(process_file, detach, tty, pid_file), cid)

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """Apply OCI linux.resources to the running container."""
        self._run(f"cannot update container {cid[:12]}", "update", "--resources", "-", cid,
                  input=json.dumps(resources).encode())


def _exec_args(process_file: Path, detach: bool, tty: bool, pid_file: Path | None) -> list[str]:
    """runc's `exec` verb and options (before the container ID), for either runtime."""
    args = ["exec", "--process", str(process_file)]
    if detach:
        args.append("--detach")
    if tty:
        args.append("--tty")
    if pid_file:
        args += ["--pid-file", str(pid_file)]
    return args


def exec_failure(stderr: str, what: str) -> EngineError | None:
    """The error an exec's stderr describes, if the runtime (not the command) failed."""
    if "level=error" not in stderr and "exec failed" not in stderr:
        return None
    return classify(_message(stderr), what)


def default_runtime() -> str:
    """The runtime the engine uses when none is given: env VIRTLAB_RUNTIME, else virtlab's own."""
    return os.environ.get("VIRTLAB_RUNTIME") or "virtlab"


def open_runtime(name: str | None, state_root: Path) -> Any:
    """A driver: "virtlab" (the in-process runtime.oci) or a path/name of a runc-compatible binary."""
    name = name or default_runtime()
    if name in ("virtlab", "virtlab-runtime"):
        try:
            return InProcess(state_root)
        except ImportError as exc:
            raise EngineError(f"virtlab's runtime is not available ({exc}); use --runtime runc") from None
    return RuncCLI(name, state_root)

def _oci_error(exc: Exception, what: str) -> EngineError:
    code = getattr(exc, "exit_code", 125)
    if code == 127:
        return CommandNotFound(f"{what}: {exc}")
    if code == 126:
        return CannotInvoke(f"{what}: {exc}")
    return classify(str(exc), what)


# What runtime.oci's create imports on first use (see InProcess.warm).
IN_PROCESS_CREATE = ("runtime.oci.cgroups.v1", "runtime.oci.cgroups.v2", "runtime.oci.devices", "runtime.oci.seccomp")


class InProcess:
    """virtlab's own runtime (runtime.oci.api), called in-process: no runtime binary to start.

    exec still goes through the `virtlab-runtime` CLI, so that joining the container's
    namespaces never happens in the engine's own (long-lived) process.
    """

    name = "virtlab-runtime"

    def __init__(self, state_root: Path):
        from runtime.oci import api

        self.api = api
        self.root = str(state_root)

    def _call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        from runtime.oci.errors import OCIError

        try:
            return fn(self.root, *args, **kw)
        except OCIError as exc:
            raise _oci_error(exc, what) from None

    def warm(self) -> None:
        """Import before the launcher is forked what api.create imports on first use: the cgroup
        manager and the seccomp planner. In the forked launcher that import is on the critical path
        (and slower, copy-on-write); here it is done once, and the delete at removal reuses it.
        """
        import importlib

        for name in IN_PROCESS_CREATE:
            with contextlib.suppress(ImportError):  # an optional piece: create reports its absence itself
                importlib.import_module(name)

    def create(self, cid: str, bundle: Path, pid_file: Path, stdio: tuple[int, int, int],
               console_socket: str | None = None) -> int:
        """api.create in this process (the launcher); the init becomes our child."""
        st = self._call(f"cannot create container {cid[:12]}", self.api.create, cid, str(bundle),
                        pid_file=str(pid_file), console_socket=console_socket, stdio=stdio)
        return int(st.get("pid") or pid_file.read_text().strip())

    def create_async(self, cid: str, bundle: Path, pid_file: Path, stdio: tuple[int, int, int],
                     console_socket: str | None = None) -> subprocess.Popen:
        """For the console handshake, the CLI in a child process."""
        argv = [*self._cli(), "--root", self.root, "create", "--bundle", str(bundle), "--pid-file", str(pid_file)]
        if console_socket:
            argv += ["--console-socket", console_socket]
        import subprocess

        return subprocess.Popen([*argv, cid], stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])

    def create_error(self, cid: str, bundle: Path) -> EngineError:
        """A failed create_async (its message went to the discarded stderr)."""
        return RuntimeFailure(f"cannot create container {cid[:12]} with a terminal")

    def _cli(self) -> list[str]:
        """The runtime's CLI (for exec and the console handshake; the common verbs run in-process)."""
        import shutil
        import sys

        beside = Path(sys.executable).parent / "virtlab-runtime"  # the venv's script, even if not on PATH
        path = str(beside) if beside.exists() else (shutil.which("virtlab-runtime") or "")
        return [path] if path else [sys.executable, "-c", "from runtime.oci.cli import main; main()"]

    def start(self, cid: str) -> None:
        """api.start."""
        self._call(f"cannot start container {cid[:12]}", self.api.start, cid)

    def kill(self, cid: str, sig: int, all: bool = False) -> None:
        """api.kill."""
        self._call(f"cannot kill container {cid[:12]}", self.api.kill, cid, sig, all=all)

    def delete(self, cid: str, force: bool = False) -> None:
        """api.delete (a container the runtime does not know is fine)."""
        from runtime.oci.errors import ContainerNotFound, OCIError

        try:
            self.api.delete(self.root, cid, force=force)
        except ContainerNotFound:
            return
        except OCIError as exc:
            raise RuntimeFailure(f"cannot delete container {cid[:12]} in the runtime: {exc}") from None

    def state(self, cid: str) -> dict[str, Any] | None:
        """api.state, or None."""
        from runtime.oci.errors import OCIError

        try:
            return self.api.state(self.root, cid)
        except OCIError:
            return None

    def pause(self, cid: str) -> None:
        """api.pause."""
        self._call(f"cannot pause container {cid[:12]}", self.api.pause, cid)

    def resume(self, cid: str) -> None:
        """api.resume."""
        self._call(f"cannot unpause container {cid[:12]}", self.api.resume, cid)

    def ps(self, cid: str) -> list[int]:
        """api.ps."""
        return list(self._call(f"cannot list processes of {cid[:12]}", self.api.ps, cid))

    def exec_argv(self, cid: str, process_file: Path, detach: bool = False, tty: bool = False,
                  pid_file: Path | None = None) -> list[str]:
        """`virtlab-runtime exec` (runc's command line)."""
        return [*self._cli(), "--root", self.root, *_exec_args(process_file, detach, tty, pid_file), cid]

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """New limits through the runtime's cgroup manager."""
        from runtime.oci.cgroups import CgroupError, load_manager

        st = self.state(cid)
        paths = (st or {}).get("cgroup_paths")
        try:
            if not paths:
                from runtime.oci import state as ostate

                paths = ostate.load(self.root, cid).get("cgroup_paths") if hasattr(ostate, "load") else None
            if not paths:
                raise RuntimeFailure(f"cannot update container {cid[:12]}: the runtime has no cgroup for it")
            load_manager(paths).update(resources)
        except CgroupError as exc:
            raise RuntimeFailure(f"cannot update container {cid[:12]}: {exc}") from None
