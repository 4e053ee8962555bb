"""The container backend: virtlab's own engine (runtime.engine), the subject of the comparison.

Ready is the host time at which the engine's monitor read the marker from the
container's stdout (`Engine.wait_output`). Phases come from the engine's record
(State.Timings): `engine` (request to runtime create), `create`, `start`, and `exec`
(runtime start to the marker).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.backends.base import Backend, ExecResult, HostLink, Instance, LaunchSpec, Prepared, descendants
from bench.errors import LaunchError
from bench.image import dir_bytes


def _engine_available() -> str | None:
    try:
        import runtime.engine as engine_pkg

        engine_pkg.Engine  # noqa: B018 - the lazy attribute must resolve
        engine_pkg.ContainerSpec  # noqa: B018
    except Exception as exc:  # noqa: BLE001 - any failure means the engine is not usable yet
        return f"the engine (runtime.engine) is not importable: {exc}"
    return None


class ContainerInstance(Instance):
    """One container of virtlab's engine."""

    def __init__(self, backend: ContainerBackend, name: str) -> None:
        super().__init__(backend, name)
        self.backend: ContainerBackend = backend
        self.cid: str | None = None

    def _exec(self, argv: list[str], timeout: float) -> ExecResult:
        assert self.cid is not None
        r = self.backend.engine.exec(self.cid, argv)
        out, err = r.stdout, r.stderr
        return ExecResult(int(r.exit_code), out.decode(errors="replace") if isinstance(out, bytes) else out,
                          err.decode(errors="replace") if isinstance(err, bytes) else err)

    def stats(self) -> dict[str, Any]:
        """The engine's stats (cpu_ns, mem_bytes, pids ...)."""
        return dict(self.backend.engine.stats(self.cid)) if self.cid else {}

    def inspect(self) -> dict[str, Any]:
        """The engine's inspect document."""
        return self.backend.engine.inspect(self.cid) if self.cid else {}

    def host_pids(self) -> list[int]:
        """The container's processes, and its monitor process (it exists because of the container)."""
        if not self.cid:
            return []
        state = self.inspect().get("State", {})
        pids: set[int] = set()
        pid = int(state.get("Pid") or 0)
        if pid:
            pids.update(descendants(pid))
        mon = int(state.get("MonitorPid") or 0) or _find_monitor(self.cid)
        if mon:
            pids.add(mon)
        return sorted(pids)

    def disk_usage(self) -> int:
        """Bytes in the container's upper dir."""
        return int(self.backend.engine.disk_usage(self.cid)) if self.cid else 0

    def stop(self) -> None:
        """Stop with a short timeout."""
        if self.cid:
            self.backend.engine.stop(self.cid, timeout=2)

    def _destroy(self) -> None:
        # By name when create() never returned (an interrupt after the engine made the record).
        try:
            self.backend.engine.remove(self.cid or self.name, force=True)
        except Exception:
            if self.cid:
                raise


