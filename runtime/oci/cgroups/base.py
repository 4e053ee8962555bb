"""What the v1 and v2 managers share: planned writes with rollback, process listing,
signalling every process, and removal.

A manager turns linux.resources into a list of ``Write`` steps first (``plan``), then
runs them. ``update`` reads the current value of each single-value file before writing it
and writes the old values back if a later step fails, so an update applies whole or not at all.
"""

from __future__ import annotations

import _signal as signal  # the C module: the signal package imports enum (~3 ms per start)
import os
import time

from runtime.oci.cgroups import files, hierarchy
from runtime.oci.cgroups.errors import CgroupError
from runtime.oci.cgroups.resources import HostFacts

UNLIMITED = 2**62  # v1 reports "no limit" as 9223372036854771712 (LONG_MAX rounded to a page)


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

    def add(self, pid: int) -> None:
        """Move process ``pid`` into the cgroup in every hierarchy (creating it if needed)."""
        self._ensure()
        for d in self._dirs():
            try:
                files.write(os.path.join(d, "cgroup.procs"), int(pid))
            except CgroupError as exc:
                code = getattr(exc, "errno", None)
                reason = os.strerror(code) if code else str(exc)
                raise CgroupError(f"cannot add process {pid} to cgroup {d}: {reason}") from exc

    def _ensure(self) -> bool:
        raise NotImplementedError

    def apply(self, resources: dict | None) -> None:
        """Create the cgroup and write ``resources`` (OCI linux.resources)."""
        raise NotImplementedError

    def update(self, resources: dict) -> None:
        """Change the limits of a live cgroup: checked first, all or nothing."""
        raise NotImplementedError

    def stats(self) -> dict:
        """Usage counters (docs/cgroups.md lists the keys)."""
        raise NotImplementedError

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

    def state(self) -> str:
        """ "frozen" or "thawed"."""
        raise NotImplementedError

    def freeze(self) -> None:
        """Stop every process in the cgroup; returns once they are all stopped."""
        raise NotImplementedError

    def thaw(self) -> None:
        """Let the processes run again."""
        raise NotImplementedError

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
