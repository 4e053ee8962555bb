"""Capture the host a run measured: the `environment.json` of a results directory.

Everything a reader needs to judge or reproduce a number: host, kernel, CPU, memory,
cgroup layout, accelerator (kvm or tcg, and why), tool versions, the git commit, and
the known confounders (governor, SMT, ASLR, THP, swap, load). Nothing here is
hard-coded: every fact is read from the host, and an unreadable one is recorded as null.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _run(argv: list[str], timeout: float = 10.0) -> str | None:
    """Stdout+stderr of a short command, or None when it is missing or fails to start."""
    if not shutil.which(argv[0]):
        return None
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (r.stdout + r.stderr).strip()


def tool_version(argv: list[str], pattern: str = r"(\d+\.\d+(?:\.\d+)?)") -> str | None:
    """The first version-looking string a tool prints for `argv`, or None if it is absent."""
    out = _run(argv)
    if not out:
        return None
    m = re.search(pattern, out)
    return m.group(1) if m else None


def distro() -> str | None:
    """PRETTY_NAME from /etc/os-release."""
    text = _read("/etc/os-release") or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return m.group(1) if m else None


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo."""
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def cpu_flags() -> list[str]:
    """The CPU flags from /proc/cpuinfo (first CPU)."""
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("flags"):
            return line.split(":", 1)[1].split()
    return []


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            mult = 1024 if len(parts) > 2 and parts[2] == "kB" else 1
            out[parts[0].rstrip(":")] = int(parts[1]) * mult
    return out


def mem_available() -> int:
    """MemAvailable in bytes (the density workload's yardstick)."""
    return meminfo().get("MemAvailable", 0)


def cgroup_info() -> tuple[str, list[str]]:
    """The cgroup layout (v1, hybrid, v2) and its controllers."""
    try:
        from bench.doctor import cgroup_mode

        return cgroup_mode()
    except Exception:  # noqa: BLE001 - environment capture never fails a run
        return ("unknown", [])


def git_info() -> tuple[str | None, bool | None]:
    """The repository's HEAD commit and whether the tree has uncommitted changes."""
    if not (REPO / ".git").exists():
        return (None, None)
    head = _run(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    status = _run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    commit = head if head and re.fullmatch(r"[0-9a-f]{40}", head) else None
    return (commit, bool(status) if status is not None else None)


def accelerator(cache_dir: Path | None, root: Path | None = None) -> dict[str, Any]:
    """Which accelerator VMs use here (kvm or tcg) and why, from the VM driver's cached probe."""
    kvm_dev = os.path.exists("/dev/kvm")
    try:
        from vmdriver import accel
    except ImportError:
        return {
            "accel": None,
            "kvm_usable": None,
            "reason": "not probed: the VM driver (vmdriver.accel) is not installed",
            "kvm_device": kvm_dev,
        }
    try:
        if cache_dir is None:
            raise ValueError("no cache directory for the accelerator probe")
        probe = accel.probe(cache_dir, root=root)
    except Exception as exc:  # noqa: BLE001 - recorded, not raised
        return {"accel": None, "kvm_usable": None, "reason": f"probe failed: {exc}", "kvm_device": kvm_dev}
    return {
        "accel": probe.accel,
        "kvm_usable": probe.kvm_usable,
        "reason": probe.reason,
        "checked_at": str(getattr(probe, "checked_at", "")),
        "kvm_device": kvm_dev,
    }


def versions() -> dict[str, str | None]:
    """Versions of the tools the peers and VMs use (None when a tool is absent)."""
    try:
        import libvirt  # noqa: F401 - only the version is read

        lv = libvirt.getVersion()
        libvirt_v: str | None = f"{lv // 1000000}.{lv // 1000 % 1000}.{lv % 1000}"
    except Exception:  # noqa: BLE001 - absent or broken binding
        libvirt_v = tool_version(["libvirtd", "--version"])
    return {
        "qemu": tool_version(["qemu-system-x86_64", "--version"]),
        "libvirt": libvirt_v,
        "runc": tool_version(["runc", "--version"]),
        "crun": tool_version(["crun", "--version"]),
        "podman": tool_version(["podman", "--version"]),
        "hyperfine": tool_version(["hyperfine", "--version"]),
        "gcc": tool_version(["gcc", "--version"], r"(\d+\.\d+\.\d+)"),
        "python": platform.python_version(),
    }


def confounders() -> dict[str, Any]:
    """Host settings that move benchmark numbers (ANCHORS.md section 9.3)."""
    load = None
    try:
        load = list(os.getloadavg())
    except OSError:
        pass
    mi = meminfo()
    return {
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "smt": _read("/sys/devices/system/cpu/smt/control"),
        "aslr": _read("/proc/sys/kernel/randomize_va_space"),
        "thp": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "ksm_run": _read("/sys/kernel/mm/ksm/run"),
        "swap_bytes": mi.get("SwapTotal"),
        "mem_available_bytes": mi.get("MemAvailable"),
        "loadavg": load,
        "boot_cmdline": _read("/proc/cmdline"),
        "pid_max": _read("/proc/sys/kernel/pid_max"),
        "nofile_limit": _nofile(),
    }


def _nofile() -> list[int] | None:
    try:
        import resource

        return list(resource.getrlimit(resource.RLIMIT_NOFILE))
    except (ImportError, OSError):
        return None


def host_info() -> dict[str, Any]:
    """The host block: hostname, kernel, distro, CPU, memory, cgroups, KVM device."""
    mode, ctrls = cgroup_info()
    flags = cpu_flags()
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "arch": platform.machine(),
        "distro": distro(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_virt_flags": sorted(set(flags) & {"vmx", "svm", "hypervisor"}),
        "memory_bytes": meminfo().get("MemTotal"),
        "cgroup_mode": mode,
        "cgroup_controllers": ctrls,
        "kvm_device": os.path.exists("/dev/kvm"),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
    }


def capture(cache_dir: Path | None = None, argv: list[str] | None = None, suite: str | None = None,
            root: Path | None = None, probe_accel: bool = True) -> dict[str, Any]:
    """The whole environment.json body, except what the run adds (run_id, started, backends, images).

    `probe_accel` False skips the accelerator probe (it may boot a guest) when no VM runs.
    """
    commit, dirty = git_info()
    try:
        from importlib.metadata import version

        tool_v = version("virtlab")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        tool_v = None
    return {
        "tool_version": tool_v,
        "git_commit": commit,
        "git_dirty": dirty,
        "argv": list(argv if argv is not None else sys.argv),
        "suite": suite,
        "host": host_info(),
        "accelerator": accelerator(cache_dir, root) if probe_accel else {
            "accel": None, "kvm_usable": None, "reason": "not probed: no VM backend in this run",
            "kvm_device": os.path.exists("/dev/kvm")},
        "versions": versions(),
        "confounders": confounders(),
    }
