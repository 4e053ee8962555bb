"""The runc peer: the same rootfs as an OCI bundle, driven through runc's own CLI.

Each instance gets an overlay (the shared image rootfs below, its own upper dir above),
a config.json derived from `runc spec`, and runc's create/start. The probe's stdout is a
pipe this process holds, so "ready" is the host time the marker arrives on it. Phases:
`engine` (overlay + config), `create` (runc create), `start` (runc start), `exec` (the rest).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.backends.base import (
    Backend,
    ExecResult,
    HostLink,
    Instance,
    LaunchSpec,
    MarkerWatcher,
    Prepared,
    descendants,
    run_cmd,
)
from bench.backends.hostfs import mount_overlay, umount
from bench.errors import LaunchError
from bench.image import dir_bytes


class RuncInstance(Instance):
    """One runc container over its own overlay."""

    def __init__(self, backend: RuncBackend, name: str, bundle: Path) -> None:
        super().__init__(backend, name)
        self.backend: RuncBackend = backend
        self.bundle = bundle
        self.read_fd: int | None = None
        self.hostnet: Any = None
        self.created_in_runc = False

    def _runc(self, *args: str, timeout: float = 60.0, **kw: Any) -> subprocess.CompletedProcess:
        return run_cmd([*self.backend.runc_argv(), *args], timeout, **kw)

    def _exec(self, argv: list[str], timeout: float) -> ExecResult:
        r = self._runc("exec", self.name, *argv, capture_output=True, text=True, timeout=timeout)
        return ExecResult(r.returncode, r.stdout, r.stderr)

    def pid(self) -> int | None:
        """The container's init PID on the host, from `runc state`."""
        r = self._runc("state", self.name, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            return None
        try:
            return int(json.loads(r.stdout).get("pid") or 0) or None
        except (ValueError, json.JSONDecodeError):
            return None

    def host_pids(self) -> list[int]:
        """The container's processes (init and its children)."""
        pid = self.pid()
        return descendants(pid) if pid else []

    def disk_usage(self) -> int:
        """Bytes in the overlay's upper dir."""
        return dir_bytes(self.bundle / "upper")

    def stop(self) -> None:
        """SIGTERM the container's init."""
        self._runc("kill", self.name, "TERM", capture_output=True, timeout=20)

    def _destroy(self) -> None:
        errors = []
        if self.created_in_runc:
            self._runc("kill", self.name, "KILL", capture_output=True, timeout=20)
            r = self._runc("delete", "--force", self.name, capture_output=True, text=True, timeout=60)
            if r.returncode != 0 and "does not exist" not in r.stderr and "not found" not in r.stderr:
                errors.append(f"runc delete {self.name}: {r.stderr.strip()}")
        if self.read_fd is not None:
            os.close(self.read_fd)
            self.read_fd = None
        try:
            umount(self.bundle / "rootfs")
        except OSError as exc:
            errors.append(str(exc))
        shutil.rmtree(self.bundle, ignore_errors=True)
        if self.hostnet is not None:
            self.hostnet.remove()
            self.hostnet = None
        if errors:
            raise LaunchError("; ".join(errors))


class RuncBackend(Backend):
    """runc with a bundle per instance: the OCI runtime alone, without an engine."""

    name = "runc"
    kind = "container"

    def __init__(self, root: Path | str, work: Path | str) -> None:
        super().__init__(root, work)
        self.state = self.work / "runc-state"
        self.template: dict[str, Any] | None = None
        self.lower: Path | None = None
        self.version: str | None = None

    def available(self) -> tuple[bool, str]:
        """runc must be installed and we must be root (bundles, overlays, cgroups)."""
        if not shutil.which("runc"):
            return (False, "runc is not installed (apt-get install runc)")
        if os.geteuid() != 0:
            return (False, "needs root (overlay mounts and cgroups)")
        return (True, "runc " + (self._version() or "?"))

    def _version(self) -> str | None:
        if self.version is None:
            r = subprocess.run(["runc", "--version"], capture_output=True, text=True)
            self.version = r.stdout.split()[2] if r.returncode == 0 and len(r.stdout.split()) > 2 else None
        return self.version

    def runc_argv(self) -> list[str]:
        """runc with this run's private state root."""
        return ["runc", "--root", str(self.state)]

    def info(self) -> dict[str, Any]:
        """Version and how bundles are made."""
        return {"kind": self.kind, "version": self._version(), "rootfs": "overlay per instance over the shared image",
                "network": "own netns, loopback only; the network workload: a veth into a netns the harness makes",
                "config": "runc spec defaults"}

    def prepare(self, image: Any) -> Prepared:
        """Take the flattened image as the shared lower dir, and `runc spec` as the config template."""
        ok, reason = self.available()
        if not ok:
            raise LaunchError(f"runc backend: {reason}")
        self.lower = Path(image.rootfs)
        self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.work / "runc-spec"
        tmp.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["runc", "spec", "--bundle", str(tmp)], capture_output=True, text=True)
        if r.returncode != 0:
            raise LaunchError(f"runc spec failed: {r.stderr.strip()}")
        self.template = json.loads((tmp / "config.json").read_text())
        shutil.rmtree(tmp, ignore_errors=True)
        self.prepared = Prepared(image=image.ref, digest=image.digest, shared_bytes=image.size_bytes,
                                 parts={"rootfs": image.size_bytes})
        return self.prepared

    def _config(self, spec: LaunchSpec, name: str, rootfs: Path, netns: str | None = None) -> dict[str, Any]:
        assert self.template is not None
        cfg = json.loads(json.dumps(self.template))
        cfg["root"] = {"path": str(rootfs), "readonly": False}
        proc = cfg["process"]
        proc["terminal"] = False
        proc["args"] = list(spec.argv)
        proc["env"] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", *(f"{k}={v}" for k, v in spec.env.items())]
        cfg["hostname"] = name[:63]
        if spec.memory_mib:
            cfg.setdefault("linux", {}).setdefault("resources", {})["memory"] = {"limit": spec.memory_mib << 20}
        if netns:
            for ns in cfg.setdefault("linux", {}).setdefault("namespaces", []):
                if ns.get("type") == "network":
                    ns["path"] = netns
        return cfg

    def launch(self, spec: LaunchSpec) -> RuncInstance:
        """Overlay + config.json, `runc create` with our pipe as stdout, `runc start`, then the marker."""
        if self.template is None or self.lower is None:
            raise LaunchError("runc backend: prepare() was not called")
        name = spec.name or self.next_name()
        bundle = self.work / "runc" / name
        inst = self._track(RuncInstance(self, name, bundle))
        read_fd, write_fd = os.pipe()
        inst.read_fd = read_fd
        try:
            inst.requested = time.time()
            for d in ("upper", "work", "rootfs"):
                (bundle / d).mkdir(parents=True)
            mount_overlay(self.lower, bundle / "upper", bundle / "work", bundle / "rootfs")
            if spec.network:
                from bench.backends import hostnet

                inst.hostnet = hostnet.veth_netns()
                inst.link = HostLink(inst.hostnet.host_addr, inst.hostnet.instance_addr,
                                     "veth pair into a netns the harness made (runc joins it by path), /30, no route beyond")
            netns = inst.hostnet.netns_path if inst.hostnet else None
            (bundle / "config.json").write_text(json.dumps(self._config(spec, name, bundle / "rootfs", netns)))
            t_engine = time.time()
            watcher = MarkerWatcher(read_fd, spec.ready_marker, spec.ready_timeout, f"runc {name}")
            # Set before the call: an interrupt during `runc create` must still lead to `runc delete`.
            inst.created_in_runc = True
            with open(bundle / "runc.log", "wb") as log:
                r = run_cmd([*self.runc_argv(), "create", "--bundle", str(bundle), name], 60, stdin=subprocess.DEVNULL,
                            stdout=write_fd, stderr=log)
            os.close(write_fd)
            write_fd = -1
            if r.returncode != 0:
                raise LaunchError(f"runc create {name} failed: {(bundle / 'runc.log').read_text().strip()[-500:]}")
            inst.created = t_create = time.time()
            r = run_cmd([*self.runc_argv(), "start", name], 60, capture_output=True, text=True)
            if r.returncode != 0:
                raise LaunchError(f"runc start {name} failed: {r.stderr.strip()}")
            t_start = time.time()
            inst.ready = watcher.result(spec.ready_timeout)
            inst.phases = {
                "engine": t_engine - inst.requested,
                "create": t_create - t_engine,
                "start": t_start - t_create,
                "exec": max(0.0, inst.ready - t_start),
            }
        except BaseException:
            if write_fd >= 0:
                os.close(write_fd)
            inst.destroy()
            raise
        return inst

    def cleanup(self) -> None:
        """Destroy live containers and remove the private runc state."""
        self.destroy_all()
        shutil.rmtree(self.state, ignore_errors=True)
