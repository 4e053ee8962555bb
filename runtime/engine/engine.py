"""The Engine: create, start, stop, remove and inspect containers, each watched by a vl-monitor.

Every verb follows the same steps: resolve the name, take the container's lock, refresh the
state from what is true on the host (the monitor's lock, its `exit` file, the init's pid and
start time), check the state machine allows the verb, act, then save the record atomically.

    eng = Engine(root)
    c = eng.create(ContainerSpec(image="busybox", cmd=["true"], network="none"))
    eng.start(c.id); code = eng.wait(c.id); eng.remove(c.id)
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from runtime.engine import overlay
from runtime.engine import spec as specmod
from runtime.engine.errors import (
    EngineError,
    ImageUnavailable,
    InvalidArgument,
    InvalidState,
    NameConflict,
    NoSuchContainer,
    RuntimeFailure,
)
from runtime.engine.names import new_id, random_name, validate_name
from runtime.engine.records import ContainerStore, age
from runtime.engine.runtimes import default_runtime
from runtime.engine.spec import ContainerSpec
from runtime.engine.state import Status
from runtime.image import fsutil
from runtime.image.values import Value

TYPE_CHECKING = False  # importing typing costs more than it is worth here; mypy treats this name as true
if TYPE_CHECKING:
    from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


class ExecResult(Value):
    """What `exec` returns: the exit code and the captured output."""

    __slots__ = ("exit_code", "stdout", "stderr")

    def __init__(self, exit_code: int, stdout: bytes, stderr: bytes) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


class Container(Value):
    """A container as `list()` and `create()` return it (a snapshot of its record)."""

    __slots__ = ("id", "name", "image", "status", "record")

    def __init__(self, id: str, name: str, image: str, status: str, record: dict[str, Any]) -> None:
        self.id = id
        self.name = name
        self.image = image
        self.status = status
        self.record = record

    @property
    def short_id(self) -> str:
        """The first 12 hex digits, as docker shows them."""
        return self.id[:12]


def iso(t: float | None) -> str:
    """A float timestamp as docker's RFC 3339 with nanoseconds (or the zero time)."""
    if not t:
        return ZERO_TIME
    secs = int(t)
    frac = f"{t - secs:.9f}"[2:]
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac}Z"


