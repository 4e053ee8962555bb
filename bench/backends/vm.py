"""The VM backends: virtlab's libvirt driver (vmdriver), profiles `micro` and `full`.

Ready is the BootReport's host time of the serial-console marker; the phases are the
driver's (vmm, firmware, kernel, init). Every VM number carries the accelerator label.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.backends.base import Backend, ExecResult, HostLink, Instance, LaunchSpec, Prepared
from bench.errors import LaunchError

# libvirt errors that mean the connection died (libvirtd restarted), not that the VM failed.
LOST_CONNECTION = ("client socket is closed", "broken pipe", "not connected", "connection reset",
                   "end of file while reading data")


def vmdriver_reason() -> str | None:
    """Why the VM driver cannot be used here, or None."""
    try:
        import vmdriver

        vmdriver.VmDriver  # noqa: B018 - the lazy attribute must resolve (libvirt importable)
    except Exception as exc:  # noqa: BLE001
        return f"the VM driver (vmdriver) is not importable: {exc}"
    if os.geteuid() != 0:
        return "needs root (libvirt qemu:///system)"
    if not os.path.exists("/var/run/libvirt/libvirt-sock"):
        return "libvirtd is not running (start it: virtlogd -d; libvirtd -d)"
    return None


def qemu_pids(name: str) -> list[int]:
    """Host PIDs of QEMU processes whose command line names this guest."""
    out = []
    key = name.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd.startswith(b"qemu-system") or b"/qemu-system" in cmd.split(b"\0", 1)[0]:
            if key in cmd:
                out.append(int(entry))
    return out


class VmInstance(Instance):
    """One libvirt guest."""

    scratch = "/var/tmp/virtlab"

    def __init__(self, backend: VmBackend, name: str) -> None:
        super().__init__(backend, name)
        self.backend: VmBackend = backend
        self.defined = False

    def _exec(self, argv: list[str], timeout: float) -> ExecResult:
        r = self.backend.call("exec", self.name, argv, timeout=timeout)
        out, err = r.stdout, r.stderr
        return ExecResult(int(r.exit_code), out.decode(errors="replace") if isinstance(out, bytes) else out,
                          err.decode(errors="replace") if isinstance(err, bytes) else err)

    def stats(self) -> dict[str, Any]:
        """The driver's stats of the domain."""
        return dict(self.backend.call("stats", self.name))

    def host_pids(self) -> list[int]:
        """The QEMU process of this guest."""
        return qemu_pids(self.name)

    def disk_usage(self) -> int:
        """Bytes in the guest's qcow2 overlay."""
        return int(self.backend.call("disk_usage", self.name).get("instance_bytes", 0))

    def stop(self) -> None:
        """Shut the guest down."""
        self.backend.call("stop", self.name, timeout=30)

    def _destroy(self) -> None:
        # Remove by name even if create() never returned: an interrupt can land after libvirt
        # defined the domain. The driver's remove is idempotent.
        try:
            self.backend.call("remove", self.name)
        except Exception:
            if self.defined:
                raise


