"""Which accelerator VMs use here: KVM only if a tiny guest really boots under it, else TCG.

On nested "PVM" hosts /dev/kvm opens and KVM_CREATE_VM succeeds, yet ordinary guests
hang; so the probe boots virtlab's own kernel and initramfs with `-accel kvm` and waits
(bounded) for the guest to print a marker. The verdict is cached per host boot.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROBE_MARKER = b"VIRTLAB_PROBE_OK"
CACHE_FILE = "accel.json"
SCHEMA = 1


@dataclass(frozen=True)
class AccelProbe:
    """The probe's verdict: the accelerator to use, whether KVM works, and why."""

    accel: str  # "kvm" or "tcg"
    kvm_usable: bool
    reason: str
    checked_at: float


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _kvm_device_reason(dev: Path = Path("/dev/kvm")) -> str | None:
    """Why /dev/kvm cannot be used at all, or None if it opens."""
    if not dev.exists():
        return f"{dev} does not exist (no hardware virtualization exposed to this host)"
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"cannot open {dev}: {exc.strerror}"
    os.close(fd)
    return None


def _read_cache(path: Path) -> AccelProbe | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("schema") != SCHEMA or data.get("boot_id") != _boot_id():
        return None
    try:
        return AccelProbe(data["accel"], bool(data["kvm_usable"]), data["reason"], float(data["checked_at"]))
    except (KeyError, TypeError, ValueError):
        return None


def _write_cache(path: Path, probe: AccelProbe) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"schema": SCHEMA, "boot_id": _boot_id(), **asdict(probe)}, indent=2) + "\n")
    os.replace(tmp, path)


def boot_test(kernel: Path, initrd: Path, timeout: float, accel: str = "kvm") -> tuple[bool, str]:
    """Boot `kernel` + `initrd` in probe mode under `accel`; (ok, what happened)."""
    with tempfile.TemporaryDirectory(prefix="virtlab-accel-") as tmp:
        log = Path(tmp) / "console.log"
        argv = [
            "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
            "-machine", "q35", "-accel", accel if accel == "kvm" else "tcg,tb-size=32",
            "-m", "128", "-smp", "1",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "console=ttyS0 quiet panic=-1 no_timer_check virtlab.probe",
            "-serial", f"file:{log}", "-no-reboot",
        ]
        t0 = time.monotonic()
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            return False, f"cannot run qemu-system-x86_64: {exc.strerror}"
        try:
            while time.monotonic() - t0 < timeout:
                if log.exists() and PROBE_MARKER in log.read_bytes():
                    return True, f"a {accel} guest booted to its marker in {time.monotonic() - t0:.1f} s"
                if p.poll() is not None:
                    err = p.stderr.read().decode(errors="replace").strip() if p.stderr else ""
                    if log.exists() and PROBE_MARKER in log.read_bytes():
                        return True, f"a {accel} guest booted in {time.monotonic() - t0:.1f} s"
                    return False, f"QEMU with {accel} exited {p.returncode} before the guest marker: {err[-300:]}"
                time.sleep(0.05)
            return False, f"a {accel} guest did not reach its marker within {timeout:g} s (hung)"
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stderr:
                p.stderr.close()


def probe(cache_dir: Path | str, timeout: float = 20, root: Path | str | None = None, refresh: bool = False) -> AccelProbe:
    """Decide between KVM and TCG (cached in `cache_dir` until the host reboots).

    The guest kernel and initramfs come from the store at `root` (default: the
    parent of `cache_dir` when it is named `cache`, i.e. <root>/cache -> <root>;
    otherwise `cache_dir` itself).
    """
    cache_dir = Path(cache_dir)
    cache = cache_dir / CACHE_FILE
    if not refresh:
        got = _read_cache(cache)
        if got is not None:
            return got
    reason = _kvm_device_reason()
    if reason is None:
        from vmdriver.initramfs import ensure_initramfs
        from vmdriver.kernel import ensure_kernel
        from vmdriver.layout import Layout

        if root is None:
            # <root>/cache -> <root>; any other folder keeps the probe's store inside itself,
            # so a bare cache dir such as /tmp never puts a vm/ folder next to it.
            root = cache_dir.parent if cache_dir.name == "cache" else cache_dir
        layout = Layout(Path(root))
        kernel = ensure_kernel(layout)
        initrd = ensure_initramfs(layout, kernel)
        ok, what = boot_test(kernel.vmlinuz, initrd, timeout, "kvm")
        if ok:
            result = AccelProbe("kvm", True, what, time.time())
        else:
            result = AccelProbe("tcg", False, f"KVM unusable: {what}; using TCG (software emulation)", time.time())
    else:
        result = AccelProbe("tcg", False, f"KVM unusable: {reason}; using TCG (software emulation)", time.time())
    _write_cache(cache, result)
    return result
