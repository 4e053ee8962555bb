"""What the v1 and v2 managers share: apply/update with rollback, process listing,
signalling every process, the cgroup2 freezer, the common stats, and removal.

A manager turns linux.resources into a list of ``Write`` steps first (``plan``), then
runs them. ``update`` reads the current value of each single-value file before writing it
and writes the old values back if a later step fails, so an update applies whole or not at all.
Each driver supplies only what differs: its checks (``_before_writes``), its plan, what
follows the writes (``_after_writes``) and the counters only it can read (``_read_stats``).
"""

from __future__ import annotations

import _signal as signal  # the C module: the signal package imports enum (~3 ms per start)
import os
import time

from runtime.oci.cgroups import files, hierarchy
from runtime.oci.cgroups.errors import CgroupError, CgroupUnsupported, FreezeTimeout
from runtime.oci.cgroups.resources import HostFacts, validate

UNLIMITED = 2**62  # v1 reports "no limit" as 9223372036854771712 (LONG_MAX rounded to a page)
FREEZE_TIMEOUT = 5.0
# The keys of ``stats()``; a controller the cgroup lacks leaves its keys at 0.
STAT_KEYS = ("cpu_ns", "cpu_user_ns", "cpu_system_ns", "mem_bytes", "mem_limit", "mem_max_usage", "oom_kills",
             "pids", "pids_limit", "blk_read", "blk_write")


class Write:
    """One planned write: ``value`` into ``file`` of the cgroup of ``controller``.

    ``optional`` steps are skipped, with a note, when the kernel lacks the file or rejects
    it as unsupported (kernel memory limits on kernel 6, blkio.leaf_weight without CFQ).
    ``multi`` files hold one line per key (devices, per-device limits) and are not rolled back.
    """

    __slots__ = ("controller", "file", "value", "optional", "multi")

    def __init__(self, controller: str, file: str, value: str, optional: bool = False, multi: bool = False):
        self.controller = controller
        self.file = file
        self.value = value
        self.optional = optional
        self.multi = multi

    def __repr__(self) -> str:
        return f"Write({self.controller!r}, {self.file!r}, {self.value!r})"