class VmBackend(Backend):
    """libvirt/QEMU guests from the same image, micro (direct kernel boot) or full (firmware + distro init)."""

    kind = "vm"

    def __init__(self, root: Path | str, work: Path | str, profile: str = "micro", memory_mib: int = 128) -> None:
        super().__init__(root, work)
        if profile not in ("micro", "full"):
            raise LaunchError(f"unknown VM profile {profile!r}")
        self.profile = profile
        self.name = f"vm-{profile}"
        self.memory_mib = memory_mib
        self._driver: Any = None
        self.image_ref: str | None = None
        self.accel_reason: str | None = None

    @property
    def driver(self):
        """The VmDriver on this store root."""
        if self._driver is None:
            from vmdriver import VmDriver

            self._driver = VmDriver(self.root)
        return self._driver

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A VmDriver method; when libvirtd went away (restarted), reconnect once and retry."""
        try:
            return getattr(self.driver, method)(*args, **kwargs)
        except Exception as exc:
            text = str(exc).lower()
            if not any(s in text for s in LOST_CONNECTION):
                raise
            old, self._driver = self._driver, None
            try:
                old.close()
            except Exception:  # noqa: BLE001 - the old connection is gone anyway
                pass
            return getattr(self.driver, method)(*args, **kwargs)

    def available(self) -> tuple[bool, str]:
        """libvirt running, vmdriver importable, root."""
        reason = vmdriver_reason()
        if reason:
            return (False, reason)
        return (True, f"libvirt qemu:///system, profile {self.profile}")

    def info(self) -> dict[str, Any]:
        """Profile, guest memory and accelerator."""
        return {"kind": self.kind, "profile": self.profile, "memory_mib": self.memory_mib, "accel": self.accel,
                "accel_reason": self.accel_reason}

    def prepare(self, image: Any) -> Prepared:
        """Build (or reuse) kernel, initramfs and base disk for the image; their bytes are shared."""
        ok, reason = self.available()
        if not ok:
            raise LaunchError(f"{self.name} backend: {reason}")
        if image.source != "image-store":
            raise LaunchError(f"{self.name} backend: the bench image is not in the image store")
        art = self.call("prepare", image.ref, profile=self.profile)
        self.image_ref = image.ref
        sizes = dict(getattr(art, "sizes", {}) or {})
        shared = int(getattr(art, "shared_bytes", 0) or sum(sizes.values()))
        self.prepared = Prepared(image=image.ref, digest=image.digest, shared_bytes=shared, parts=sizes,
                                 metadata={"kernel_version": getattr(art, "kernel_version", None),
                                           "base_format": getattr(art, "base_format", None)})
        return self.prepared

    def launch(self, spec: LaunchSpec) -> VmInstance:
        """Define and start a guest; ready and phases come from the driver's BootReport."""
        from vmdriver import VmSpec

        if self.image_ref is None:
            raise LaunchError(f"{self.name} backend: prepare() was not called")
        name = spec.name or self.next_name("vlb")
        inst = self._track(VmInstance(self, name))
        try:
            inst.requested = time.time()
            vm = self.call("create", VmSpec(image=self.image_ref, name=name, profile=self.profile,
                                           memory_mib=spec.memory_mib or self.memory_mib, vcpus=spec.vcpus,
                                           cmd=list(spec.argv), network="virtlab" if spec.network else None))
            inst.defined = True
            inst.name = getattr(vm, "name", name) or name
            inst.created = time.time()
            boot = self.call("start", inst.name, wait_ready=True, timeout=spec.ready_timeout)
            inst.ready = float(boot.ready)
            # The driver's own request time includes only start(); ours includes define, like `engine` for containers.
            inst.phases = {"define": inst.created - inst.requested, **{k: float(v) for k, v in (boot.phases or {}).items()}}
            self.accel = boot.accel
            self.accel_reason = boot.accel_reason
            inst.metadata.update({"accel": boot.accel, "driver_requested": boot.requested})
            if spec.network:
                inst.link = self._link(inst, getattr(vm, "address", None))
        except BaseException as exc:
            inst.destroy()
            if isinstance(exc, Exception) and not isinstance(exc, LaunchError):
                raise LaunchError(f"{self.name} {name}: {exc}") from exc
            raise
        return inst

    def _link(self, inst: VmInstance, address: str | None) -> HostLink:
        """The isolated libvirt network: the host's bridge address and the guest's static one.

        The micro guest's init applies the address; the full profile's distro init does not
        (no DHCP on that network), so the probe sets it inside the guest through the agent.
        """
        from vmdriver.network import BRIDGE, GATEWAY, NETWORK_NAME

        if not address:
            raise LaunchError(f"{self.name} {inst.name}: the VM driver assigned no address on {NETWORK_NAME}")
        how = "the guest's init"
        if self.profile == "full":
            r = inst.exec([inst.probe, "netup", address], timeout=60)
            if r.exit_code != 0:
                raise LaunchError(f"{self.name} {inst.name}: cannot set {address} in the guest: {r.stderr.strip()}")
            how = "virtlab-probe netup in the guest (the full profile's init does not apply it)"
        return HostLink(str(GATEWAY), address.split("/")[0],
                        f"libvirt network {NETWORK_NAME} (bridge {BRIDGE}, no forward; virtio-net; address set by {how})")

    def limits(self) -> dict[str, int]:
        """Guest memory bounds VM density long before pids or files; the host's limits still apply."""
        return {**super().limits(), "guest_memory_mib": self.memory_mib}