def _find_monitor(cid: str) -> int | None:
    """The monitor process of a container, found by its id on a command line (when inspect lacks it)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cid.encode() in cmd and b"monitor" in cmd:
            return int(entry)
    return None


class ContainerBackend(Backend):
    """virtlab's engine: overlay rootfs, its OCI runtime, a monitor per container."""

    name = "container"
    kind = "container"

    def __init__(self, root: Path | str, work: Path | str) -> None:
        super().__init__(root, work)
        self._engine = None
        self.image_ref: str | None = None

    @property
    def engine(self):
        """The Engine on this store root (created on first use)."""
        if self._engine is None:
            from runtime.engine import Engine

            self._engine = Engine(self.root)
        return self._engine

    def available(self) -> tuple[bool, str]:
        """The engine must be importable, and we must be root."""
        reason = _engine_available()
        if reason:
            return (False, reason)
        if os.geteuid() != 0:
            return (False, "needs root (namespaces, overlayfs, cgroups)")
        return (True, "virtlab engine (runtime.engine + runtime.oci)")

    def cleanup(self) -> None:
        """Destroy the live containers, then take down the default bridge if no container uses it.

        The engine keeps the default bridge between containers, as docker keeps docker0; a
        benchmark run leaves the host as it found it.
        """
        super().cleanup()
        if (Path(self.root) / "network").is_dir():
            from runtime.network import NetworkManager

            with NetworkManager(Path(self.root) / "network") as nm:
                nm.drop_idle_default_bridge()

    def info(self) -> dict[str, Any]:
        """How containers are run."""
        return {"kind": self.kind, "engine": "runtime.engine",
                "network": "none (loopback only, like the peers); the network workload: the engine's bridge network"}

    def prepare(self, image: Any) -> Prepared:
        """The engine uses the bench image straight from the store; shared bytes = the image's layers."""
        ok, reason = self.available()
        if not ok:
            raise LaunchError(f"container backend: {reason}")
        if image.source != "image-store":
            raise LaunchError("container backend: the bench image is not in the image store")
        self.image_ref = image.ref
        shared = image.size_bytes
        try:
            from runtime.image.store import ImageStore

            store = ImageStore(self.root / "image")
            img = store.resolve(image.ref)
            shared = sum(dir_bytes(d) for d in store.snapshot_dirs(img))
        except Exception:  # noqa: BLE001 - fall back to the flattened size
            pass
        self.prepared = Prepared(image=image.ref, digest=image.digest, shared_bytes=shared,
                                 parts={"layers": shared})
        return self.prepared

    def launch(self, spec: LaunchSpec) -> ContainerInstance:
        """create + start through the engine, then the monitor's timestamp of the marker."""
        from runtime.engine import ContainerSpec

        if self.image_ref is None:
            raise LaunchError("container backend: prepare() was not called")
        name = spec.name or self.next_name()
        inst = self._track(ContainerInstance(self, name))
        try:
            inst.requested = time.time()
            kwargs: dict[str, Any] = {"image": self.image_ref, "cmd": list(spec.argv), "name": name,
                                      "network": "bridge" if spec.network else "none"}
            if spec.env:
                kwargs["env"] = dict(spec.env)
            if spec.memory_mib:
                kwargs["memory"] = spec.memory_mib << 20
            try:
                c = self.engine.create(ContainerSpec(**kwargs))
            except TypeError:
                kwargs.pop("memory", None)
                c = self.engine.create(ContainerSpec(**kwargs))
            inst.cid = c.id
            inst.created = time.time()
            self.engine.start(c.id)
            inst.ready = float(self.engine.wait_output(c.id, spec.ready_marker, spec.ready_timeout))
            inst.phases = self._phases(inst)
            if spec.network:
                inst.link = self._link(inst)
        except BaseException as exc:
            inst.destroy()
            if isinstance(exc, Exception) and not isinstance(exc, LaunchError):
                raise LaunchError(f"container {name}: {exc}") from exc
            raise
        return inst

    def _link(self, inst: ContainerInstance) -> HostLink:
        """The bridge's gateway (the host's address on it) and the container's address, from inspect."""
        nets = (inst.inspect().get("NetworkSettings") or {}).get("Networks") or {}
        for net in nets.values():
            if net.get("Gateway") and net.get("IPAddress"):
                return HostLink(net["Gateway"], net["IPAddress"], "the engine's bridge network (veth + Linux bridge)")
        raise LaunchError(f"container {inst.name}: no bridge address in inspect ({nets})")

    def _phases(self, inst: ContainerInstance) -> dict[str, float]:
        """engine / create / start / exec from the engine's own timestamps."""
        try:
            t = inst.inspect().get("State", {}).get("Timings", {})
        except Exception:  # noqa: BLE001 - phases are optional; startup.ready stands on its own
            return {}
        try:
            begin, end, started = (float(t[k]) for k in ("runtime_create_begin", "runtime_create_end", "runtime_start_end"))
        except (KeyError, TypeError, ValueError):
            return {}
        assert inst.requested is not None and inst.ready is not None
        return {"engine": begin - inst.requested, "create": end - begin, "start": started - end,
                "exec": max(0.0, inst.ready - started)}
