"""`virtlab doctor`: what this host can run, one line per item with ok/warn/fail and a hint."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import stat
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import click

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    status: str
    detail: str
    hint: str = ""
    needed_by_quick: bool = False


def _version_of(argv: list[str], pattern: str = r"(\d+\.\d+(?:\.\d+)?)") -> str | None:
    """The first version number a command prints, or None when it is missing or fails."""
    if not shutil.which(argv[0]):
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


def check_kernel() -> Check:
    """Kernel release: overlayfs, cgroup v2 and pidfd features need a recent one."""
    release = platform.release()
    major, minor = (int(x) for x in re.findall(r"\d+", release)[:2])
    if (major, minor) >= (5, 4):
        return Check("kernel", OK, release, needed_by_quick=True)
    return Check("kernel", WARN, release, "kernels before 5.4 lack features the runtime uses", True)


def check_userns() -> Check:
    """User namespaces: needed for rootless containers and userns mappings."""
    try:
        n = int(Path("/proc/sys/user/max_user_namespaces").read_text())
    except (OSError, ValueError):
        return Check("user namespaces", WARN, "unknown", "no /proc/sys/user/max_user_namespaces")
    if n > 0:
        return Check("user namespaces", OK, f"max_user_namespaces={n}")
    return Check("user namespaces", WARN, "disabled", "sysctl user.max_user_namespaces=15000")


def check_overlay() -> Check:
    """overlayfs, which every container rootfs is built on."""
    if "overlay" in Path("/proc/filesystems").read_text():
        return Check("overlayfs", OK, "in /proc/filesystems", needed_by_quick=True)
    if shutil.which("modprobe") and subprocess.run(["modprobe", "-n", "overlay"], capture_output=True).returncode == 0:
        return Check("overlayfs", OK, "module available", needed_by_quick=True)
    return Check("overlayfs", FAIL, "missing", "modprobe overlay, or a kernel with CONFIG_OVERLAY_FS", True)


def check_seccomp() -> Check:
    """seccomp in the kernel and libseccomp for building filters."""
    status = Path("/proc/self/status").read_text()
    if "Seccomp:" not in status:
        return Check("seccomp", FAIL, "kernel without CONFIG_SECCOMP", "containers run without a syscall filter")
    import ctypes.util

    lib = ctypes.util.find_library("seccomp")
    if not lib:
        return Check("seccomp", WARN, "kernel ok, libseccomp missing", "apt-get install libseccomp2")
    return Check("seccomp", OK, f"kernel ok, {lib}")


def cgroup_mode(root: Path = Path("/sys/fs/cgroup")) -> tuple[str, list[str]]:
    """The cgroup layout (v1, hybrid or v2) and its controllers."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    v1 = sorted(
        {
            opt
            for line in mounts
            if line.split()[2] == "cgroup"
            for opt in line.split()[3].split(",")
            if opt in _V1_CONTROLLERS
        }
    )
    v2_dirs = [line.split()[1] for line in mounts if line.split()[2] == "cgroup2"]
    if v2_dirs and not v1:
        ctrl = (Path(v2_dirs[0]) / "cgroup.controllers").read_text().split()
        return "v2", ctrl
    if v1 and v2_dirs:
        return "hybrid", v1
    if v1:
        return "v1", v1
    return "none", []


_V1_CONTROLLERS = {
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc",
}  # fmt: skip


def check_cgroups() -> Check:
    """cgroup mode and controllers: the runtime supports v1, hybrid and v2."""
    mode, ctrls = cgroup_mode()
    detail = f"{mode}: {' '.join(ctrls)}"
    if mode == "none":
        return Check("cgroups", FAIL, "no cgroup filesystem mounted", "mount cgroup2 at /sys/fs/cgroup", True)
    needed = {"memory", "pids", "cpu"}
    missing = needed - set(ctrls)
    if missing:
        return Check("cgroups", WARN, detail, f"controllers missing: {' '.join(sorted(missing))}", True)
    return Check("cgroups", OK, detail, "hybrid = v1 controllers plus an empty cgroup2" if mode == "hybrid" else "", True)


def check_kvm_permissions() -> Check:
    """The /dev/kvm trap: root-only /dev/kvm makes libvirt re-probe QEMU on every start."""
    dev = Path("/dev/kvm")
    if not dev.exists():
        return Check("/dev/kvm", WARN, "absent", "VMs will run under TCG (software emulation)")
    st = dev.stat()
    import grp

    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    mode = stat.S_IMODE(st.st_mode)
    if group == "kvm" and mode & 0o060 == 0o060:
        return Check("/dev/kvm", OK, f"group {group}, mode {mode:04o}")
    return Check(
        "/dev/kvm",
        FAIL,
        f"group {group}, mode {mode:04o}",
        "libvirt's QEMU cannot open it and re-probes on every start (~1 min): chgrp kvm /dev/kvm; chmod 660 /dev/kvm"
        " (make setup does this)",
        True,
    )


def check_accelerator(cache_dir: Path, reprobe: bool) -> Check:
    """Whether KVM really boots a guest (a real probe boot, cached), else TCG and why."""
    try:
        from vmdriver import accel
    except ImportError:
        return Check("accelerator", WARN, "not probed", "the VM driver is not installed yet")
    if reprobe:
        for f in cache_dir.glob("accel*"):
            f.unlink()
    try:
        probe = accel.probe(cache_dir)
    except Exception as exc:  # noqa: BLE001 - doctor reports every failure as a line
        return Check("accelerator", FAIL, f"probe failed: {exc}", "see `virtlab vm` docs", True)
    if probe.kvm_usable:
        return Check("accelerator", OK, f"kvm ({probe.reason})", needed_by_quick=True)
    return Check("accelerator", WARN, f"tcg: {probe.reason}", "VM numbers are labelled tcg (software emulation)", True)


