"""Test tiers, host checks with reasons, and the leak check every test runs under.

Tiers are markers (root, vm, conformance, slow, bench). A tier skips only where the host
truly lacks something, and says what. The leak check snapshots the host before and after
each test and fails the test that left mounts, cgroups, netns, links, firewall rules,
libvirt domains, QEMU or virtlab processes, or stray temp files behind.
Set VIRTLAB_LEAKCHECK=warn while several people test on one machine, or =off.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LEAKCHECK = os.environ.get("VIRTLAB_LEAKCHECK", "fail")

# Names the project gives to what it creates on the host. The leak check watches
# everything, but these prefixes are what a leftover of ours looks like.
CGROUP_ROOT = Path("/sys/fs/cgroup")
TMP_DIRS = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
PROC_WATCH = ("qemu-system", "virtlab", "runc", "crun", "conmon", "docker-registry", "iperf3", "dnsmasq")


def _is_root() -> bool:
    return os.geteuid() == 0


def _libvirt_reason() -> str | None:
    """Why VM tests cannot run here, or None when they can."""
    if not _is_root():
        return "requires root (libvirt qemu:///system)"
    if not shutil.which("qemu-system-x86_64"):
        return "requires qemu-system-x86_64 (make test installs it)"
    if not Path("/var/run/libvirt/libvirt-sock").exists():
        return "requires a running libvirtd (make test starts it)"
    return None


def _conformance_reason() -> str | None:
    if not _is_root():
        return "requires root"
    if not shutil.which("go"):
        return "requires golang-go and the runtime-tools sources (make test installs them)"
    if not (REPO.parent / "shared" / "conformance" / "run.sh").exists():
        return "requires ../shared/conformance/run.sh next to the repository"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with the reason, the tiers this host cannot run."""
    reasons = {
        "root": None if _is_root() else "requires root (namespaces, mounts, cgroups)",
        "vm": _libvirt_reason(),
        "conformance": _conformance_reason(),
    }
    for item in items:
        for marker, reason in reasons.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))
                break


# ---------------------------------------------------------------- leak check


@dataclass
class HostSnapshot:
    """What the host holds that a test could leak."""

    mounts: set[str] = field(default_factory=set)
    cgroups: set[str] = field(default_factory=set)
    netns: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    processes: set[str] = field(default_factory=set)
    firewall: set[str] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)
    tmpfiles: set[str] = field(default_factory=set)

    def leftovers(self, before: HostSnapshot) -> dict[str, list[str]]:
        """What is here now and was not before, per kind."""
        out = {}
        for kind in self.__dataclass_fields__:
            new = sorted(getattr(self, kind) - getattr(before, kind))
            if new:
                out[kind] = new
        return out


def _mounts() -> set[str]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            out.add(f"{parts[4]} ({parts[parts.index('-') + 1]})")
    return out


# Parents that podman (libpod_parent, libpod_parent/conmon) and libvirtd (machine) create
# on first use and keep for every later container or VM, by design: not leaks. What is
# created below them (a container's or a VM's own cgroup) is still watched.
PEER_CGROUP_PARENTS = ("libpod_parent", "libpod_parent/conmon", "machine")


def _cgroups() -> set[str]:
    out = set()
    if not CGROUP_ROOT.is_dir():
        return out
    for top in CGROUP_ROOT.iterdir():
        if not top.is_dir() or top.is_symlink():
            continue
        keep = {str(top / p) for p in PEER_CGROUP_PARENTS}
        for dirpath, dirnames, _ in os.walk(top):
            for d in dirnames:
                path = os.path.join(dirpath, d)
                if path not in keep:
                    out.add(path)
    return out


def _netns() -> set[str]:
    try:
        return {f"/run/netns/{n}" for n in os.listdir("/run/netns")}
    except FileNotFoundError:
        return set()


def _links() -> set[str]:
    try:
        return set(os.listdir("/sys/class/net"))
    except FileNotFoundError:
        return set()


def _processes() -> set[str]:
    out = set()
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmd and any(w in cmd for w in PROC_WATCH) and "pytest" not in cmd:
            out.add(f"{pid} {cmd[:160]}")
    return out


def _firewall() -> set[str]:
    out = set()
    if shutil.which("nft"):
        r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
        out |= {f"nft {line.strip()}" for line in r.stdout.splitlines() if line.strip()}
    if shutil.which("iptables-save"):
        r = subprocess.run(["iptables-save"], capture_output=True, text=True)
        out |= {f"iptables {line}" for line in r.stdout.splitlines() if line.startswith("-A")}
    return out


def _domains() -> set[str]:
    if _libvirt_reason():
        return set()
    r = subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"], capture_output=True, text=True, timeout=20
    )
    return {n.strip() for n in r.stdout.splitlines() if n.strip()}


def _tmpfiles(basetemp: Path) -> set[str]:
    out = set()
    for d in TMP_DIRS:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            p = d / n
            # pytest's own tree and unrelated system sockets are not ours to police.
            if str(basetemp).startswith(str(p)) or n.startswith(("pytest-of-", ".X", "systemd-")):
                continue
            out.add(str(p))
    return out


def snapshot(basetemp: Path, deep: bool) -> HostSnapshot:
    """Read the host. `deep` adds the slower checks (firewall, libvirt, temp files)."""
    snap = HostSnapshot(
        mounts=_mounts(), cgroups=_cgroups(), netns=_netns(), links=_links(), processes=_processes()
    )
    if deep:
        snap.firewall = _firewall()
        snap.domains = _domains()
        snap.tmpfiles = _tmpfiles(basetemp)
    return snap


def _report(where: str, leftovers: dict[str, list[str]]) -> str:
    lines = [f"{where} left these behind:"]
    for kind, items in leftovers.items():
        lines.append(f"  {kind}:")
        lines.extend(f"    {i}" for i in items[:20])
        if len(items) > 20:
            lines.append(f"    ... and {len(items) - 20} more")
    return "\n".join(lines)


def _settle(before: HostSnapshot, basetemp: Path, deep: bool) -> dict[str, list[str]]:
    """Leftovers after a short grace period: processes and netns may take a moment to go."""
    import time

    left: dict[str, list[str]] = {}
    for _ in range(10):
        left = snapshot(basetemp, deep).leftovers(before)
        if not left:
            break
        time.sleep(0.2)
    return left


@pytest.fixture(scope="session")
def _session_snapshot(tmp_path_factory: pytest.TempPathFactory):
    basetemp = tmp_path_factory.getbasetemp()
    before = snapshot(basetemp, deep=True)
    yield before
    if LEAKCHECK == "off":
        return
    left = _settle(before, basetemp, deep=True)
    if left:
        msg = _report("the test session", left)
        if LEAKCHECK == "fail":
            pytest.fail(msg, pytrace=False)
        warnings.warn(msg, stacklevel=1)


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, _session_snapshot):
    """Fail the test that leaves host resources behind, naming the test and the leftover."""
    if LEAKCHECK == "off":
        yield
        return
    deep = any(request.node.get_closest_marker(m) for m in ("root", "vm", "conformance"))
    basetemp = tmp_path_factory.getbasetemp()
    before = snapshot(basetemp, deep)
    yield
    left = _settle(before, basetemp, deep)
    if left:
        msg = _report(request.node.nodeid, left)
        if LEAKCHECK == "fail":
            pytest.fail(msg, pytrace=False)
        warnings.warn(msg, stacklevel=1)
