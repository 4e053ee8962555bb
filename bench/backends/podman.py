"""The podman peer: `podman --runtime runc run -d` of the same rootfs, imported as an image.

Podman keeps its storage in a private root under virtlab's cache (never the host's
/var/lib/containers). The ready marker arrives on a pipe this process holds: the write
end goes into the container as fd 3 (`--preserve-fds 1`, `VIRTLAB_READY_FD=3`), so no
attached podman client sits between the probe and the clock, and the instance keeps
running detached (as in a density run) with only conmon and the container on the host.
"""

from __future__ import annotations

import hashlib
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
    run_cmd,
)
from bench.backends.hostfs import umount_under
from bench.errors import LaunchError
from bench.image import dir_bytes

# Podman's defaults ask for 1048576 open files, above the hard limit of many hosts (EPERM).
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


class PodmanInstance(Instance):
    """One detached podman container."""

    def __init__(self, backend: PodmanBackend, name: str) -> None:
        super().__init__(backend, name)
        self.backend: PodmanBackend = backend
        self.read_fd: int | None = None
        self.hostnet: Any = None
        self.exists = False
        self._inspect: dict[str, Any] | None = None

    def _exec(self, argv: list[str], timeout: float) -> ExecResult:
        r = self.backend.podman("exec", self.name, *argv, timeout=timeout)
        return ExecResult(r.returncode, r.stdout, r.stderr)

    def inspect(self) -> dict[str, Any]:
        """`podman inspect` of the container (cached)."""
        if self._inspect is None:
            r = self.backend.podman("inspect", "--type", "container", self.name)
            data = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else [{}]
            self._inspect = data[0] if data else {}
        return self._inspect

    def host_pids(self) -> list[int]:
        """conmon and the container's processes."""
        from bench.backends.base import descendants

        state = self.inspect().get("State", {})
        pids = []
        for key in ("ConmonPid", "Pid"):
            pid = int(state.get(key) or 0)
            if pid:
                pids.extend(descendants(pid) if key == "Pid" else [pid])
        return sorted(set(pids))

    def disk_usage(self) -> int:
        """Bytes in the container's overlay upper dir."""
        upper = self.inspect().get("GraphDriver", {}).get("Data", {}).get("UpperDir")
        return dir_bytes(upper) if upper and os.path.isdir(upper) else 0

    def stop(self) -> None:
        """podman stop with a short timeout."""
        self.backend.podman("stop", "-t", "2", self.name, timeout=30)

    def _destroy(self) -> None:
        try:
            if self.exists:
                pids = self.host_pids()
                r = self.backend.podman("rm", "-f", "-t", "0", self.name, timeout=60)
                if r.returncode != 0 and "no such container" not in r.stderr.lower():
                    raise LaunchError(f"podman rm {self.name}: {r.stderr.strip()}")
                # conmon exits on its own shortly after rm returns; wait so nothing outlives destroy().
                deadline = time.monotonic() + 10
                while pids and time.monotonic() < deadline:
                    pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
                    if pids:
                        time.sleep(0.02)
        finally:
            if self.read_fd is not None:
                os.close(self.read_fd)
                self.read_fd = None
            if self.hostnet is not None:
                self.hostnet.remove()
                self.hostnet = None


