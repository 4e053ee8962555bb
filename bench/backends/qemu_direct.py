"""The qemu-direct peer: the same micro-VM artifacts booted by a plain QEMU process, without libvirt.

The argv is the VM driver's (`vmdriver.qemu.direct_command`), so only libvirt's share of
the cost differs. Ready is the host time the marker appears on the serial console file;
exec goes through the same guest agent socket.
"""

from __future__ import annotations

import os
import shutil
import signal
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
    Prepared,
    kill_process_group,
)
from bench.backends.vm import vmdriver_reason
from bench.errors import LaunchError, ReadyTimeout


class QemuDirectInstance(Instance):
    """One QEMU process with its run folder (overlay, console, agent socket)."""

    def __init__(self, backend: QemuDirectBackend, name: str, run_dir: Path) -> None:
        super().__init__(backend, name)
        self.backend: QemuDirectBackend = backend
        self.run_dir = run_dir
        self.proc: subprocess.Popen | None = None
        self.hostnet: Any = None

    def _exec(self, argv: list[str], timeout: float) -> ExecResult:
        from vmdriver.agent import AgentClient

        with AgentClient(self.run_dir / "agent.sock", timeout=timeout + 10) as agent:
            r = agent.exec(argv, timeout=timeout)
        return ExecResult(int(r.exit_code), r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"))

    def host_pids(self) -> list[int]:
        """The QEMU process."""
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def disk_usage(self) -> int:
        """Bytes in the qcow2 overlay."""
        overlay = self.run_dir / "overlay.qcow2"
        return os.stat(overlay).st_blocks * 512 if overlay.exists() else 0

    def _destroy(self) -> None:
        if self.proc is not None:
            kill_process_group(self.proc)
        # A QEMU started just before an interrupt reached `self.proc = ...`: find it by its name.
        from bench.backends.vm import qemu_pids

        for pid in qemu_pids(f"virtlab-{self.name}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        from vmdriver import qemu

        qemu.cleanup(self.run_dir)
        if self.hostnet is not None:
            self.hostnet.remove()
            self.hostnet = None


class QemuDirectBackend(Backend):
    """QEMU started directly with the micro profile's kernel, initramfs and disk."""

    name = "qemu-direct"
    kind = "vm"

    def __init__(self, root: Path | str, work: Path | str, memory_mib: int = 128) -> None:
        super().__init__(root, work)
        self.memory_mib = memory_mib
        self.art: Any = None
        self.image_ref: str | None = None
        self.accel_reason: str | None = None

    def available(self) -> tuple[bool, str]:
        """QEMU installed and the VM driver importable (for the artifacts and the argv)."""
        if not shutil.which("qemu-system-x86_64"):
            return (False, "qemu-system-x86_64 is not installed")
        reason = vmdriver_reason()
        if reason:
            return (False, reason)
        return (True, "qemu-system-x86_64 without libvirt, micro profile")

    def info(self) -> dict[str, Any]:
        """Accelerator and guest size."""
        return {"kind": self.kind, "profile": "micro", "memory_mib": self.memory_mib, "accel": self.accel,
                "accel_reason": self.accel_reason}

    def prepare(self, image: Any) -> Prepared:
        """The micro artifacts from the VM driver (built once, shared with vm-micro); the accelerator probe."""
        ok, reason = self.available()
        if not ok:
            raise LaunchError(f"qemu-direct backend: {reason}")
        from vmdriver import VmDriver, accel

        self.art = VmDriver(self.root).prepare(image.ref, profile="micro")
        probe = accel.probe(self.root / "cache", root=self.root)
        self.accel, self.accel_reason = probe.accel, probe.reason
        self.image_ref = image.ref
        sizes = dict(getattr(self.art, "sizes", {}) or {})
        self.prepared = Prepared(image=image.ref, digest=image.digest, shared_bytes=int(self.art.shared_bytes),
                                 parts=sizes, metadata={"accel": self.accel})
        return self.prepared

    def launch(self, spec: LaunchSpec) -> QemuDirectInstance:
        """Start QEMU with direct_command's argv and wait for the console marker."""
        from vmdriver import VmSpec, qemu
        from vmdriver.readiness import wait_marker

        if self.art is None:
            raise LaunchError("qemu-direct backend: prepare() was not called")
        name = spec.name or self.next_name("vlb")
        # The VM driver's own folder for direct boots (<root>/vm/direct/<name>): the agent socket
        # path must stay under 108 bytes, which a run folder deep in the cache would exceed.
        run_dir = qemu.run_dir_for(self.art, name)
        inst = self._track(QemuDirectInstance(self, name, run_dir))
        try:
            inst.requested = time.time()
            vspec = VmSpec(image=self.image_ref, name=name, profile="micro", memory_mib=spec.memory_mib or self.memory_mib,
                           vcpus=spec.vcpus, cmd=list(spec.argv))
            argv = qemu.direct_command(self.art, vspec, self.accel or "tcg", run_dir=run_dir)
            if spec.network:
                from bench.backends import hostnet

                inst.hostnet = hostnet.tap()
                argv = self._with_tap(argv, vspec, inst.hostnet)
                inst.link = HostLink(inst.hostnet.host_addr, inst.hostnet.instance_addr,
                                     "tap device the harness made (virtio-net, no vhost), /30, no route beyond")
            with open(run_dir / "qemu.log", "wb") as log:
                inst.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            inst.created = time.time()
            proc = inst.proc
            seen = wait_marker(run_dir / "console.log", spec.ready_marker, spec.ready_timeout,
                               alive=lambda: proc.poll() is None)
            if seen is None:
                tail = (run_dir / "qemu.log").read_text(errors="replace")[-300:]
                raise ReadyTimeout(f"qemu-direct {name}: no {spec.ready_marker.decode()} on the console "
                                   f"within {spec.ready_timeout:.0f}s (qemu: {tail!r})")
            inst.ready = seen[0]
            inst.phases = {"define": inst.created - inst.requested}
            inst.metadata["accel"] = self.accel
        except BaseException as exc:
            inst.destroy()
            if isinstance(exc, Exception) and not isinstance(exc, LaunchError):
                raise LaunchError(f"qemu-direct {name}: {exc}") from exc
            raise
        return inst

    def _with_tap(self, argv: list[str], vspec: Any, link: Any) -> list[str]:
        """direct_command's argv plus a virtio NIC on the tap, and the guest config with its address.

        direct_command has no network option, so the guest config (fw_cfg) is rebuilt with the
        VM driver's own functions, the address added and no gateway (no route beyond the link).
        """
        from vmdriver import qemu
        from vmdriver.domain import fwcfg_value, guest_config
        from vmdriver.network import random_mac

        cfg = guest_config(vspec.name, qemu.guest_argv(self.art.image_config, vspec.cmd),
                           list(self.art.image_config.get("Env") or []),
                           self.art.image_config.get("WorkingDir") or "/", net_addr=link.instance_cidr, net_gw="")
        out = list(argv)
        i = next((k for k, a in enumerate(out) if a.startswith(f"name={qemu.FWCFG_CONFIG},string=")), None)
        if i is None:
            raise LaunchError("qemu-direct: direct_command's argv has no guest config to extend")
        out[i] = f"name={qemu.FWCFG_CONFIG},string={fwcfg_value(cfg)}"
        out[-1:-1] = ["-netdev", f"tap,id=vlnet,ifname={link.host_if},script=no,downscript=no",
                      "-device", f"virtio-net-pci,netdev=vlnet,mac={random_mac()}"]
        return out

    def limits(self) -> dict[str, int]:
        """Guest memory bounds density; the host's limits still apply to the QEMU processes."""
        return {**super().limits(), "guest_memory_mib": self.memory_mib}