class CgroupManager:
    """What every cgroup manager offers (V1Manager, V2Manager), and the behaviour they share.

    ``paths`` maps controller -> directory ("" for the cgroup2 one); ``mode`` is "v1",
    "hybrid" or "v2"; ``notes`` lists requested settings that were ignored, and why.
    """

    mode = ""
    schema = ""  # the rule set ``validate`` checks resources against: "v1" (also in hybrid mode) or "v2"

    def __init__(self, paths: dict[str, str], root: str = hierarchy.DEFAULT_ROOT, host: HostFacts | None = None):
        self.paths = dict(paths)
        self.root = root
        self._host = host
        self.notes: list[str] = []

    # ---------------------------------------------------------------- helpers

    @property
    def host(self) -> HostFacts:
        """Facts about the host (online CPUs, memory nodes, huge page sizes), read once."""
        if self._host is None:
            self._host = HostFacts.from_system()
        return self._host

    def _dirs(self) -> list[str]:
        """Every distinct cgroup directory of this container (controllers may share one)."""
        return sorted(set(self.paths.values()))

    def _file(self, controller: str, name: str) -> str | None:
        """The control file ``name`` of ``controller``'s directory, None without that controller."""
        d = self.paths.get(controller)
        return os.path.join(d, name) if d else None

    def _path(self, controller: str, name: str) -> str:
        """Like ``_file`` for a controller the caller knows is there."""
        path = self._file(controller, name)
        if path is None:
            raise CgroupError(f"no {controller} controller for this cgroup ({name})")
        return path

    def _note(self, message: str) -> None:
        files.debug("%s", message)
        self.notes.append(message)

    def _run(self, steps: list[Write], rollback: bool) -> None:
        """Run planned writes; on failure restore what was already changed when ``rollback``."""
        undo: list[tuple[str, str]] = []
        try:
            for step in steps:
                path = self._file(step.controller, step.file)
                if path is None:
                    self._note(f"{step.controller} controller not available: {step.file}={step.value} ignored")
                    continue
                if step.optional and not os.path.exists(path):
                    self._note(f"{path} does not exist on this kernel: {step.value} ignored")
                    continue
                old = None
                if rollback and not step.multi:
                    try:
                        old = _restorable(path)
                    except CgroupError:
                        pass
                try:
                    files.write(path, step.value)
                    if old is not None:
                        undo.append((path, old))  # a write that failed changed nothing
                except CgroupError as exc:
                    if step.optional and files.is_errno(
                        exc, files.EINVAL, files.EOPNOTSUPP, files.ENOTSUP, files.ENOENT
                    ):
                        self._note(f"{exc} (ignored: not supported by this kernel)")
                        continue
                    raise
        except CgroupError as failure:
            if rollback:
                for path, old in reversed(undo):
                    try:
                        files.write(path, old)
                    except CgroupError as exc:
                        failure.add_note(f"could not restore the previous value {old!r}: {exc}")
            raise

    # ---------------------------------------------------------------- processes

    def _procs_dir(self) -> str:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every process in the cgroup and its child cgroups."""
        top = self._procs_dir()
        if not os.path.isdir(top):
            return []
        out: set[int] = set()
        for dirpath, _, _ in os.walk(top):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    out.update(int(x) for x in f.read().split())
            except (FileNotFoundError, ProcessLookupError):
                continue
            except OSError as exc:
                raise CgroupError(f"cannot list processes of cgroup {dirpath}: {exc.strerror}") from exc
        return sorted(out)

    def add(self, pid: int, skip: tuple[str, ...] = ()) -> None:
        """Move process ``pid`` into the cgroup in every hierarchy but ``skip`` (creating it if needed)."""
        self._ensure()
        for d in self._dirs():
            if d in skip:
                continue
            try:
                files.write(os.path.join(d, "cgroup.procs"), int(pid))
            except CgroupError as exc:
                code = getattr(exc, "errno", None)
                reason = os.strerror(code) if code else str(exc)
                raise CgroupError(f"cannot add process {pid} to cgroup {d}: {reason}") from exc

    def _ensure(self) -> bool:
        """Create what is missing of the cgroup; True when this call created anything."""
        raise NotImplementedError

    def birth_dir(self) -> str | None:
        """Create the cgroup2 directory now and return it, or None without one.

        A process can then be born there (clone3 CLONE_INTO_CGROUP) instead of being moved in,
        which waits for an RCU grace period; ``apply`` creates and limits the rest afterwards.
        """
        return None

    def _create(self, resources: dict) -> bool:
        """Create the cgroup for ``resources`` (v2 enables the controllers they need too)."""
        return self._ensure()

    def apply(self, resources: dict | None) -> None:
        """Create the cgroup and write ``resources`` (OCI linux.resources); a cgroup made here is removed on failure."""
        resources = resources or {}
        validate(resources, self.host, self.schema)
        created = self._create(resources)
        try:
            self._before_writes(resources, update=False)
            self._run(self._plan(resources, update=False), rollback=False)
            self._after_writes(resources)
        except Exception:
            if created:
                try:
                    self.destroy()
                except CgroupError:
                    pass
            raise

    def update(self, resources: dict) -> None:
        """Change limits of a live cgroup; everything is checked first, and undone on a failed write."""
        resources = resources or {}
        validate(resources, self.host, self.schema)
        for d in self._dirs():
            if not os.path.isdir(d):
                raise CgroupError(f"cannot update cgroup {d}: it does not exist")
        self._before_writes(resources, update=True)
        self._run(self._plan(resources, update=True), rollback=True)
        self._after_writes(resources)

    def _before_writes(self, r: dict, update: bool) -> None:
        """The driver's checks against the live cgroup (and what must be in place first); raises to write nothing."""
        raise NotImplementedError

    def _plan(self, r: dict, update: bool) -> list[Write]:
        raise NotImplementedError

    def _after_writes(self, r: dict) -> None:
        """What the driver sets outside the planned writes (device rules, notes)."""

    def stats(self) -> dict:
        """Usage counters; see docs/cgroups.md for the keys. Missing controllers read as 0."""
        if not any(os.path.isdir(d) for d in self._dirs()):
            raise CgroupError(f"cannot read stats of cgroup {self._procs_dir()}: it does not exist")
        s = dict.fromkeys(STAT_KEYS, 0)
        self._read_stats(s)
        return s

    def _read_stats(self, s: dict) -> None:
        raise NotImplementedError

    def _pid_counts(self, s: dict, d: str | None) -> None:
        """pids/pids_limit from the pids controller's directory ``d``; without one, count the processes."""
        if d is None:
            s["pids"] = len(self.pids())
            return
        s["pids"] = files.read_int(os.path.join(d, "pids.current"))
        s["pids_limit"] = files.read_int(os.path.join(d, "pids.max"), max_as=0)

    def oom_killed(self) -> bool:
        """True when the kernel OOM-killed a process of this cgroup."""
        raise NotImplementedError

    def _kill_file(self) -> str | None:
        """cgroup.kill of the cgroup2 directory, when the kernel has it (5.14 and later)."""
        d = self.paths.get("")
        if d and os.path.exists(os.path.join(d, "cgroup.kill")):
            return os.path.join(d, "cgroup.kill")
        return None

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every process in the cgroup.

        SIGKILL goes through cgroup.kill where it exists (atomic, no fork race). Other
        signals are sent while the cgroup is frozen, so no child escapes between listing
        and signalling. A frozen container stays frozen, except after SIGKILL: it is thawed
        then, because a task frozen by the v1 freezer cannot die until it runs again.
        """
        kill_file = self._kill_file()
        if sig == signal.SIGKILL and kill_file:
            files.write(kill_file, "1")
            # A task frozen by the v1 freezer cannot die until it is thawed.
            try:
                if self.state() == "frozen":
                    self.thaw()
            except CgroupError:
                pass
            return
        was_frozen = False
        froze = False
        try:
            was_frozen = self.state() == "frozen"
            if not was_frozen:
                self.freeze()
                froze = True
        except CgroupError as exc:  # no freezer here: signal anyway
            files.debug("signalling without freezing: %s", exc)
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if froze or (was_frozen and sig == signal.SIGKILL):
                self.thaw()

    # ---------------------------------------------------------------- freezer

    def _freeze_dir(self, what: str) -> str:
        """The cgroup2 directory whose cgroup.freeze serves as the freezer (``what`` names the caller's aim)."""
        d = self.paths.get("")
        if d and os.path.exists(os.path.join(d, "cgroup.freeze")):
            return d
        raise CgroupUnsupported(f"cannot {what}: no freezer controller is mounted")

    def state(self) -> str:
        """ "frozen" or "thawed" (cgroup.freeze)."""
        return freeze_state(self._freeze_dir("read the freezer state"))

    def freeze(self, timeout: float = FREEZE_TIMEOUT) -> None:
        """Stop every process; returns when cgroup.events says frozen (thaws again on timeout)."""
        set_frozen(self._freeze_dir("freeze"), True, timeout)

    def thaw(self) -> None:
        """Let the processes run again."""
        set_frozen(self._freeze_dir("thaw"), False, FREEZE_TIMEOUT)

    # ---------------------------------------------------------------- removal

    def destroy(self) -> None:
        """Remove the cgroup directories (and empty parents virtlab made). Idempotent; kills nothing."""
        errors = []
        for d in self._dirs():
            if not hierarchy.under(d, self.root):
                errors.append(f"refusing to remove {d}: not under {self.root}")
                continue
            try:
                hierarchy.remove_tree(d, stop_at=self.root)
            except CgroupError as exc:
                errors.append(str(exc))
        if errors:
            raise CgroupError("; ".join(errors))


def _restorable(path: str) -> str:
    """The current value of a control file in the form it is written back."""
    if path.endswith("memory.oom_control"):  # reads as a table, written as 0 or 1
        return str(files.read_keyed(path).get("oom_kill_disable", 0))
    return files.read(path)


def plan_cpuset(controller: str, cpu: dict) -> list[Write]:
    """The cpuset.cpus and cpuset.mems writes for OCI ``cpu``."""
    return [Write(controller, f"cpuset.{key}", cpu[key]) for key in ("cpus", "mems") if cpu.get(key)]


def plan_pids(controller: str, pids: dict) -> list[Write]:
    """The pids.max write for OCI ``pids`` (a negative limit is "max")."""
    if pids.get("limit") is None:
        return []
    return [Write(controller, "pids.max", "max" if pids["limit"] < 0 else str(pids["limit"]))]


def plan_rdma(controller: str, rdma: dict) -> list[Write]:
    """One rdma.max line per device of OCI ``rdma``."""
    steps = []
    for dev, lim in rdma.items():
        parts = [dev]
        if lim.get("hcaHandles") is not None:
            parts.append(f"hca_handle={lim['hcaHandles']}")
        if lim.get("hcaObjects") is not None:
            parts.append(f"hca_object={lim['hcaObjects']}")
        steps.append(Write(controller, "rdma.max", " ".join(parts), multi=True))
    return steps


def cgroup2_cpu(s: dict, d: str) -> None:
    """cpu_ns, cpu_user_ns and cpu_system_ns from cpu.stat of the cgroup2 directory ``d`` (0 without it)."""
    path = os.path.join(d, "cpu.stat")
    cpu = files.read_keyed(path) if os.path.exists(path) else {}
    s["cpu_ns"] = cpu.get("usage_usec", 0) * 1000
    s["cpu_user_ns"] = cpu.get("user_usec", 0) * 1000
    s["cpu_system_ns"] = cpu.get("system_usec", 0) * 1000


def host_memory(default: int) -> int:
    """The host's memory in bytes, which docker stats shows for "no limit"; ``default`` when it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return default


def freeze_state(d: str) -> str:
    """ "frozen" when cgroup.freeze of ``d`` is 1, else "thawed"."""
    return "frozen" if files.read(os.path.join(d, "cgroup.freeze")) == "1" else "thawed"


def _events_frozen(d: str) -> bool | None:
    path = os.path.join(d, "cgroup.events")
    if not os.path.exists(path):
        return None
    return files.read_keyed(path).get("frozen") == 1


def set_frozen(d: str, frozen: bool, timeout: float) -> None:
    """Write cgroup.freeze of the cgroup2 directory ``d`` and wait until cgroup.events reports the new state.

    The kernel signals changes of cgroup.events with POLLPRI; on files that cannot be
    polled that way (a fake tree in tests) fall back to short sleeps.
    """
    files.write(os.path.join(d, "cgroup.freeze"), "1" if frozen else "0")
    events = os.path.join(d, "cgroup.events")
    if _events_frozen(d) in (None, frozen):
        return
    import select  # imported only when there is something to wait for

    deadline = time.monotonic() + timeout
    fd = os.open(events, os.O_RDONLY | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready = poller.poll(min(remaining, 0.05) * 1000)
            if _events_frozen(d) == frozen:
                return
            if not ready or not any(ev & select.POLLPRI for _, ev in ready):
                time.sleep(0.001)
    finally:
        os.close(fd)
    if frozen:
        files.write(os.path.join(d, "cgroup.freeze"), "0")
        raise FreezeTimeout(f"cannot freeze cgroup {d}: not frozen after {timeout:g}s")
    raise CgroupError(f"cannot thaw cgroup {d}: still frozen after {timeout:g}s")


def wait_until(predicate, timeout: float, what: str) -> bool:
    """Poll ``predicate`` with a growing delay until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            files.debug("timed out waiting for %s", what)
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