def _pid_start(pid: int) -> int | None:
    """The start time (clock ticks since boot) of `pid`, or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def monitor_alive(cdir: Path) -> bool:
    """True while the container's monitor runs (it holds an exclusive flock on monitor.lock)."""
    try:
        fd = os.open(cdir / "monitor.lock", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def read_exit(cdir: Path) -> dict[str, Any] | None:
    """The monitor's last `exit` record: code, signal, at, restarting."""
    try:
        return json.loads((cdir / "exit").read_bytes())
    except (FileNotFoundError, ValueError):
        return None


class Engine:
    """Containers under one store root."""

    def __init__(self, root: str | os.PathLike, runtime: str | None = None, image_store: Any = None):
        self.root = Path(root).absolute()
        self.store = ContainerStore(self.root)
        self.runtime_name = runtime
        self._images = image_store
        self._runtimes: dict[str, Any] = {}

    # ---------------------------------------------------------------- helpers

    @property
    def images(self) -> Any:
        """The image store (runtime.image), opened on first use."""
        if self._images is None:
            try:
                from runtime.image.store import ImageStore
            except ImportError as exc:
                raise ImageUnavailable(f"the image store is not available: {exc}") from None
            self._images = ImageStore(self.root / "image")
        return self._images

    def runtime_for(self, rec: dict[str, Any] | None = None) -> Any:
        """The OCI runtime driver of a container (its own --runtime, else the engine's)."""
        from runtime.engine.runtimes import open_runtime

        name = (rec or {}).get("Runtime") or self.runtime_name
        key = name or ""
        if key not in self._runtimes:
            state_root = self.root / "runtime"
            state_root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._runtimes[key] = open_runtime(name, state_root)
        return self._runtimes[key]

    def _dir(self, cid: str) -> Path:
        return self.store.path(cid)

    def resolve(self, ref: str) -> str:
        """The full ID of a container name, ID or ID prefix."""
        return self.store.resolve(ref)

    def record(self, ref: str) -> dict[str, Any]:
        """The container's record with its state refreshed from the host."""
        cid = self.resolve(ref)
        rec = self.store.load(cid)
        self._refresh(rec)
        return rec

    # ---------------------------------------------------------------- state

    def _refresh(self, rec: dict[str, Any]) -> bool:
        """Bring rec["State"] in line with the host; True if the container has exited since."""
        st = rec["State"]
        if st["Status"] == Status.CREATED and not rec.get("Finalized"):
            return self._recover_start(rec)
        if st["Status"] not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
            return False
        cdir = self._dir(rec["Id"])
        ex = read_exit(cdir)
        # the exit file is removed at each start, so only a restart can leave an older one
        fresh_exit = ex is not None and ex.get("at", 0) >= (st.get("LaunchedAtTs") or 0)
        alive = monitor_alive(cdir)
        if alive and fresh_exit and ex and not ex.get("restarting"):
            # It recorded a final exit and is ending (it tells the attached clients first): wait the
            # moment that takes. Taken for running, a `run --rm` CLI here right after the exit frame
            # would SIGKILL an exited container and poll for its monitor.
            alive = not self._wait_monitor(cdir, 0.5, delay=0.0002)
        if alive:
            if fresh_exit and ex and ex.get("restarting"):
                st["Status"] = Status.RESTARTING
                st["Restarting"] = True
            elif st["Status"] == Status.RESTARTING:
                st["Status"], st["Restarting"] = Status.RUNNING, False
                self._adopt_restarted(rec)
            return False
        if fresh_exit and ex and not ex.get("restarting"):
            self._mark_exited(rec, ex["code"], ex["at"])
            return True
        pid = st.get("Pid") or 0
        if pid and _pid_start(pid) == st.get("PidStart"):
            st["Error"] = "the monitor died; the container runs unmonitored"
            return False
        self._mark_exited(rec, 255, time.time(), "the monitor died; the exit code is unknown")
        rec["Crashed"] = True  # _finalize then has the network collect what the crash left
        return True

    def _recover_start(self, rec: dict[str, Any]) -> bool:
        """Undo a start whose CLI was killed (created, not finalized, lock free); True if it was undone.

        Its monitor and init may live on (the init waiting for a `start` that never comes): they
        are killed and everything the start made on the host is released, as after a failed start.
        """
        cid = rec["Id"]
        cdir = self._dir(cid)
        fd = None
        if cid not in self.store.held.values():
            fd = self.store.try_lock(cdir, stale_after=float("inf"))
            if fd is None:
                return False  # a start is under way
        try:
            if fd is not None:  # what we read may predate the dead start's last save
                with contextlib.suppress(NoSuchContainer):
                    rec.update(self.store.load(cid))
                if rec["State"]["Status"] != Status.CREATED or rec.get("Finalized"):
                    return False
            (cdir / "stop-requested").touch()
            with contextlib.suppress(EngineError):
                self.runtime_for(rec).kill(cid, signal.SIGKILL, all=True)
            self._wait_monitor(cdir, 5.0)
            self._mark_exited(rec, 128, time.time(), "the start was interrupted (its CLI was killed)")
            self._finalize(rec)
            from runtime.engine import network

            network.gc(self, cid)
            self.store.save(rec)
            return True
        finally:
            if fd is not None and fd >= 0:
                os.close(fd)

    def _adopt_restarted(self, rec: dict[str, Any]) -> None:
        """Read the pid the restart hook wrote, after a restart by policy."""
        try:
            info = json.loads((self._dir(rec["Id"]) / "restarted").read_text())
        except (FileNotFoundError, ValueError):
            return
        rec["State"].update(Pid=info["pid"], PidStart=_pid_start(info["pid"]), StartedAtTs=info["at"],
                            LaunchedAtTs=info["at"])
        rec["RestartCount"] = info.get("count", rec.get("RestartCount", 0))

    def _mark_exited(self, rec: dict[str, Any], code: int, at: float, error: str = "") -> None:
        st = rec["State"]
        st.update(Status=Status.EXITED, Running=False, Paused=False, Restarting=False, Pid=0,
                  ExitCode=int(code), FinishedAtTs=at, Error=error)

    def _finalize(self, rec: dict[str, Any], removing: bool = False) -> None:
        """Release what a stopped container holds on the host: runtime state, cgroup, mounts, netns."""
        from runtime.engine import network

        cid = rec["Id"]
        cdir = self._dir(cid)
        if rec.get("Finalized"):
            return
        if not removing:  # nobody reads OOMKilled of a container being removed
            from runtime.engine import stats

            if stats.oom_killed(rec["CgroupsPath"], cid):
                rec["State"]["OOMKilled"] = True
        with contextlib.suppress(EngineError):
            self.runtime_for(rec).delete(cid, force=True)
        _drop_cgroup(rec)
        network.teardown(self, rec)
        if rec.pop("Crashed", False):
            network.gc(self, cid)
        overlay.unmount(cdir / "merged")
        rec["Finalized"] = True

    def _settle(self, cid: str) -> dict[str, Any]:
        """Load, refresh and, if it exited, finalize and save (caller holds the lock)."""
        rec = self.store.load(cid)
        exited = self._refresh(rec)
        if rec["State"]["Status"] in (Status.EXITED, Status.CREATED) and not rec.get("Finalized"):
            if exited or rec["State"]["Status"] == Status.EXITED:
                self._finalize(rec)
                self.store.save(rec)
        return rec

    # ---------------------------------------------------------------- create

    def create(self, spec: ContainerSpec) -> Container:
        """Validate `spec`, resolve its image and write the record; nothing runs yet."""
        requested = time.time()
        norm = specmod.normalise(spec)
        if spec.runtime:
            self.runtime_for({"Runtime": spec.runtime})
        if norm["network"] not in ("none", "host"):
            from runtime.engine import network

            network.check_available(self, norm["network"])
        try:
            img = self.images.resolve(spec.image)
        except EngineError:
            raise
        except Exception as exc:  # the image package's own errors
            if type(exc).__name__ in ("ImageNotFound", "KeyError", "FileNotFoundError"):
                raise ImageUnavailable(f"unable to find image '{spec.image}' locally") from None
            raise ImageUnavailable(f"cannot use image {spec.image}: {exc}") from None
        icfg = (img.config or {}).get("config") or {}
        entrypoint = spec.entrypoint if spec.entrypoint is not None else (icfg.get("Entrypoint") or [])
        entrypoint = [a for a in entrypoint if a != ""] if spec.entrypoint is not None else list(entrypoint)
        if spec.cmd:
            cmd = list(spec.cmd)
        else:
            cmd = [] if spec.entrypoint is not None else list(icfg.get("Cmd") or [])
        args = list(entrypoint) + cmd
        if not args:
            raise InvalidArgument("no command specified")
        env = _merge_env(list(icfg.get("Env") or []), norm["env"])
        workdir = spec.workdir or icfg.get("WorkingDir") or "/"
        if not str(workdir).startswith("/") or os.path.normpath(workdir).startswith("/proc/self/fd"):
            raise InvalidArgument(f"invalid working directory {workdir!r} in the image")
        stop_signal = norm["stop_signal"]
        if stop_signal is None and icfg.get("StopSignal"):
            from runtime.engine import parse

            try:
                stop_signal = parse.signal_number(icfg["StopSignal"])
            except InvalidArgument:
                stop_signal = None  # image config is data: a bogus StopSignal falls back to SIGTERM
        image_volumes = [v for v in (icfg.get("Volumes") or {}) if isinstance(v, str)]

        cid = new_id()
        name = validate_name(spec.name) if spec.name else None
        with self.store.creating(cid) as cdir:  # held until the record exists: an unheld dir without one is a leftover
            return self._create_locked(cid, cdir, name, spec, img, norm, icfg, args, env, workdir, stop_signal,
                                       image_volumes, requested)

    def _create_locked(self, cid: str, cdir: Path, name: str | None, spec: ContainerSpec, img: Any,
                       norm: dict[str, Any], icfg: dict[str, Any], args: builtins.list[str],
                       env: builtins.list[str], workdir: str, stop_signal: int | None,
                       image_volumes: builtins.list[str], requested: float) -> Container:
        reserved = None
        try:
            if name:
                try:
                    self.store.reserve_name(name, cid)
                except NameConflict:
                    if not self._free_stale_name(name):
                        raise
                    self.store.reserve_name(name, cid)
                reserved = name
            else:
                for _ in range(50):
                    cand = random_name()
                    try:
                        self.store.reserve_name(cand, cid)
                        reserved = name = cand
                        break
                    except EngineError:
                        continue
                else:
                    raise EngineError("cannot pick a free random name")
            mounts = self._prepare_volumes(cid, norm["volumes"], image_volumes)
            for d in ("upper", "work", "merged"):
                (cdir / d).mkdir(mode=0o755)
            (cdir / "image").write_text(img.id)  # so the sweep can release the hold of a create killed here
            self._hold(img.id, cid)
            rec = {
                "Id": cid,
                "Name": name,
                "Created": requested,
                "Image": img.id,
                "ImageRef": spec.image,
                "Spec": spec.to_dict(),
                "Norm": norm,
                "Path": args[0],
                "Args": args[1:],
                "Env": env,
                "WorkingDir": workdir,
                "User": spec.user if spec.user is not None else (icfg.get("User") or ""),
                "Hostname": spec.hostname or (cid[:12] if norm["network"] != "host" else os.uname().nodename),
                "StopSignal": stop_signal or signal.SIGTERM,
                "StopTimeout": spec.stop_timeout,
                "Labels": {**(icfg.get("Labels") or {}), **norm["labels"]},
                "ExposedPorts": sorted((icfg.get("ExposedPorts") or {}).keys()),
                "Mounts": mounts,
                "Runtime": spec.runtime or self.runtime_name or default_runtime(),
                "CgroupsPath": f"/virtlab-{cid}",
                "RestartCount": 0,
                "AutoRemove": spec.auto_remove,
                "State": {"Status": Status.CREATED, "Running": False, "Paused": False, "Restarting": False,
                          "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                          "StartedAtTs": 0, "FinishedAtTs": 0},
                "Timings": {"requested": requested},
                "Finalized": True,
            }
            self.store.save(rec)
        except BaseException:
            if reserved:
                self.store.release_name(reserved, cid)
            self._release_anonymous(locals().get("mounts") or [])
            with contextlib.suppress(Exception):
                self.images.release(img.id, f"container:{cid}")
            with contextlib.suppress(EngineError):
                _rmtree(cdir)
            raise
        return Container(cid, name or "", spec.image, Status.CREATED, rec)

    def _hold(self, image_id: str, cid: str) -> None:
        """Pin the image for the container (`rmi` then refuses it); a failure fails the create."""
        try:
            self.images.hold(image_id, f"container:{cid}")
        except EngineError:
            raise
        except Exception as exc:  # the image package's own errors
            raise ImageUnavailable(f"cannot hold image {image_id[:19]} for container {cid[:12]}: {exc}") from exc

    def _prepare_volumes(self, cid: str, volumes: list[dict[str, Any]], image_volumes: list[str]) -> list[dict[str, Any]]:
        """Create named/anonymous volumes and check bind sources; returns the mount records."""
        from runtime.engine import parse
        from runtime.engine.volumes import VolumeStore

        vs = VolumeStore(self.root)
        mounts: list[dict[str, Any]] = []
        targets = {v["target"] for v in volumes}
        for path in image_volumes:
            try:
                iv = parse.volumes([path])[0]
            except InvalidArgument:
                continue  # the image's Volumes are data: an invalid one is ignored, never followed
            if iv.target not in targets:
                volumes = [*volumes, {"target": iv.target, "source": "", "kind": "volume", "read_only": False,
                                      "options": []}]
                targets.add(iv.target)
        try:
            for v in volumes:
                if v["kind"] == "bind":
                    src = v["source"]
                    if not os.path.exists(src):
                        os.makedirs(src, mode=0o755, exist_ok=True)  # docker's -v creates it
                    mounts.append({"Type": "bind", "Source": src, "Destination": v["target"], "RW": not v["read_only"]})
                else:
                    anonymous = not v["source"]
                    meta = vs.create(v["source"] or None, anonymous=anonymous)
                    mounts.append({"Type": "volume", "Name": meta["Name"], "Source": meta["Mountpoint"],
                                   "Destination": v["target"], "RW": not v["read_only"], "Anonymous": anonymous})
        except BaseException:
            self._release_anonymous(mounts)
            raise
        return mounts

    def _release_anonymous(self, mounts: list[dict[str, Any]]) -> None:
        from runtime.engine.volumes import VolumeStore

        vs = VolumeStore(self.root)
        for m in mounts:
            if m.get("Anonymous"):
                with contextlib.suppress(EngineError, OSError):
                    vs.remove(m["Name"], force=True)

    # ---------------------------------------------------------------- start

    def start(self, ref: str, on_created: Any = None) -> Container:
        """Start a created or exited container; returns once the workload was exec'd.

        `on_created(rec)` runs after the monitor is up and before the workload starts (the CLI
        attaches there, so no output is missed).
        """
        cid = self.resolve(ref)
        with self.store.locked(cid):
            rec = self._settle(cid)
            status = rec["State"]["Status"]
            if status in (Status.RUNNING, Status.RESTARTING, Status.PAUSED):
                return self._container(rec)
            if not Status(status).can_start():
                raise InvalidState(rec["Name"], status, "start")
            self._start_locked(rec, on_created)
        return self._container(rec)

    def _start_locked(self, rec: dict[str, Any], on_created: Any = None) -> None:
        from runtime.engine import launcher

        cid = rec["Id"]
        cdir = self._dir(cid)
        t = rec["Timings"]
        t["start_begin"] = time.time()
        for f in ("exit", "stop-requested", "restarted"):
            with contextlib.suppress(FileNotFoundError):
                (cdir / f).unlink()
        rt = self.runtime_for(rec)
        rt.delete(cid, force=True) if not rec.get("Finalized") else None
        rec["Finalized"] = False
        rec["RestartCount"] = 0  # docker: a manual start or restart begins a new count (on-failure:N per run)
        self.store.save(rec)  # from here on the host holds our objects: a killed start is then recovered
        try:
            launcher.prepare_bundle(self, rec)
            rt.warm()
            pid, t_create = launcher.launch(self, rec, rt)
            rec["Timings"].update(t_create)
            rec["State"].update(Status=Status.RUNNING, Running=True, Pid=pid, PidStart=_pid_start(pid),
                                StartedAtTs=time.time(), LaunchedAtTs=t["start_begin"], ExitCode=0, Error="",
                                OOMKilled=False, Dead=False)
            self.store.save(rec)
            if on_created:
                on_created(rec)
            rt.start(cid)
            t["runtime_start_end"] = time.time()
            if not monitor_alive(cdir) and read_exit(cdir) is None:
                # it died after saying ready: nobody would read the workload's output or record its exit
                raise RuntimeFailure(f"the monitor of container {rec['Name']} died during start")
            rec["State"]["StartedAtTs"] = t["runtime_start_end"]
        except BaseException as exc:
            if isinstance(exc, EngineError):
                rec["State"]["Error"] = str(exc)
            self._abort_start(rec)
            raise
        self.store.save(rec)

    def _abort_start(self, rec: dict[str, Any]) -> None:
        """Undo a start that failed half-way: stop the monitor's container, release host resources."""
        cid = rec["Id"]
        cdir = self._dir(cid)
        (cdir / "stop-requested").touch()
        with contextlib.suppress(EngineError):
            self.runtime_for(rec).kill(cid, signal.SIGKILL, all=True)
        self._wait_monitor(cdir, 5.0)
        ex = read_exit(cdir)
        self._mark_exited(rec, ex["code"] if ex else 128, time.time(), rec["State"].get("Error", ""))
        rec["Finalized"] = False
        self._finalize(rec)
        self.store.save(rec)

    def _wait_monitor(self, cdir: Path, timeout: float | None, delay: float = 0.002) -> bool:
        """Wait until the monitor is gone; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while monitor_alive(cdir):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        return True

    def _container(self, rec: dict[str, Any]) -> Container:
        return Container(rec["Id"], rec["Name"], rec["ImageRef"], rec["State"]["Status"], rec)

    # ---------------------------------------------------------------- run-time verbs

    def wait(self, ref: str, timeout: float | None = None) -> int:
        """Block until the container stops (its monitor exits); returns the exit code."""
        cid = self.resolve(ref)
        rec = self.store.load(cid)
        cdir = self._dir(cid)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                rec = self.store.load(cid)
            except NoSuchContainer:  # removed meanwhile (--rm): the last record read is the answer
                break
            self._refresh(rec)
            if rec["State"]["Status"] in (Status.EXITED, Status.CREATED):
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise EngineError(f"timed out waiting for container {rec['Name']}")
            if not (cdir / "record.json").exists():
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        with contextlib.suppress(NoSuchContainer, FileNotFoundError), self.store.locked(cid):
            rec = self._settle(cid)
        return int(rec["State"]["ExitCode"])

    def wait_output(self, ref: str, marker: bytes | str, timeout: float = 30.0) -> float:
        """Host time (time.time()) at which the monitor read the first log line containing `marker`."""
        from runtime.engine.logs import follow_lines

        cid = self.resolve(ref)
        m = marker.decode() if isinstance(marker, bytes) else marker
        deadline = time.monotonic() + timeout
        for entry in follow_lines(self._dir(cid), lambda: self._alive(cid), deadline):
            if m in entry.text:
                return entry.ts
        raise EngineError(f"container {cid[:12]} did not print {m!r} within {timeout:g}s")

    def _alive(self, cid: str) -> bool:
        return monitor_alive(self._dir(cid))

    def stop(self, ref: str, timeout: float | None = None, sig: int | None = None) -> str:
        """Send the stop signal, then SIGKILL after `timeout` seconds (default: the container's, else 10)."""
        cid = self.resolve(ref)
        with self.store.locked(cid):
            rec = self._settle(cid)
            self._stop_locked(rec, timeout, sig)
        return rec["Name"]

    def _stop_locked(self, rec: dict[str, Any], timeout: float | None, sig: int | None = None) -> None:
        cid = rec["Id"]
        cdir = self._dir(cid)
        st = rec["State"]
        if st["Status"] not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
            return
        (cdir / "stop-requested").touch()
        if timeout is None:
            timeout = float(rec["StopTimeout"]) if rec.get("StopTimeout") is not None else 10.0
        rt = self.runtime_for(rec)
        with contextlib.suppress(EngineError):
            rt.kill(cid, sig or rec.get("StopSignal") or signal.SIGTERM)
        if st["Status"] == Status.PAUSED:
            with contextlib.suppress(EngineError):
                rt.resume(cid)
        gone = self._wait_gone(rec, timeout)
        if not gone:
            with contextlib.suppress(EngineError):
                rt.kill(cid, signal.SIGKILL, all=True)
            if st["Status"] == Status.PAUSED:
                with contextlib.suppress(EngineError):
                    rt.resume(cid)
            self._wait_gone(rec, 10)
        self._refresh(rec)
        if rec["State"]["Status"] != Status.EXITED:
            self._mark_exited(rec, 137, time.time(), "")
        self._finalize(rec)
        self.store.save(rec)

    def _wait_gone(self, rec: dict[str, Any], timeout: float) -> bool:
        """Wait for the monitor to record the exit (or for an unmonitored init to vanish)."""
        cdir = self._dir(rec["Id"])
        if monitor_alive(cdir):
            return self._wait_monitor(cdir, timeout)
        pid, start = rec["State"].get("Pid") or 0, rec["State"].get("PidStart")
        deadline = time.monotonic() + timeout
        while pid and _pid_start(pid) == start:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def kill(self, ref: str, sig: int = signal.SIGKILL) -> str:
        """Send `sig` to the container's init."""
        cid = self.resolve(ref)
        with self.store.locked(cid):
            rec = self._settle(cid)
            if rec["State"]["Status"] not in (Status.RUNNING, Status.PAUSED):
                raise InvalidState(rec["Name"], rec["State"]["Status"], "kill", "it is not running")
            if sig in (signal.SIGKILL, rec.get("StopSignal") or signal.SIGTERM):
                # docker: a kill that ends the container is a manual stop, the restart policy stays out
                (self._dir(cid) / "stop-requested").touch()
            self.runtime_for(rec).kill(cid, sig)
        return rec["Name"]

    def restart(self, ref: str, timeout: float | None = None) -> str:
        """stop, then start."""
        cid = self.resolve(ref)
        with self.store.locked(cid):
            rec = self._settle(cid)
            self._stop_locked(rec, timeout)
            self._start_locked(rec)
        return rec["Name"]

    def pause(self, ref: str) -> str:
        """Freeze every process of a running container."""
        return self._pause(ref, True)

    def unpause(self, ref: str) -> str:
        """Thaw a paused container."""
        return self._pause(ref, False)

    def _pause(self, ref: str, pause: bool) -> str:
        cid = self.resolve(ref)
        with self.store.locked(cid):
            rec = self._settle(cid)
            status = Status(rec["State"]["Status"])
            if pause and not status.can_pause():
                raise InvalidState(rec["Name"], status, "pause", "it is not running")
            if not pause and not status.can_unpause():
                raise InvalidState(rec["Name"], status, "unpause", "it is not paused")
            rt = self.runtime_for(rec)
            rt.pause(cid) if pause else rt.resume(cid)
            rec["State"].update(Status=Status.PAUSED if pause else Status.RUNNING, Paused=pause)
            self.store.save(rec)
        return rec["Name"]

    def rename(self, ref: str, new_name: str) -> None:
        """Give a container a new name (refused if the name is taken)."""
        new_name = validate_name(new_name)
        cid = self.resolve(ref)
        with self.store.locked(cid):
            rec = self.store.load(cid)
            if rec["Name"] == new_name:
                raise InvalidArgument(f"renaming a container with the same name as its current name: {new_name}")
            self.store.reserve_name(new_name, cid)
            old = rec["Name"]
            rec["Name"] = new_name
            self.store.save(rec)
            self.store.release_name(old, cid)

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        """Delete a container: runtime state, cgroup, mounts, netns, upper dir, record, name."""
        cid = self.resolve(ref)
        with self.store.locked(cid):
            rec = self.store.load(cid)
            exited = self._refresh(rec)
            if exited:
                rec["Finalized"] = False
            status = rec["State"]["Status"]
            if status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
                if not force:
                    raise InvalidState(rec["Name"], status, "remove",
                                       "stop the container before removing or force remove")
                cdir = self._dir(cid)
                (cdir / "stop-requested").touch()
                rt = self.runtime_for(rec)
                with contextlib.suppress(EngineError):
                    rt.kill(cid, signal.SIGKILL, all=True)
                if status == Status.PAUSED:
                    with contextlib.suppress(EngineError):
                        rt.resume(cid)
                self._wait_gone(rec, 10)
                self._refresh(rec)
                if rec["State"]["Status"] != Status.EXITED:
                    self._mark_exited(rec, 137, time.time())
            rec["Finalized"] = rec.get("Finalized") and rec["State"]["Status"] != Status.EXITED
            self._finalize(rec, removing=True)
            self._delete_record(rec, volumes)
        return rec["Name"]

    def _delete_record(self, rec: dict[str, Any], volumes: bool) -> None:
        cid = rec["Id"]
        cdir = self._dir(cid)
        try:
            self.images.release(rec["Image"], f"container:{cid}")
        except Exception as exc:  # the image package's own errors: keep the container, say why
            raise EngineError(f"cannot release image {rec['Image'][:19]} held by container {rec['Name']}: "
                              f"{exc}") from exc
        if volumes:
            self._release_anonymous(rec.get("Mounts") or [])
        # One rename takes the whole directory out of the store, so a crash half-way leaves no
        # half-listed container; what is left in scratch is swept (the moved lock is still ours).
        self.store.ensure()
        trash = self.store.scratch / f"rm-{cid}"
        overlay.unmount(cdir / "merged")
        _rmtree(trash)
        os.rename(cdir, trash)
        self.store.release_name(rec["Name"], cid)
        _rmtree(trash)

    # ---------------------------------------------------------------- leftovers of killed CLIs

    def sweep(self) -> builtins.list[str]:
        """Remove what CLIs killed half-way left: half-made containers, half-deleted ones, commit tars."""
        removed = []
        for cid in self.store.orphans():
            if self._remove_orphan(cid):
                removed.append(cid)
        try:
            entries = os.listdir(self.store.scratch)
        except FileNotFoundError:
            return removed
        for n in entries:
            path = self.store.scratch / n
            if n.startswith(("rm-", "new-")):
                if n.startswith("new-") and age(path) < 30:
                    continue  # its create may be between mkdir and flock: a killed one is old
                fd = self.store.try_lock(path)
                if fd is not None:
                    try:
                        _rmtree(path)
                    finally:
                        if fd >= 0:
                            os.close(fd)
                    removed.append(n)
            elif n.startswith("commit-"):
                if _unlink_unlocked(path):
                    removed.append(n)
        return removed

    def _remove_orphan(self, cid: str) -> bool:
        """Delete the directory of a create killed before its record (unless its create still runs)."""
        cdir = self._dir(cid)
        fd = self.store.try_lock(cdir)
        if fd is None:
            return False
        try:
            if (cdir / "record.json").exists():
                return False  # it was finished after all
            with contextlib.suppress(FileNotFoundError):
                image_id = (cdir / "image").read_text().strip()
                with contextlib.suppress(Exception):  # the hold may never have been made
                    self.images.release(image_id, f"container:{cid}")
            with self._names_locked():
                for n in self.store.names_of(cid):
                    self.store.release_name(n, cid)
            _rmtree(cdir)
            return True
        finally:
            if fd >= 0:
                os.close(fd)

    @contextlib.contextmanager
    def _names_locked(self) -> Iterator[None]:
        fd = os.open(self.store.names, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _free_stale_name(self, name: str) -> bool:
        """Free `name` if its owner is gone or a leftover (a killed create or rm); True if it was."""
        owner = self.store.name_owner(name)
        if owner is None:
            return True
        if (self._dir(owner) / "record.json").exists():
            return False
        if self._dir(owner).exists():
            return self._remove_orphan(owner)
        # no directory: an rm killed between its rename and the name's release (a create makes
        # its directory before it reserves a name, so this is never a create in progress)
        with self._names_locked():
            self.store.release_name(name, owner)
        return True

    # ---------------------------------------------------------------- queries

    def list(self, all: bool = False) -> builtins.list[Container]:
        """Containers (running only unless `all`), newest first."""
        if all:
            self.sweep()
        out = []
        for cid in self.store.ids():
            try:
                rec = self.store.load(cid)
            except NoSuchContainer:
                continue
            self._refresh(rec)
            if all or rec["State"]["Status"] in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
                out.append(self._container(rec))
        out.sort(key=lambda c: c.record["Created"], reverse=True)
        return out

    def inspect(self, ref: str) -> dict[str, Any]:
        """docker inspect's object for one container."""
        from runtime.engine.inspect import container_json

        rec = self.record(ref)
        return container_json(self, rec)

    def disk_usage(self, ref: str) -> int:
        """Bytes in the container's upper dir (what it wrote on top of the image)."""
        cid = self.resolve(ref)
        return _du(self._dir(cid) / "upper")

    def stats(self, ref: str) -> dict[str, int]:
        """cpu_ns, mem_bytes, mem_limit, pids, net_rx, net_tx, blk_read, blk_write."""
        from runtime.engine import stats

        rec = self.record(ref)
        if rec["State"]["Status"] not in (Status.RUNNING, Status.PAUSED):
            return dict.fromkeys(("cpu_ns", "mem_bytes", "mem_limit", "pids", "net_rx", "net_tx",
                                  "blk_read", "blk_write"), 0)
        s: dict[str, int] = stats.cgroup_stats(rec["CgroupsPath"], rec["Id"])
        s["net_rx"], s["net_tx"] = stats.net_stats(rec["State"]["Pid"])
        return s

    def pids(self, ref: str) -> builtins.list[int]:
        """Host pids of the container's processes."""
        rec = self.record(ref)
        if rec["State"]["Status"] not in (Status.RUNNING, Status.PAUSED):
            raise InvalidState(rec["Name"], rec["State"]["Status"], "list processes of", "it is not running")
        return self.runtime_for(rec).ps(rec["Id"])

    def logs(self, ref: str, follow: bool = False, since: float | None = None, until: float | None = None,
             tail: int | None = None) -> Iterator[Any]:
        """Log entries (ts, stream, text, partial) of the container, optionally following."""
        from runtime.engine import logs

        cid = self.resolve(ref)
        return logs.read(self._dir(cid), follow=follow, since=since, until=until, tail=tail,
                         alive=lambda: self._alive(cid))

    def exec(self, ref: str, argv: builtins.list[str], env: dict[str, str] | builtins.list[str] | None = None,
             user: str | None = None, workdir: str | None = None, tty: bool = False) -> ExecResult:
        """Run `argv` in the running container (its namespaces and cgroup) and capture its output."""
        from runtime.engine import execs

        return execs.run_captured(self, ref, argv, env=env, user=user, workdir=workdir, tty=tty)

    def update(self, ref: str, **changes: Any) -> str:
        """Change resource limits (live if running) and the restart policy; all or nothing."""
        from runtime.engine import updates

        return updates.update(self, ref, **changes)


def _drop_cgroup(rec: dict[str, Any]) -> None:
    """Remove the container's cgroup if the runtime left it (a create that failed half-way)."""
    path = rec.get("CgroupsPath") or ""
    if not path.startswith("/virtlab-"):
        return
    if not any(os.path.isdir(f"{base}{path}") for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified",
                                                           "/sys/fs/cgroup/memory", "/sys/fs/cgroup")):
        return
    try:
        from runtime.oci.cgroups import open_manager

        open_manager(path, rec["Id"]).destroy()
    except Exception:  # noqa: BLE001 - best effort: a busy cgroup stays, and the leak check reports it
        pass


def _unlink_unlocked(path: Path) -> bool:
    """Unlink a scratch file unless a live process holds its flock; True if it was removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return True
    finally:
        os.close(fd)


def _merge_env(image_env: list[str], extra: list[str]) -> list[str]:
    env: dict[str, str] = {}
    for item in [*image_env, *extra]:
        k, _, v = item.partition("=")
        env[k] = v
    env.setdefault("PATH", specmod.DEFAULT_PATH)
    return [f"{k}={v}" for k, v in env.items()]


def _du(path: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, n))
                total += st.st_blocks * 512 if n in filenames else 0
    return total


def _rmtree(path: Path) -> None:
    """Remove a container dir; an overlay still mounted there is detached first."""
    merged = path / "merged"
    if overlay.is_mounted(merged):
        overlay.unmount(merged)
    try:
        fsutil.rmtree(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise EngineError(f"cannot remove {path}: {exc.strerror}") from None


