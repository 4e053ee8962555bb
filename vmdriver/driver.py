"""The VM driver: OCI images booted as libvirt/QEMU guests, with the container verbs.

Each VM is a libvirt domain named `virtlab-<name>` (so leftovers are easy to see), a
folder <root>/vm/vms/<name>/ (record, qcow2 overlay, console log) and the shared,
cached artifacts (kernel, initramfs, qcow2 base). The domain carries the store root
in its metadata, so `list` can tell this store's orphans from other stores' VMs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vmdriver import disk, records
from vmdriver.agent import AgentClient, ExecResult
from vmdriver.artifacts import Artifacts, check_boot_file
from vmdriver.artifacts import prepare as prepare_artifacts
from vmdriver.domain import (
    AGENT_PORT,
    FWCFG_CONFIG,
    METADATA_NS,
    MICRO_CMDLINE,
    DiskDef,
    DomainDef,
    domain_xml,
    fwcfg_value,
    guest_config,
    parse_ready,
)
from vmdriver.errors import (
    AgentError,
    BootTimeout,
    InvalidSpec,
    LibvirtError,
    LibvirtTimeout,
    NoSuchVm,
    VmDriverError,
    VmExists,
)
from vmdriver.layout import DOMAIN_PREFIX, Layout, check_traversable, domain_name, validate_name
from vmdriver.qemu import guest_argv
from vmdriver.readiness import READY, parse_exit, read_from, wait_marker

__all__ = ["Artifacts", "BootReport", "ExecResult", "Vm", "VmDriver", "VmSpec"]

MAX_MEMORY_MIB = 64 * 1024
STOP_CALL_TIMEOUT = 10.0  # one libvirt call during stop (lookup, state, ACPI shutdown)
DESTROY_TIMEOUT = 15.0  # libvirt's destroy: SIGTERM, up to 10 s, then SIGKILL
KILL_WAIT = 5.0  # QEMU killed through its pid file when libvirt does not answer
MAX_VCPUS = 64


@dataclass
class VmSpec:
    """What to boot: the image, resources, command, extra disk and network."""

    image: str
    name: str | None = None
    profile: str = "micro"
    memory_mib: int = 128
    vcpus: int = 1
    cmd: list[str] | None = None
    disk: str | None = None
    disk_format: str = "raw"
    network: str | None = None  # None or "none": no NIC; "virtlab": the isolated network
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    tb_cache_mib: int = 64

    def validate(self) -> None:
        """Raise InvalidSpec naming the first bad field."""
        if self.name is not None:
            validate_name(self.name)
        if self.profile not in ("micro", "full"):
            raise InvalidSpec(f"unknown profile {self.profile!r} (use micro or full)")
        if not isinstance(self.memory_mib, int) or not 64 <= self.memory_mib <= MAX_MEMORY_MIB:
            raise InvalidSpec(f"memory {self.memory_mib!r} MiB is outside 64..{MAX_MEMORY_MIB}")
        if not isinstance(self.vcpus, int) or not 1 <= self.vcpus <= min(MAX_VCPUS, os.cpu_count() or 1):
            raise InvalidSpec(f"cpus {self.vcpus!r} is outside 1..{min(MAX_VCPUS, os.cpu_count() or 1)} (host cores)")
        if self.network not in (None, "none", "virtlab"):
            raise InvalidSpec(f"unknown VM network {self.network!r} (use none or virtlab)")
        if self.disk_format not in disk.FORMATS:
            raise InvalidSpec(f"disk format {self.disk_format!r} is not allowed (use raw or qcow2)")
        if not 8 <= self.tb_cache_mib <= 1024:
            raise InvalidSpec(f"TCG translation cache {self.tb_cache_mib} MiB is outside 8..1024")
        for e in self.env:
            if "=" not in e or e.startswith("="):
                raise InvalidSpec(f"environment entry {e!r} is not KEY=VALUE")


@dataclass
class BootReport:
    """Host timestamps of one boot and its phases (seconds)."""

    requested: float
    vmm_started: float
    ready: float
    phases: dict[str, float]
    accel: str
    accel_reason: str
    guest: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """Request to ready marker, seen from the host."""
        return self.ready - self.requested


@dataclass
class Vm:
    """A VM as `list` and `create` report it."""

    name: str
    domain: str
    image: str
    image_id: str
    profile: str
    state: str
    created: float
    accel: str
    memory_mib: int
    vcpus: int
    address: str | None = None
    orphan: bool = False
    exit_code: int | None = None


def _libvirt():
    import libvirt

    # libvirt prints every error to stderr by default; we report them ourselves.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


class VmDriver:
    """Create, boot, exec into, measure, stop and remove VMs of one store root."""

    def __init__(self, root: Path | str, uri: str = "qemu:///system", accel: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.layout = Layout(self.root)
        self.uri = uri
        self._accel = accel
        self._accel_reason = "chosen by the caller" if accel else ""
        self._conn: Any = None
        if accel not in (None, "kvm", "tcg"):
            raise InvalidSpec(f"unknown accelerator {accel!r} (use kvm or tcg)")

    # ------------------------------------------------------------ plumbing

    @property
    def conn(self) -> Any:
        """The libvirt connection (opened on first use, reopened if libvirtd went away meanwhile)."""
        if self._conn is not None:
            try:
                alive = self._conn.isAlive()
            except Exception:  # noqa: BLE001 - a dead connection can fail even this
                alive = False
            if not alive:
                self._conn = None
        if self._conn is None:
            libvirt = _libvirt()
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise LibvirtError(f"cannot connect to libvirt at {self.uri}: {exc.get_error_message()}") from exc
        return self._conn

    def close(self) -> None:
        """Close the libvirt connection."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection is fine
                pass
            self._conn = None

    def accel(self) -> tuple[str, str]:
        """The accelerator for new domains and why (probed once, cached per host boot)."""
        if self._accel is None:
            env = os.environ.get("VIRTLAB_ACCEL")
            if env in ("kvm", "tcg"):
                self._accel, self._accel_reason = env, "VIRTLAB_ACCEL in the environment"
            else:
                from vmdriver.accel import probe

                p = probe(self.root / "cache", root=self.root)
                self._accel, self._accel_reason = p.accel, p.reason
        return self._accel, self._accel_reason

    def _conn_call(self, what: str, method: str, *args: Any) -> Any:
        """Call a method of the connection; reconnect once if the connection turns out dead.

        After a libvirtd restart the cached connection still says isAlive() (nothing read
        the socket's EOF yet), and its next call fails with an RPC error ("Broken pipe").
        """
        libvirt = _libvirt()
        for attempt in (0, 1):
            try:
                return getattr(self.conn, method)(*args)
            except libvirt.libvirtError as exc:
                if attempt == 0 and exc.get_error_domain() == libvirt.VIR_FROM_RPC:
                    self._conn = None
                    continue
                raise
        raise AssertionError("unreachable")

    def _domain(self, name: str) -> Any | None:
        libvirt = _libvirt()
        try:
            return self._conn_call("look up", "lookupByName", domain_name(name))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise LibvirtError(f"cannot look up domain {domain_name(name)}: {exc.get_error_message()}") from exc

    def _bounded(self, what: str, fn: Any, timeout: float) -> Any:
        """fn() (libvirt calls) in a thread, LibvirtTimeout if it has not returned after `timeout` s.

        A libvirt call can block for a long time: waiting for a domain's job lock (30 s per
        call in libvirtd) or for a daemon that is still starting (re-probing QEMU). libvirt's
        client has no per-call timeout; its calls release the GIL, so a thread can wait for
        them. A call that times out keeps running in its thread and its connection is dropped.
        """
        import threading

        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["ok"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                box["err"] = exc

        t = threading.Thread(target=run, name=f"virtlab-libvirt-{what}", daemon=True)
        t.start()
        t.join(max(0.01, timeout))
        if t.is_alive():
            self._conn = None
            raise LibvirtTimeout(f"libvirt did not {what} within {timeout:.1f} s")
        if "err" in box:
            raise box["err"]
        return box.get("ok")

    def _record(self, name: str) -> dict[str, Any]:
        rec = records.load(self.layout, validate_name(name))
        if rec is None:
            raise NoSuchVm(f"no such VM: {name}")
        return rec

    def _lv(self, what: str, fn: Any, *args: Any) -> Any:
        """Call libvirt, turning its error into LibvirtError that names `what`."""
        libvirt = _libvirt()
        try:
            return fn(*args)
        except libvirt.libvirtError as exc:
            raise LibvirtError(f"cannot {what}: {exc.get_error_message()}") from exc

    @staticmethod
    def _active(dom: Any) -> bool:
        """Whether the domain runs; a domain that vanished does not, other errors are raised."""
        libvirt = _libvirt()
        try:
            return bool(dom.isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise LibvirtError(f"cannot read the state of {dom.name()}: {exc.get_error_message()}") from exc

    # ------------------------------------------------------------ artifacts

    def prepare(self, image_ref: str, profile: str = "micro") -> Artifacts:
        """Kernel, initramfs and base disk for `image_ref` (built once, cached by digest)."""
        return prepare_artifacts(self.root, image_ref, profile)

    # ------------------------------------------------------------ create

    def _new_name(self) -> str:
        for _ in range(100):
            n = f"vm-{os.urandom(3).hex()}"
            if not self.layout.vm_dir(n).exists():
                return n
        raise VmDriverError("cannot find a free VM name")

    def create(self, spec: VmSpec, artifacts: Artifacts | None = None) -> Vm:
        """Define a VM (domain + overlay + record); nothing is left behind if it fails."""
        spec.validate()
        name = spec.name or self._new_name()
        dname = domain_name(name)
        self.layout.ensure()
        vm_dir = self.layout.vm_dir(name)
        if vm_dir.exists():
            raise VmExists(f"VM name {name} is already in use (remove it with `virtlab vm rm {name}`)")
        if self._domain(name) is not None:
            raise VmExists(f"libvirt domain {dname} already exists (a leftover? `virtlab vm rm {name}` removes it)")
        user_disk = None
        if spec.disk:
            user_disk = disk.inspect_untrusted(Path(spec.disk), spec.disk_format)
        art = artifacts or self.prepare(spec.image, spec.profile)
        accel, accel_reason = self.accel()
        if self.uri.startswith("qemu:///system"):
            why = check_traversable(self.layout.base, _qemu_uid())
            if why:
                raise InvalidSpec(f"QEMU's user cannot reach the store: {why} (chmod o+x the folders above it)")
            if user_disk is not None:
                why = check_traversable(user_disk.path.resolve().parent, _qemu_uid())
                if why:
                    raise InvalidSpec(f"QEMU's user cannot reach disk {spec.disk}: {why}")
        for p in (art.kernel, art.initrd):
            if p is not None:
                check_boot_file(p, self.layout.base)
        if art.kernel is not None:
            from vmdriver.kernel import bzimage_min_memory_mib

            # A bzImage decompresses itself above its load address and hangs silently when
            # RAM is short; say so now (the PVH ELF, when there is one, has no such floor).
            floor = bzimage_min_memory_mib(art.kernel)
            if floor and spec.memory_mib < floor + 4:
                raise InvalidSpec(f"memory {spec.memory_mib} MiB is too small for kernel {art.kernel_version}: "
                                  f"its bzImage needs about {floor + 4} MiB to decompress (no PVH ELF: "
                                  f"see {art.kernel.parent}/vmlinux.none)")
        try:
            vm_dir.mkdir(mode=0o711)
        except FileExistsError as exc:
            raise VmExists(f"VM name {name} is already in use") from exc
        os.chmod(vm_dir, 0o711)
        defined = False
        # Held from starting the network until the domain on it is defined (see network.lock).
        net_lock = contextlib.ExitStack()
        try:
            overlay = vm_dir / "overlay.qcow2"
            disk.create_overlay(art.base_disk, art.base_format, overlay)
            console = vm_dir / "console.log"
            console.touch(mode=0o600)
            address = mac = network = None
            if spec.network == "virtlab":
                from vmdriver import network as net

                net_lock.enter_context(net.lock())
                network = net.ensure_network(self.conn)
                address = net.allocate_address(self._used_addresses())
                mac = net.random_mac()
            argv = guest_argv(art.image_config, spec.cmd)
            env = list(art.image_config.get("Env") or []) + list(spec.env)
            workdir = spec.workdir or art.image_config.get("WorkingDir") or "/"
            from vmdriver.network import GATEWAY

            cfg = guest_config(
                name, argv, env, workdir,
                net_addr=address or "", net_gw=str(GATEWAY) if address else "",
            )
            disks = [DiskDef(str(overlay), "qcow2", "vda", str(art.base_disk), art.base_format)]
            if user_disk is not None:
                disks.append(DiskDef(str(user_disk.path.resolve()), user_disk.format, "vdb"))
            ddef = DomainDef(
                name=dname,
                memory_mib=spec.memory_mib,
                vcpus=spec.vcpus,
                accel=accel,
                disks=tuple(disks),
                console_log=str(console),
                kernel=str(art.kernel) if art.kernel else None,
                initrd=str(art.initrd) if art.initrd else None,
                cmdline=art_cmdline(art),
                firmware=art.firmware,
                nvram=str(vm_dir / "VARS.fd") if art.firmware else None,
                nvram_template=art.nvram_template,
                # The full profile's initramfs takes the network part of it (lib.sh vl_net_up).
                fwcfg={FWCFG_CONFIG: fwcfg_value(cfg)},
                network=network,
                mac=mac,
                agent=True,
                tb_cache_mib=spec.tb_cache_mib,
                metadata={"root": str(self.root), "name": name, "image": art.image_id, "profile": art.profile},
            )
            xml = domain_xml(ddef)
            self._lv(f"define domain {dname}", self.conn.defineXML, xml)
            defined = True
            net_lock.close()
            rec = {
                "name": name,
                "domain": dname,
                "image": spec.image,
                "image_id": art.image_id,
                "profile": art.profile,
                "memory_mib": spec.memory_mib,
                "vcpus": spec.vcpus,
                "cmd": argv,
                "created": time.time(),
                "accel": accel,
                "accel_reason": accel_reason,
                "tb_cache_mib": spec.tb_cache_mib if accel == "tcg" else None,
                "artifacts": art.to_json(),
                "overlay": str(overlay),
                "console": str(console),
                "network": network,
                "address": address,
                "mac": mac,
                "disk": str(user_disk.path) if user_disk else None,
                "disk_format": user_disk.format if user_disk else None,
                "boots": [],
                "exit_code": None,
            }
            records.save(self.layout, rec)
        except BaseException:
            net_lock.close()
            if defined:
                self._undefine(name)
            if spec.network == "virtlab":
                self._release_network()
            shutil.rmtree(vm_dir, ignore_errors=True)
            raise
        return self._vm(rec)

    def _release_network(self) -> None:
        """Remove the VMs' network if no domain uses it any more (it is a host bridge: vlbr-vm)."""
        from vmdriver import network as net

        with net.lock():
            self._lv(f"release network {net.NETWORK_NAME}", net.release_network, self.conn)

    def _used_addresses(self) -> set[str]:
        used = set()
        for n in records.names(self.layout):
            rec = records.load(self.layout, n)
            if rec and rec.get("address"):
                used.add(rec["address"].split("/")[0])
        return used

    # ------------------------------------------------------------ start / ready

    def start(self, name: str, wait_ready: bool = True, timeout: float = 180) -> BootReport:
        """Boot the VM; with wait_ready, return once the guest wrote its ready marker."""
        rec = self._record(name)
        dom = self._domain(name)
        if dom is None:
            raise NoSuchVm(f"VM {name} has no libvirt domain {domain_name(name)} (a leftover record? rm it)")
        if self._active(dom):
            raise VmDriverError(f"VM {name} is already running")
        # The overlay must still name our base, as qcow2, and nothing else (SECURITY.md 2.2).
        disk.check_overlay(Path(rec["overlay"]), Path(rec["artifacts"]["base_disk"]))
        console = Path(rec["console"])
        offset = console.stat().st_size if console.exists() else 0
        requested = time.time()
        self._lv(f"start domain {rec['domain']}", dom.create)
        vmm_started = time.time()
        report = BootReport(requested, vmm_started, 0.0, {}, rec["accel"], rec.get("accel_reason", ""))
        rec["exit_code"] = None
        rec["console_offset"] = offset
        if wait_ready:
            got = wait_marker(console, READY, timeout, offset, alive=lambda: self._active(dom))
            if got is None:
                tail = _tail(console, offset)
                if self._active(dom):
                    self._lv(f"destroy domain {rec['domain']}", dom.destroy)
                    raise BootTimeout(f"VM {name} did not report ready within {timeout:g} s; console: {tail}")
                raise VmDriverError(f"VM {name} stopped before it was ready; console: {tail}")
            report.ready, line = got
            guest = parse_ready(line)
            report.guest = guest
            report.phases = boot_phases(requested, vmm_started, report.ready, guest)
        rec["boots"] = (rec.get("boots") or [])[-9:] + [asdict(report)]
        records.save(self.layout, rec)
        return report

    # ------------------------------------------------------------ exec / stats

    def _agent_path(self, name: str) -> Path:
        dom = self._domain(name)
        if dom is None or not self._active(dom):
            raise VmDriverError(f"VM {name} is not running")
        xml = ET.fromstring(self._lv(f"read the XML of {domain_name(name)}", dom.XMLDesc, 0))
        for ch in xml.iter("channel"):
            t = ch.find("target")
            s = ch.find("source")
            path = s.get("path") if s is not None else None
            if t is not None and t.get("name") == AGENT_PORT and path:
                return Path(path)
        raise AgentError(f"VM {name} has no agent channel (profile without the virtlab agent)")

    def exec(self, name: str, argv: list[str], timeout: float = 60) -> ExecResult:
        """Run argv in the running VM through the guest agent."""
        self._record(name)
        if not argv:
            raise InvalidSpec("exec needs a command")
        path = self._agent_path(name)
        from vmdriver.layout import FileLock

        # One exec at a time per VM: the guest agent serves one request at a time.
        with FileLock(self.layout.vm_dir(name) / "agent.lock"):
            with AgentClient(path, timeout=timeout + 10) as agent:
                return agent.exec(argv, timeout)

    def wait(self, name: str, timeout: float | None = None) -> int:
        """Wait until the VM powers off; return its entrypoint's exit code (125 if unknown)."""
        rec = self._record(name)
        dom = self._domain(name)
        deadline = None if timeout is None else time.monotonic() + timeout
        while dom is not None and self._active(dom):
            if deadline is not None and time.monotonic() > deadline:
                raise VmDriverError(f"VM {name} still runs after {timeout:g} s")
            time.sleep(0.05)
        code = self._exit_code(rec)
        return 125 if code is None else code

    def _exit_code(self, rec: dict[str, Any]) -> int | None:
        """The entrypoint's exit code from the console (None: unknown, e.g. a full-profile VM)."""
        text = _read_from(Path(rec["console"]), int(rec.get("console_offset") or 0))
        code = parse_exit(text)
        rec["exit_code"] = code
        records.save(self.layout, rec)
        return code

    def stats(self, name: str) -> dict[str, Any]:
        """CPU time, memory, block and network I/O of a running VM, from libvirt."""
        rec = self._record(name)
        dom = self._domain(name)
        if dom is None or not self._active(dom):
            raise VmDriverError(f"VM {name} is not running")
        info = self._lv(f"read stats of {rec['domain']}", dom.info)
        mem = self._lv(f"read memory stats of {rec['domain']}", dom.memoryStats)
        out: dict[str, Any] = {
            "cpu_ns": int(info[4]),
            "mem_bytes": int(mem.get("rss", 0)) * 1024,
            "mem_limit": int(info[1]) * 1024,
            "vcpus": int(info[3]),
            "blk_read": 0,
            "blk_write": 0,
            "net_rx": 0,
            "net_tx": 0,
        }
        xml = ET.fromstring(self._lv(f"read the XML of {rec['domain']}", dom.XMLDesc, 0))
        for d in xml.iter("disk"):
            t = d.find("target")
            if t is not None and t.get("dev"):
                b = self._lv(f"read block stats of {rec['domain']}", dom.blockStats, t.get("dev"))
                out["blk_read"] += int(b[1])
                out["blk_write"] += int(b[3])
        for i in xml.iter("interface"):
            t = i.find("target")
            if t is not None and t.get("dev"):
                n = self._lv(f"read net stats of {rec['domain']}", dom.interfaceStats, t.get("dev"))
                out["net_rx"] += int(n[0])
                out["net_tx"] += int(n[4])
        out["qemu_pid"] = _qemu_pid(rec["domain"])
        return out

    def disk_usage(self, name: str) -> dict[str, int]:
        """Bytes shared with every VM of the image (kernel, initramfs, base) and this VM's own."""
        rec = self._record(name)
        art = Artifacts.from_json(rec["artifacts"])
        return {"shared_bytes": art.shared_bytes, "instance_bytes": disk.allocated_bytes(Path(rec["overlay"]))}

    # ------------------------------------------------------------ stop / remove

    def stop(self, name: str, timeout: float = 30) -> int | None:
        """Stop the VM: agent stop (TERM, then KILL), ACPI shutdown, then destroy after `timeout`.

        Every step is bounded: the graceful part by `timeout`, each libvirt call by what is
        left of it (or STOP_CALL_TIMEOUT), destroy by DESTROY_TIMEOUT; when libvirt does not
        answer in time, QEMU is killed through its pid file. So stop returns within about
        timeout + DESTROY_TIMEOUT + KILL_WAIT whatever the guest or libvirtd do.
        """
        rec = self._record(name)
        dname = rec["domain"]
        deadline = time.monotonic() + max(0.0, timeout)

        def left(cap: float = STOP_CALL_TIMEOUT) -> float:
            return max(0.5, min(cap, deadline - time.monotonic()))

        dom = None
        try:
            dom = self._bounded(f"look up {dname}", lambda: self._domain(name), left())
            if dom is None or not self._bounded(f"read the state of {dname}", lambda: self._active(dom), left()):
                return rec.get("exit_code")
            try:
                path = self._bounded(f"read the XML of {dname}", lambda: self._agent_path(name), left())
                with AgentClient(path, timeout=left(5.0)) as agent:
                    agent.stop(grace=max(1, min(int(timeout) - 1, 10)))
            except (AgentError, OSError, VmDriverError) as exc:
                if isinstance(exc, LibvirtTimeout):
                    raise
                try:
                    self._bounded(f"shut down {dname}", dom.shutdown, left())
                except LibvirtTimeout:
                    raise
                except Exception:  # noqa: BLE001 - ACPI may be refused or ignored; destroy follows
                    pass
            while time.monotonic() < deadline and self._bounded(
                f"read the state of {dname}", lambda: self._active(dom), left()
            ):
                time.sleep(0.05)
            if self._bounded(f"read the state of {dname}", lambda: self._active(dom), left()):
                self._bounded(f"destroy {dname}", lambda: self._destroy(dom), DESTROY_TIMEOUT)
        except LibvirtError:
            # libvirt is stuck or gone: what destroy would do, without it.
            if not _kill_qemu(dname, KILL_WAIT):
                raise
        return self._exit_code(rec)

    def _destroy(self, dom: Any) -> None:
        """Destroy a domain; fine if it stopped meanwhile."""
        try:
            dom.destroy()
        except Exception:  # noqa: BLE001 - it may have stopped meanwhile
            if self._active(dom):
                raise

    def kill(self, name: str) -> None:
        """Power the VM off at once (destroy)."""
        self._record(name)
        dom = self._domain(name)
        if dom is not None and self._active(dom):
            self._lv(f"destroy domain {domain_name(name)}", dom.destroy)

    def _undefine(self, name: str) -> bool:
        libvirt = _libvirt()
        dom = self._domain(name)
        if dom is None:
            return False
        try:
            if self._active(dom):
                dom.destroy()
        except libvirt.libvirtError:
            if self._active(dom):
                raise
        try:
            # UEFI guests (full profile) have an NVRAM file that must go with them.
            flags = libvirt.VIR_DOMAIN_UNDEFINE_NVRAM if "<nvram" in dom.XMLDesc(0) else 0
            dom.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise LibvirtError(f"cannot undefine {domain_name(name)}: {exc.get_error_message()}") from exc
        return True

    def remove(self, name: str, timeout: float = DESTROY_TIMEOUT + STOP_CALL_TIMEOUT) -> bool:
        """Destroy and undefine the domain and delete the VM's folder; fine if already gone.

        The libvirt part is bounded like stop()'s calls (same helper): when libvirt has not
        answered after `timeout` s, QEMU is killed through its pid file and LibvirtTimeout is
        raised with the VM's folder kept, since the domain is still defined and `rm` must be
        able to finish the job once libvirtd answers again.
        """
        validate_name(name)
        dname = domain_name(name)
        rec = records.load(self.layout, name)
        try:
            had_domain = self._bounded(f"remove domain {dname}", lambda: self._undefine(name), timeout)
        except LibvirtTimeout as exc:
            killed = _kill_qemu(dname, KILL_WAIT)
            raise LibvirtTimeout(
                f"{exc}; its QEMU {'is gone' if killed else 'could not be killed'}; "
                f"the VM {name} is kept: run rm again once libvirtd answers"
            ) from exc
        vm_dir = self.layout.vm_dir(name)
        had_dir = vm_dir.exists()
        shutil.rmtree(vm_dir, ignore_errors=True)
        if vm_dir.exists():
            raise VmDriverError(f"cannot remove {vm_dir}")
        if had_domain and (rec is None or rec.get("network")):  # the last VM on it takes the bridge along
            self._bounded("release the VM network", self._release_network, timeout)
        return had_domain or had_dir

    # ------------------------------------------------------------ list / inspect / logs

    def _vm(self, rec: dict[str, Any], state: str | None = None) -> Vm:
        if state is None:
            dom = self._domain(rec["name"])
            state = "missing-domain" if dom is None else ("running" if self._active(dom) else "stopped")
        return Vm(
            name=rec["name"], domain=rec["domain"], image=rec.get("image", ""), image_id=rec.get("image_id", ""),
            profile=rec.get("profile", ""), state=state, created=float(rec.get("created") or 0),
            accel=rec.get("accel", ""), memory_mib=int(rec.get("memory_mib") or 0), vcpus=int(rec.get("vcpus") or 0),
            address=rec.get("address"), exit_code=rec.get("exit_code"),
        )

    def list(self, all: bool = True) -> list[Vm]:  # noqa: A002 - docker's flag name
        """VMs of this store, and orphans: domains that name this store but have no record."""
        libvirt = _libvirt()
        doms = {}
        for dom in self._lv("list domains", self._conn_call, "list domains", "listAllDomains", 0):
            n = dom.name()
            if n.startswith(DOMAIN_PREFIX):
                doms[n] = dom
        out = []
        seen = set()
        for n in records.names(self.layout):
            rec = records.load(self.layout, n)
            dname = DOMAIN_PREFIX + n
            seen.add(dname)
            dom = doms.get(dname)
            state = "missing-domain" if dom is None else ("running" if self._active(dom) else "stopped")
            if rec is None:
                vm = Vm(n, dname, "", "", "", "broken-record", 0.0, "", 0, 0, orphan=True)
            else:
                vm = self._vm(rec, state)
            if all or state == "running":
                out.append(vm)
        for dname, dom in sorted(doms.items()):
            if dname in seen:
                continue
            try:
                meta = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
                root = ET.fromstring(meta).get("root")
            except libvirt.libvirtError:
                root = None
            if root != str(self.root):
                continue
            state = "running" if self._active(dom) else "stopped"
            if all or state == "running":
                out.append(Vm(dname[len(DOMAIN_PREFIX):], dname, "", "", "", state, 0.0, "", 0, 0, orphan=True))
        return out

    def inspect(self, name: str) -> dict[str, Any]:
        """The record, the live state and the domain XML of a VM."""
        rec = self._record(name)
        dom = self._domain(name)
        out = dict(rec)
        out["state"] = self._vm(rec).state
        out["domain_xml"] = dom.XMLDesc(0) if dom is not None else None
        return out

    def logs(self, name: str) -> bytes:
        """Everything the VM wrote on its serial console (kernel, init and the workload)."""
        rec = self._record(name)
        try:
            return Path(rec["console"]).read_bytes()
        except FileNotFoundError:
            return b""


# ---------------------------------------------------------------- helpers


def art_cmdline(art: Artifacts) -> str | None:
    """The kernel command line for direct kernel boot (micro); None for firmware boot."""
    return MICRO_CMDLINE if art.kernel is not None else None


def boot_phases(requested: float, vmm_started: float, ready: float, guest: dict[str, float]) -> dict[str, float]:
    """Split request->ready into vmm, firmware, kernel and init from host and guest clocks.

    The guest reports its uptime when init started and when it became ready; the kernel
    started at `ready - guest uptime at ready` on the host's clock.
    """
    phases = {"vmm": max(0.0, vmm_started - requested)}
    up_ready = guest.get("ready")
    up_init = guest.get("init")
    if up_ready is None or up_init is None:
        phases["guest"] = max(0.0, ready - vmm_started)
        return phases
    kernel_start = ready - up_ready
    phases["firmware"] = max(0.0, kernel_start - vmm_started)
    phases["kernel"] = max(0.0, up_init)
    phases["init"] = max(0.0, up_ready - up_init)
    return phases


def _qemu_uid() -> int:
    import pwd

    for user in ("libvirt-qemu", "qemu"):
        try:
            return pwd.getpwnam(user).pw_uid
        except KeyError:
            continue
    return 0


def _qemu_pid(dname: str) -> int | None:
    try:
        return int(Path(f"/run/libvirt/qemu/{dname}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _kill_qemu(dname: str, wait: float) -> bool:
    """SIGKILL the QEMU of domain `dname` (from libvirt's pid file); True once it is gone.

    Only a process whose command line names this guest is killed, so a stale pid file that
    now points at another process is harmless.
    """
    import signal

    pid = _qemu_pid(dname)
    if pid is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    if not any(a.startswith(f"guest={dname},".encode()) or a == f"guest={dname}".encode() for a in cmdline):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    return True  # dead; libvirtd reaps it
        except OSError:
            return True
        time.sleep(0.05)
    return False


def _read_from(path: Path, offset: int) -> str:
    return read_from(path, offset).decode(errors="replace")


def _tail(path: Path, offset: int, limit: int = 600) -> str:
    text = _read_from(path, offset).strip()
    return (text[-limit:] or "(empty)").replace("\r", "")


