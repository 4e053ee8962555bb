"""The Backend protocol: one interface for native, containers and VMs (DESIGN.md, "Contracts").

A Backend says whether it is available here (and why not), prepares its artifacts once
(`prepare`, which reports their disk footprint), and launches Instances. An Instance
records host timestamps (requested, created, ready), offers exec/stats/stop, and a
`destroy()` that is idempotent; it is a context manager. The harness imports only this.

Every backend keeps the instances it launched, so that an interrupted run can destroy
all of them (`destroy_all`), and measures "ready" from the host: a timestamp taken
before the request, and the host time at which the ready marker was seen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.errors import ReadyTimeout

KINDS = ("native", "container", "vm")
InstanceT = TypeVar("InstanceT", bound="Instance")


@dataclass
class LaunchSpec:
    """What to run in a new instance: the probe's argv (as seen inside), and sizes."""

    argv: list[str]
    name: str | None = None
    memory_mib: int | None = None
    vcpus: int = 1
    env: dict[str, str] = field(default_factory=dict)
    ready_marker: bytes = b"VIRTLAB_READY"
    ready_timeout: float = 120.0
    # Reachable from the host (the network workload): the backend's bridge, a veth or tap the
    # harness makes, or the host itself. Off by default: instances have their loopback only.
    network: bool = False


@dataclass
class HostLink:
    """How the host and an instance reach each other: the host's address on the link, the instance's, and what the link is."""

    host_addr: str
    instance_addr: str | None
    path: str


@dataclass
class Prepared:
    """What `prepare` built: the image, and the bytes every instance shares."""

    image: str
    digest: str | None
    shared_bytes: int
    parts: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExecResult:
    """The outcome of a command run inside an instance."""

    exit_code: int
    stdout: str
    stderr: str
    seconds: float = 0.0


class Instance:
    """A running instance of a backend. Subclasses implement `_exec`, `_destroy` and the queries."""

    # Where the probe lives inside the instance, and a writable directory on the instance's own disk.
    probe = "/usr/bin/virtlab-probe"
    scratch = "/var/tmp/virtlab"

    def __init__(self, backend: Backend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.requested: float | None = None
        self.created: float | None = None
        self.ready: float | None = None
        self.phases: dict[str, float] = {}
        self.metadata: dict[str, Any] = {}
        # Set by launch() when the spec asked for a network reachable from the host.
        self.link: HostLink | None = None
        self._destroyed = False
        self._lock = threading.Lock()

    # lifecycle -------------------------------------------------------------

    @property
    def startup(self) -> float | None:
        """Seconds from the request to the ready marker, both seen from the host."""
        if self.requested is None or self.ready is None:
            return None
        return self.ready - self.requested

    def exec(self, argv: list[str], timeout: float = 300.0) -> ExecResult:
        """Run argv inside the instance and wait for it."""
        t0 = time.monotonic()
        res = self._exec(argv, timeout)
        res.seconds = time.monotonic() - t0
        return res

    def stats(self) -> dict[str, Any]:
        """Resource usage as the backend sees it (memory, cpu, pids ...)."""
        return {}

    def stop(self) -> None:
        """Stop the workload gracefully; `destroy` still has to be called."""

    def destroy(self) -> None:
        """Remove the instance and everything it made on the host. Safe to call twice."""
        with self._lock:
            if self._destroyed:
                return
            self._destroyed = True
        try:
            self._destroy()
        finally:
            self.backend._forget(self)

    @property
    def destroyed(self) -> bool:
        """Whether destroy() ran."""
        return self._destroyed

    def disk_usage(self) -> int:
        """Bytes this instance added on the host's disk (upper dir, qcow2 overlay, ...)."""
        return 0

    def host_pids(self) -> list[int]:
        """Host PIDs of the processes that exist because of this instance (for PSS)."""
        return []

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.backend.name}/{self.name}>"

    # for subclasses ---------------------------------------------------------

    def _exec(self, argv: list[str], timeout: float) -> ExecResult:
        raise NotImplementedError

    def _destroy(self) -> None:
        raise NotImplementedError