class PodmanBackend(Backend):
    """podman with runc, private storage, no network (like the other peers)."""

    name = "podman"
    kind = "container"

    def __init__(self, root: Path | str, work: Path | str) -> None:
        super().__init__(root, work)
        self.home = self.root / "cache" / "bench" / "podman"
        # Podman refuses a runroot longer than 50 characters (socket paths), so its transient
        # state lives in a short per-store folder under /run, removed by cleanup().
        digest = hashlib.sha256(str(self.home.absolute()).encode()).hexdigest()[:12]
        self.runroot = Path("/run") / f"virtlab-podman-{digest}"
        self.image_ref: str | None = None
        self._version: str | None = None

    def argv(self) -> list[str]:
        """podman with virtlab's private storage and runc."""
        return ["podman", "--root", str(self.home / "root"), "--runroot", str(self.runroot / "run"),
                "--tmpdir", str(self.runroot / "tmp"), "--storage-driver", "overlay", "--runtime", "runc",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--log-level", "error"]

    def podman(self, *args: str, timeout: float = 120.0, **kw: Any) -> subprocess.CompletedProcess:
        """Run one podman command with the private storage; output captured as text."""
        return run_cmd([*self.argv(), *args], timeout, capture_output=True, text=True, **kw)

    def version(self) -> str | None:
        """podman's version."""
        if self._version is None and shutil.which("podman"):
            r = subprocess.run(["podman", "--version"], capture_output=True, text=True)
            self._version = r.stdout.split()[-1] if r.returncode == 0 and r.stdout.strip() else None
        return self._version

    def available(self) -> tuple[bool, str]:
        """podman, runc and conmon installed, and root."""
        for tool in ("podman", "runc", "conmon"):
            if not shutil.which(tool):
                return (False, f"{tool} is not installed")
        if os.geteuid() != 0:
            return (False, "needs root (virtlab runs podman rootful, with private storage)")
        return (True, f"podman {self.version()} with runc")

    def info(self) -> dict[str, Any]:
        """Version and the options every container gets."""
        return {"kind": self.kind, "version": self.version(), "runtime": "runc", "storage": "overlay (private root)",
                "options": ["--network", "none", *ULIMITS]}

    def prepare(self, image: Any) -> Prepared:
        """Import the bench image's rootfs tarball (same bytes as every other backend) unless present."""
        ok, reason = self.available()
        if not ok:
            raise LaunchError(f"podman backend: {reason}")
        (self.home / "root").mkdir(parents=True, exist_ok=True, mode=0o700)
        for d in ("run", "tmp"):
            (self.runroot / d).mkdir(parents=True, exist_ok=True, mode=0o700)
        ref = f"localhost/{image.ref}"
        probe_r = self.podman("image", "exists", ref)
        if "configuration mismatch" in probe_r.stderr:
            # The private storage was made with other paths (its database remembers them): it is ours
            # and holds only the imported bench image, so start it afresh.
            umount_under(self.home)
            shutil.rmtree(self.home / "root", ignore_errors=True)
            (self.home / "root").mkdir(parents=True, exist_ok=True, mode=0o700)
            probe_r = self.podman("image", "exists", ref)
        if probe_r.returncode != 0:
            r = self.podman("import", "--change", "CMD [\"/usr/bin/virtlab-probe\", \"ready\"]", str(image.tarball), ref,
                            timeout=600)
            if r.returncode != 0:
                raise LaunchError(f"podman import of {image.tarball} failed: {r.stderr.strip()}")
        r = self.podman("image", "inspect", ref)
        size = 0
        digest = None
        if r.returncode == 0:
            data = json.loads(r.stdout)[0]
            size = int(data.get("Size") or 0)
            digest = data.get("Id")
        self.image_ref = ref
        self.prepared = Prepared(image=ref, digest=image.digest, shared_bytes=size or image.size_bytes,
                                 parts={"image": size}, metadata={"podman_image_id": digest})
        return self.prepared

    def launch(self, spec: LaunchSpec) -> PodmanInstance:
        """`podman run -d` with the ready pipe as fd 3; ready is when the marker arrives on our end."""
        if self.image_ref is None:
            raise LaunchError("podman backend: prepare() was not called")
        name = spec.name or self.next_name()
        inst = self._track(PodmanInstance(self, name))
        read_fd, write_fd = os.pipe()
        inst.read_fd = read_fd
        network = "none"
        if spec.network:
            # A veth into a namespace the harness makes (bench/backends/hostnet.py), joined with
            # --network ns:. Podman's own bridge (CNI here) would leave its bridge and firewall
            # chains on the host after the run.
            from bench.backends import hostnet

            try:
                inst.hostnet = hostnet.veth_netns()
            except BaseException:
                os.close(write_fd)
                inst.destroy()
                raise
            network = f"ns:{inst.hostnet.netns_path}"
            inst.link = HostLink(inst.hostnet.host_addr, inst.hostnet.instance_addr,
                                 "veth pair into a netns the harness made (podman --network ns:), /30, no route beyond")
        args = ["run", "-d", "--name", name, "--network", network, *ULIMITS, "--preserve-fds", "1",
                "--env", "VIRTLAB_READY_FD=3"]
        for k, v in spec.env.items():
            args += ["--env", f"{k}={v}"]
        if spec.memory_mib:
            args += ["--memory", f"{spec.memory_mib}m"]
        args += [self.image_ref, *spec.argv]

        def _fd3() -> None:
            os.dup2(write_fd, 3)

        try:
            watcher = MarkerWatcher(read_fd, spec.ready_marker, spec.ready_timeout, f"podman {name}")
            inst.requested = time.time()
            inst.exists = True
            r = run_cmd([*self.argv(), *args], spec.ready_timeout, capture_output=True, text=True, pass_fds=(3,),
                        preexec_fn=_fd3)
            t_run = time.time()
            os.close(write_fd)
            write_fd = -1
            if r.returncode != 0:
                raise LaunchError(f"podman run {name} failed: {r.stderr.strip()[-500:]}")
            inst.created = t_run
            inst.ready = watcher.result(spec.ready_timeout)
            inst.metadata["run_returned_after"] = t_run - inst.requested
        except BaseException:
            if write_fd >= 0:
                os.close(write_fd)
            inst.destroy()
            raise
        return inst

    def cleanup(self) -> None:
        """Destroy live containers, then unmount what podman's storage left mounted."""
        self.destroy_all()
        umount_under(self.home)
        umount_under(self.runroot)
        shutil.rmtree(self.runroot, ignore_errors=True)