def check_libvirt() -> Check:
    """libvirtd reachable at qemu:///system."""
    try:
        import libvirt
    except ImportError:
        return Check("libvirtd", FAIL, "libvirt-python missing", "make setup installs it", True)
    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        conn = libvirt.open("qemu:///system")
    except libvirt.libvirtError as exc:
        return Check("libvirtd", FAIL, f"unreachable: {exc.get_error_message()}", "start it: virtlogd -d; libvirtd -d", True)
    try:
        v = conn.getLibVersion()
        return Check("libvirtd", OK, f"qemu:///system, libvirt {v // 1000000}.{v // 1000 % 1000}.{v % 1000}", "", True)
    finally:
        conn.close()


def check_qemu() -> Check:
    """QEMU system emulator for x86_64."""
    v = _version_of(["qemu-system-x86_64", "--version"])
    if v is None:
        return Check("qemu", FAIL, "qemu-system-x86_64 missing", "apt-get install qemu-system-x86 qemu-utils", True)
    return Check("qemu", OK, f"qemu-system-x86_64 {v}", needed_by_quick=True)


def check_guest_kernel(root: Path) -> Check:
    """A kernel to boot the micro VMs: the host's /boot one, or Debian's cloud kernel, cached."""
    host = Path(f"/boot/vmlinuz-{platform.release()}")
    if host.exists():
        return Check("guest kernel", OK, str(host))
    cached = sorted((root / "vm" / "kernels").glob("**/vmlinuz-*")) if (root / "vm").exists() else []
    if cached:
        return Check("guest kernel", OK, f"{cached[-1]} (Debian cloud kernel, cached)")
    return Check("guest kernel", WARN, "none yet", "downloaded on first VM use (linux-image-cloud-amd64)")


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(int.from_bytes(table[i * phentsize : i * phentsize + 4], "little") != 3 for i in range(phnum))


def check_busybox() -> Check:
    """busybox-static, from which the default image is built offline."""
    path = Path("/bin/busybox")
    if not path.exists():
        return Check("busybox-static", FAIL, "missing", "apt-get install busybox-static", True)
    if not is_static_elf(path.resolve()):
        return Check("busybox-static", FAIL, f"{path} is dynamically linked", "apt-get install busybox-static", True)
    return Check("busybox-static", OK, str(path.resolve()), needed_by_quick=True)


def check_tool(name: str, argv: list[str], hint: str, needed: bool = False) -> Check:
    """A binary and its version, a warning when it is missing."""
    v = _version_of(argv)
    if v is None:
        return Check(name, FAIL if needed else WARN, "not installed", hint, needed)
    return Check(name, OK, f"{argv[0]} {v}", needed_by_quick=needed)


def check_limits() -> list[Check]:
    """The host limits that stop density runs before memory does."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    return [
        Check("nofile", OK if hard >= 4096 else WARN, f"soft {soft}, hard {hard}", "" if hard >= 4096 else "ulimit -Hn"),
        Check("pid_max", OK if pid_max >= 32768 else WARN, str(pid_max), "limits containers and processes per host"),
    ]


def run_checks(root: Path, reprobe: bool = False) -> list[Check]:
    """Every check, in the order they are printed."""
    checks = [
        Check("root", OK if os.geteuid() == 0 else FAIL, f"euid {os.geteuid()}", "run as root", True),
        check_kernel(),
        check_userns(),
        check_overlay(),
        check_seccomp(),
        check_cgroups(),
        check_kvm_permissions(),
        check_accelerator(root / "cache", reprobe),
        check_libvirt(),
        check_qemu(),
        check_tool("qemu-img", ["qemu-img", "--version"], "apt-get install qemu-utils", True),
        check_guest_kernel(root),
        check_busybox(),
        check_tool("mkfs.ext4", ["mkfs.ext4", "-V"], "apt-get install e2fsprogs", True),
        check_tool("registry", ["docker-registry", "--version"], "apt-get install docker-registry"),
        check_tool("runc", ["runc", "--version"], "apt-get install runc (peer)"),
        check_tool("crun", ["crun", "--version"], "apt-get install crun (peer; refuses hybrid cgroups)"),
        check_tool("podman", ["podman", "--version"], "apt-get install podman (peer)"),
    ]
    checks += check_limits()
    return checks


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--reprobe", is_flag=True, help="Forget the cached KVM probe and boot it again.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, reprobe: bool) -> None:
    """Check this host: kernel, namespaces, cgroups, KVM, libvirt, QEMU, images and peers."""
    root = Path(ctx.find_root().obj["root"])
    checks = run_checks(root, reprobe)
    ready = all(c.status != FAIL for c in checks if c.needed_by_quick)
    if as_json:
        click.echo(json.dumps({"quick_suite_ready": ready, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        colour = {OK: "green", WARN: "yellow", FAIL: "red"}
        width = max(len(c.name) for c in checks)
        for c in checks:
            line = f"{click.style(f'{c.status:<4}', fg=colour[c.status])}  {c.name:<{width}}  {c.detail}"
            if c.hint and c.status != OK:
                line += click.style(f"  -> {c.hint}", dim=True)
            click.echo(line)
        click.echo("quick suite: " + ("ready" if ready else "NOT ready (fix the lines marked fail above)"))
    ctx.exit(0 if ready else 1)