class Backend:
    """Base of every backend: name, kind, availability, prepare, launch, and the live-instance registry."""

    name = "backend"
    kind = "native"
    # The VM label of performance numbers (kvm or tcg); None for native and containers.
    accel: str | None = None

    def __init__(self, root: Path | str, work: Path | str) -> None:
        self.root = Path(root)
        self.work = Path(work)
        self._live: dict[int, Instance] = {}
        self._live_lock = threading.Lock()
        self._seq = 0
        self.prepared: Prepared | None = None

    def available(self) -> tuple[bool, str]:
        """Whether this backend can run here, and the reason (why not, or what it uses)."""
        return (True, "")

    def prepare(self, image: Any) -> Prepared:
        """Build the artifacts for `image` once and report their disk footprint."""
        raise NotImplementedError

    def launch(self, spec: LaunchSpec) -> Instance:
        """Start one instance running spec.argv and wait for its ready marker."""
        raise NotImplementedError

    def limits(self) -> dict[str, int]:
        """Host or backend limits that cap how many instances can run at once (for density).

        Every backend runs host processes (probes, monitors, QEMU), so the host's own
        limits apply to all; VM backends add their guest memory.
        """
        return host_limits()

    @staticmethod
    def pid_max_limit() -> dict[str, int]:
        """The host's pid_max, which bounds container density (every container is processes)."""
        try:
            return {"pid_max": int(Path("/proc/sys/kernel/pid_max").read_text())}
        except (OSError, ValueError):
            return {}

    def info(self) -> dict[str, Any]:
        """What environment.json records about this backend."""
        return {"kind": self.kind}

    def cleanup(self) -> None:
        """Destroy every live instance and release what prepare() made for this run."""
        self.destroy_all()

    # registry -----------------------------------------------------------

    def next_name(self, prefix: str = "vlb") -> str:
        """A unique instance name for this run and backend (pid + counter: safe for parallel runs).

        The harness PID is the third-from-last dash-separated field, so leftovers of a run can be found.
        """
        with self._live_lock:
            self._seq += 1
            short = {"qemu-direct": "qd", "container": "ct", "vm-micro": "vm", "vm-full": "vmf"}.get(self.name, self.name)
            return f"{prefix}-{short}-{os.getpid()}-{self._seq}"

    def _track(self, inst: InstanceT) -> InstanceT:
        with self._live_lock:
            self._live[id(inst)] = inst
        return inst

    def _forget(self, inst: Instance) -> None:
        with self._live_lock:
            self._live.pop(id(inst), None)

    def live(self) -> list[Instance]:
        """The instances launched and not yet destroyed."""
        with self._live_lock:
            return list(self._live.values())

    def destroy_all(self) -> list[str]:
        """Destroy every live instance; returns the errors met (it never stops at the first)."""
        errors = []
        for inst in self.live():
            try:
                inst.destroy()
            except Exception as exc:  # noqa: BLE001 - keep cleaning the others
                errors.append(f"{inst!r}: {exc}")
        return errors


# ------------------------------------------------------------- shared helpers


def host_limits() -> dict[str, int]:
    """pid_max, threads-max and this process's open-file limits: what can stop density besides memory."""
    import resource

    out = Backend.pid_max_limit()
    try:
        out["threads_max"] = int(Path("/proc/sys/kernel/threads-max").read_text())
    except (OSError, ValueError):
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out["nofile_soft"] = int(soft)
    if hard != resource.RLIM_INFINITY:
        out["nofile_hard"] = int(hard)
    return out


def wait_marker(stream: Any, marker: bytes, timeout: float, what: str, proc: subprocess.Popen | None = None) -> float:
    """Read `stream` (a pipe fd or file object) until `marker`; return the host time.time() it was seen.

    Reads with os.read on the raw fd and a select() deadline, so the timestamp is taken
    right after the bytes arrive. Raises ReadyTimeout with what was read so far.
    """
    import select

    fd = stream if isinstance(stream, int) else stream.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ReadyTimeout(f"{what} printed no {marker.decode()} within {timeout:.0f}s (got {buf[-200:]!r})")
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not r:
            if proc is not None and proc.poll() is not None:
                raise ReadyTimeout(f"{what} exited with {proc.returncode} before {marker.decode()} (got {buf[-200:]!r})")
            continue
        chunk = os.read(fd, 65536)
        if chunk:
            buf += chunk
            if marker in buf:
                return time.time()
        else:
            raise ReadyTimeout(f"{what} closed its output before {marker.decode()} (got {buf[-200:]!r})")


def run_cmd(argv: list[str], timeout: float, **kw: Any) -> subprocess.CompletedProcess:
    """subprocess.run without its polling wait: a timer kills the child at the deadline instead.

    `subprocess.run(timeout=...)` waits by polling with sleeps of up to 50 ms, which would
    add up to 50 ms to a measured step; here the wait is a blocking waitpid.
    """
    kw.setdefault("start_new_session", True)
    if kw.pop("capture_output", False):
        kw["stdout"] = subprocess.PIPE
        kw["stderr"] = subprocess.PIPE
    proc = subprocess.Popen(argv, **kw)
    timer = threading.Timer(timeout, _kill_quietly, args=(proc,))
    timer.daemon = True
    timer.start()
    try:
        out, err = proc.communicate()
    finally:
        timer.cancel()
    if proc.returncode == -signal.SIGKILL and not timer.is_alive() and timer.finished.is_set():
        raise subprocess.TimeoutExpired(argv, timeout, out, err)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _kill_quietly(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def kill_process_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGKILL a child started with start_new_session=True, and its whole group; reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def pss_bytes(pids: list[int]) -> int:
    """Sum of the proportional set size (smaps_rollup Pss) of `pids`; vanished processes count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            continue
    return total


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (from /proc/*/stat), for PSS accounting."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class MarkerWatcher:
    """Watch a pipe for the ready marker in a thread, so the host time is taken when the bytes arrive.

    Used where the marker can arrive while the launcher is still busy (runc start, podman run).
    """

    def __init__(self, fd: int, marker: bytes, timeout: float, what: str) -> None:
        self.fd = fd
        self.seen: float | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(marker, timeout, what), daemon=True)
        self._thread.start()

    def _run(self, marker: bytes, timeout: float, what: str) -> None:
        try:
            self.seen = wait_marker(self.fd, marker, timeout, what)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self.error = exc

    def result(self, timeout: float) -> float:
        """The host time the marker was seen; raises what the watcher met."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise ReadyTimeout(f"no ready marker within {timeout:.0f}s")
        if self.error is not None:
            raise self.error
        assert self.seen is not None
        return self.seen
