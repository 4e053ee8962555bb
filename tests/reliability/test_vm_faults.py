"""SIGKILL during `vm start` of the CLI, of QEMU, and of libvirtd (restarted with `libvirtd -d`, as setup does).

After each fault: `vm ps -a` agrees with libvirt and the host (a VM shown running has a QEMU
process; one shown stopped has none), the image store is consistent, `vm start` works again,
and `vm rm` leaves no domain, no QEMU and no overlay (the leak check watches domains and QEMU).
Boots run under TCG here, so each test boots only a few times.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import (
    check_store,
    kill_when,
    libvirtd_pids,
    qemu_pids,
    restart_libvirtd,
    spawn,
    vl,
)

pytestmark = [pytest.mark.root, pytest.mark.vm]


def unique(prefix: str) -> str:
    """A VM name no other test run uses at the same time (domain names are host-wide)."""
    return f"{prefix}-{os.getpid()}-{os.urandom(2).hex()}"


def domstate(domain: str) -> str | None:
    """libvirt's state of `domain`, or None if it does not exist."""
    r = subprocess.run(["virsh", "-c", "qemu:///system", "domstate", domain], capture_output=True, text=True,
                       timeout=60)
    return r.stdout.strip() if r.returncode == 0 else None


def vm_rows(root) -> dict[str, dict]:
    """`vm ps -a --format json` by name."""
    return {v["name"]: v for v in json.loads(vl(root, "vm", "ps", "-a", "--format", "json").stdout or b"[]")}


def check_vm_truth(root, name: str, settle: float = 30) -> str:
    """Assert `vm ps -a` matches the host for VM `name`; returns the state it shows."""
    deadline = time.monotonic() + settle
    while True:
        row = vm_rows(root).get(name)
        assert row is not None, f"VM {name} vanished from vm ps -a"
        pids = qemu_pids(row["domain"])
        state = row["state"]
        ok = (state == "running") == bool(pids)
        if ok:
            return state
        if time.monotonic() >= deadline:
            raise AssertionError(f"vm ps says {name} is {state!r}, QEMU pids {pids}, libvirt says "
                                 f"{domstate(row['domain'])!r}")
        time.sleep(0.3)


def remove_and_check(root, name: str) -> None:
    """`vm rm -f` cleans everything up: no record, no domain, no QEMU, and a second rm is harmless."""
    domain = vm_rows(root)[name]["domain"]
    vl(root, "vm", "rm", "-f", name)
    assert name not in vm_rows(root)
    assert domstate(domain) is None
    assert qemu_pids(domain) == []
    vl(root, "vm", "rm", name, check=False)
    check_store(root)


def boots(root, name: str) -> None:
    """`vm start` works and the guest runs its command."""
    vl(root, "vm", "start", name, timeout=300)
    assert check_vm_truth(root, name) == "running"
    assert vl(root, "vm", "exec", name, "echo", "alive", timeout=120).stdout == b"alive\n"


def test_cli_killed_during_vm_start(vm_store):
    # once QEMU exists (the domain is starting), and once libvirt has the domain running
    for when in ("qemu", "booting"):
        name = unique(f"cli{when}")
        vl(vm_store, "vm", "create", "--name", name, "busybox", "sleep", "600")
        domain = vm_rows(vm_store)[name]["domain"]
        p = spawn(vm_store, "vm", "start", name)
        if when == "qemu":
            kill_when(p, lambda d=domain: bool(qemu_pids(d)), timeout=240)
        else:
            kill_when(p, lambda d=domain: domstate(d) == "running", timeout=240)
            time.sleep(0.5)
            if p.poll() is None:
                p.kill()
                p.communicate()
        check_vm_truth(vm_store, name)
        check_store(vm_store)
        if vm_rows(vm_store)[name]["state"] == "running":
            vl(vm_store, "vm", "stop", name, timeout=180)
        boots(vm_store, name)
        remove_and_check(vm_store, name)


def test_qemu_killed_during_vm_start(vm_store):
    name = unique("qemu")
    vl(vm_store, "vm", "create", "--name", name, "busybox", "sleep", "600")
    domain = vm_rows(vm_store)[name]["domain"]
    p = spawn(vm_store, "vm", "start", name)
    deadline = time.monotonic() + 240
    while not qemu_pids(domain):
        assert time.monotonic() < deadline and p.poll() is None, "QEMU never started"
        time.sleep(0.01)
    for pid in qemu_pids(domain):
        os.kill(pid, signal.SIGKILL)
    out, err = p.communicate(timeout=300)
    # the start fails with a clear error (or, if the guest was already up, the VM is shown stopped now)
    if p.returncode != 0:
        assert p.returncode == 125 and b"Traceback" not in err, err.decode()
    assert check_vm_truth(vm_store, name) == "stopped"
    boots(vm_store, name)
    # and QEMU dying while the VM runs: ps says stopped, rm cleans up
    for pid in qemu_pids(domain):
        os.kill(pid, signal.SIGKILL)
    assert check_vm_truth(vm_store, name) == "stopped"
    remove_and_check(vm_store, name)


def test_libvirtd_killed_during_vm_start(vm_store):
    name = unique("lvd")
    vl(vm_store, "vm", "create", "--name", name, "busybox", "sleep", "600")
    domain = vm_rows(vm_store)[name]["domain"]
    p = spawn(vm_store, "vm", "start", name)
    try:
        deadline = time.monotonic() + 240
        while not qemu_pids(domain):
            assert time.monotonic() < deadline and p.poll() is None, "QEMU never started"
            time.sleep(0.01)
        for pid in libvirtd_pids():
            os.kill(pid, signal.SIGKILL)
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            assert p.returncode == 125 and b"Traceback" not in err, err.decode()
    finally:
        restart_libvirtd()
        if p.poll() is None:
            p.kill()
            p.communicate()
    # libvirtd is back and has re-attached to the QEMU it left running (or the VM is stopped): ps agrees
    state = check_vm_truth(vm_store, name, settle=60)
    if state == "running":
        vl(vm_store, "vm", "stop", name, timeout=180)
        assert check_vm_truth(vm_store, name) == "stopped"
    boots(vm_store, name)
    remove_and_check(vm_store, name)
