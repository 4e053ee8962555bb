"""The native backend: the probe runs as a plain host process, the baseline of every ratio."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import probe
from bench.backends.base import (
    Backend,
    ExecResult,
    HostLink,
    Instance,
    LaunchSpec,
    Prepared,
    kill_process_group,
    run_cmd,
    wait_marker,
)
from bench.errors import LaunchError


class NativeInstance(Instance):
    """A probe process on the host; its 'instance' is just the process and a scratch directory."""

    def __init__(self, backend: NativeBackend, name: str, scratch: Path) -> None:
        super().__init__(backend, name)
        self.backend: NativeBackend = backend
        self.scratch = str(scratch)
        self.probe = str(backend.probe_bin)
        self.proc: subprocess.Popen | None = None

    def _exec(self, argv: list[str], timeout: float) -> ExecResult:
        r = run_cmd(self.backend.host_argv(argv), timeout, capture_output=True, text=True)
        return ExecResult(r.returncode, r.stdout, r.stderr)

    def stats(self) -> dict[str, Any]:
        """RSS of the probe process."""
        if self.proc is None:
            return {}
        try:
            with open(f"/proc/{self.proc.pid}/statm") as f:
                return {"mem_bytes": int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), "pids": 1}
        except OSError:
            return {}

    def stop(self) -> None:
        """SIGTERM the probe and wait a little."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def host_pids(self) -> list[int]:
        """The probe process."""
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def disk_usage(self) -> int:
        """Native instances add nothing but their scratch directory."""
        from bench.image import dir_bytes

        return dir_bytes(self.scratch) if os.path.isdir(self.scratch) else 0

    def _destroy(self) -> None:
        if self.proc is not None:
            if self.proc.stdout:
                self.proc.stdout.close()
            kill_process_group(self.proc)
        shutil.rmtree(self.scratch, ignore_errors=True)


class NativeBackend(Backend):
    """The host itself: no image, no isolation; the yardstick for performance ratios."""

    name = "native"
    kind = "native"

    def __init__(self, root: Path | str, work: Path | str) -> None:
        super().__init__(root, work)
        self.probe_bin: Path | None = None

    def available(self) -> tuple[bool, str]:
        """Always available: it needs only the probe (gcc -static)."""
        if not shutil.which("gcc"):
            return (False, "gcc is missing, so the probe cannot be built")
        return (True, "the host itself")

    def prepare(self, image: Any) -> Prepared:
        """Native runs the probe binary from the cache; it shares no image."""
        self.probe_bin = Path(image.rootfs) / probe.IN_IMAGE.lstrip("/") if image is not None else None
        if self.probe_bin is None or not self.probe_bin.exists():
            self.probe_bin = probe.build(self.root / "cache" / "bench")
        self.prepared = Prepared(image="(host)", digest=None, shared_bytes=0,
                                 metadata={"probe": str(self.probe_bin)})
        return self.prepared

    def host_argv(self, argv: list[str]) -> list[str]:
        """Map the in-image probe path to the host's copy."""
        if argv and argv[0] == probe.IN_IMAGE:
            return [str(self.probe_bin), *argv[1:]]
        return list(argv)

    def launch(self, spec: LaunchSpec) -> NativeInstance:
        """Start the probe with a stdout pipe and wait for the marker on it."""
        if self.probe_bin is None:
            self.prepare(None)
        name = spec.name or self.next_name()
        scratch = self.work / "native" / name
        scratch.mkdir(parents=True, exist_ok=True)
        inst = self._track(NativeInstance(self, name, scratch))
        env = {"PATH": "/usr/bin:/bin", **spec.env}
        try:
            inst.requested = time.time()
            inst.proc = subprocess.Popen(self.host_argv(spec.argv), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
            inst.created = time.time()
            inst.ready = wait_marker(inst.proc.stdout, spec.ready_marker, spec.ready_timeout, f"native {name}",
                                     inst.proc)
            inst.phases = {"exec": inst.ready - inst.requested}
            if spec.network:
                inst.link = HostLink("127.0.0.1", "127.0.0.1", "host loopback (native: both ends are host processes)")
        except BaseException as exc:
            inst.destroy()
            if isinstance(exc, OSError):
                raise LaunchError(f"cannot start the probe natively: {exc}") from exc
            raise
        return inst
